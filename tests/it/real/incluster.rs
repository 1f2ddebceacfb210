//! In-cluster mode against the real control plane: `deploy/` applied with `kubectl apply -k`, then the
//! CronJob's pod spec (read back from the cluster as deploy/ made it, not retyped here) run as its
//! ServiceAccount with a pod's environment reproduced: KUBERNETES_SERVICE_HOST/PORT, no kubeconfig,
//! and the token (TokenRequest API), ca.crt and namespace files in a directory named by
//! KUBECTL_MESHUP_SERVICEACCOUNT_DIR, since a test cannot write /var/run/secrets. It publishes the
//! report ConfigMap, a second run updates it, `fleet` reads it back, and without the report Role the
//! write is refused with one clear line and exit 1.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::real::harness::{KUBERNETES_VERSION, RealCluster, plugin_binary, text};
use crate::support::finding_rules;

const CONFIGMAP: &str = "kubectl-meshup-report";

/// The CronJob's namespace, ServiceAccount, container args and env, as the API server holds them.
struct PodSpec {
    namespace: String,
    service_account: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn cronjob_pod_spec(cluster: &RealCluster) -> PodSpec {
    let list = cluster.get_json(&[
        "cronjobs",
        "-A",
        "-l",
        "app.kubernetes.io/name=kubectl-meshup",
    ]);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one CronJob from deploy/: {list:#}");
    let cj = &items[0];
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid", "{cj:#}");
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod:#}");
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"], true,
        "{container:#}"
    );
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    PodSpec {
        namespace: cj["metadata"]["namespace"]
            .as_str()
            .expect("namespace")
            .to_string(),
        service_account: pod["serviceAccountName"]
            .as_str()
            .expect("serviceAccountName")
            .to_string(),
        // The image's entrypoint is the binary itself: its args are the whole command line.
        args: strings(&container["args"]),
        env: container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
            .collect(),
    }
}

/// What the kubelet mounts for the pod: a fresh token from the TokenRequest API, the cluster's CA, the
/// pod's namespace.
fn serviceaccount_dir(cluster: &RealCluster, spec: &PodSpec) -> std::path::PathBuf {
    let dir = cluster.dir().join("serviceaccount");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let token = cluster.kubectl_ok(&[
        "create",
        "token",
        &spec.service_account,
        "-n",
        &spec.namespace,
        "--duration=1h",
    ]);
    std::fs::write(dir.join("token"), token.trim()).expect("token");
    std::fs::write(dir.join("ca.crt"), cluster.ca_pem()).expect("ca.crt");
    std::fs::write(dir.join("namespace"), &spec.namespace).expect("namespace");
    dir
}

/// The binary as the pod runs it: the spec's args and env, the in-cluster environment, no kubeconfig
/// (no KUBECONFIG and a HOME without .kube).
fn run_as_pod(cluster: &RealCluster, spec: &PodSpec, sa_dir: &Path) -> Output {
    let server = cluster
        .server()
        .strip_prefix("https://")
        .expect("https server");
    let (host, port) = server.rsplit_once(':').expect("host:port");
    let home = cluster.dir().join("pod-home");
    std::fs::create_dir_all(&home).expect("home");
    let mut cmd = Command::new(plugin_binary());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("KUBERNETES_SERVICE_HOST", host)
        .env("KUBERNETES_SERVICE_PORT", port)
        .env("KUBECTL_MESHUP_SERVICEACCOUNT_DIR", sa_dir)
        .args(&spec.args)
        .stdin(Stdio::null());
    for (name, value) in &spec.env {
        cmd.env(name, value);
    }
    cmd.output().expect("run kubectl-meshup")
}

fn report_configmap(cluster: &RealCluster, namespace: &str) -> Value {
    cluster
        .try_get("configmap", Some(namespace), CONFIGMAP)
        .unwrap_or_else(|| panic!("ConfigMap {namespace}/{CONFIGMAP} was written"))
}

#[test]
fn the_cronjobs_pod_publishes_the_report_configmap_and_needs_the_report_role() {
    let mut cluster = RealCluster::start();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let out = cluster.kubectl(&["apply", "-k", &deploy.display().to_string()]);
    assert!(
        out.status.success(),
        "kubectl apply -k deploy/: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).trim().is_empty(), "{}", text(&out.stderr));
    let spec = cronjob_pod_spec(&cluster);
    assert!(
        spec.args.iter().any(|a| a == "--publish-configmap"),
        "{:?}",
        spec.args
    );
    let sa_dir = serviceaccount_dir(&cluster, &spec);

    // First run: creates the ConfigMap.
    let first = run_as_pod(&cluster, &spec, &sa_dir);
    assert_eq!(
        first.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&first.stdout),
        text(&first.stderr)
    );
    assert!(
        text(&first.stdout).contains("in-cluster"),
        "the table names the in-cluster context: {}",
        text(&first.stdout)
    );
    let cm = report_configmap(&cluster, &spec.namespace);
    let labels = &cm["metadata"]["labels"];
    assert_eq!(labels["meshup.dev/result"], "pass", "{cm:#}");
    assert_eq!(labels["meshup.dev/fail"], "0", "{cm:#}");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "kubectl-meshup");
    let annotations = &cm["metadata"]["annotations"];
    let first_checked = annotations["meshup.dev/checked-at"]
        .as_str()
        .expect("checked-at")
        .to_string();
    assert!(first_checked.ends_with('Z') && first_checked.len() == 20);
    let compat = kubectl_meshup::compat::CompatData::embedded();
    assert_eq!(annotations["meshup.dev/compat-data"], compat.date.as_str());
    assert!(annotations.get("meshup.dev/omitted").is_none(), "{cm:#}");
    let report: Value =
        serde_json::from_str(cm["data"]["report.json"].as_str().expect("report.json"))
            .expect("report parses");
    assert_eq!(report["kind"], "CheckReport");
    assert_eq!(report["clusters"], serde_json::json!(["in-cluster"]));
    assert_eq!(finding_rules(&report), ["snapshot.no-mesh"], "{report:#}");
    let snapshot: Value =
        serde_json::from_str(cm["data"]["snapshot.json"].as_str().expect("snapshot.json"))
            .expect("snapshot parses");
    let c = &snapshot["clusters"][0];
    assert_eq!(c["name"], "in-cluster");
    assert_eq!(c["server"], cluster.server(), "the server it talked to");
    assert_eq!(c["kubernetes"]["gitVersion"], KUBERNETES_VERSION);
    assert!(
        c.get("unread").is_none(),
        "the read-only ClusterRole lets it read everything: {c:#}"
    );
    let first_version = cm["metadata"]["resourceVersion"].clone();

    // Someone labels it; the second run updates it and keeps the label.
    cluster.kubectl_ok(&[
        "label",
        "configmap",
        CONFIGMAP,
        "-n",
        &spec.namespace,
        "team=platform",
    ]);
    std::thread::sleep(Duration::from_millis(1100));
    let second = run_as_pod(&cluster, &spec, &sa_dir);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let cm = report_configmap(&cluster, &spec.namespace);
    assert_ne!(cm["metadata"]["resourceVersion"], first_version, "updated");
    let second_checked = cm["metadata"]["annotations"]["meshup.dev/checked-at"]
        .as_str()
        .expect("checked-at")
        .to_string();
    assert!(
        second_checked > first_checked,
        "{second_checked} after {first_checked}"
    );
    assert_eq!(cm["metadata"]["labels"]["team"], "platform", "{cm:#}");
    assert_eq!(cm["metadata"]["labels"]["meshup.dev/result"], "pass");
    let version_after_second = cm["metadata"]["resourceVersion"].clone();

    // The fleet view from a workstation (admin's kubeconfig) reads what the pod published: one row,
    // named by the workstation's context, planned for a target on the published snapshot.
    let out = cluster.meshup(&["fleet", "--to", "istio=1.24", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fleet: Value = serde_json::from_slice(&out.stdout).expect("FleetReport");
    let row = &fleet["clusters"][0];
    assert_eq!(row["context"], cluster.context(), "{fleet:#}");
    assert_eq!(row["status"], "ok", "{row:#}");
    assert_eq!(row["source"], "published", "{row:#}");
    assert_eq!(row["checkedAt"], second_checked.as_str());
    assert_eq!(row["kubernetes"], KUBERNETES_VERSION);
    assert_eq!(row["targets"][0]["verdict"], "not-installed", "{row:#}");

    // The read-only ClusterRole alone: the report Role's binding goes.
    cluster.kubectl_ok(&[
        "delete",
        "rolebinding",
        "meshup-report-writer",
        "-n",
        &spec.namespace,
    ]);
    let user = format!(
        "system:serviceaccount:{}:{}",
        spec.namespace, spec.service_account
    );
    cluster.wait_until(
        "the authorizer drops the report Role",
        Duration::from_secs(30),
        |cluster| {
            let out = cluster.kubectl(&[
                "auth",
                "can-i",
                // Not `get`: the read-only ClusterRole reads ConfigMaps (istiod's mesh config).
                "update",
                &format!("configmaps/{CONFIGMAP}"),
                "-n",
                &spec.namespace,
                "--as",
                &user,
            ]);
            text(&out.stdout).trim() == "no"
        },
    );
    let denied = run_as_pod(&cluster, &spec, &sa_dir);
    assert_eq!(denied.status.code(), Some(1), "{}", text(&denied.stderr));
    let stderr = text(&denied.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    eprintln!("without the report Role: {}", lines[0]);
    assert!(
        lines[0].starts_with(&format!(
            "error: cannot publish the report: writing ConfigMap {}/{CONFIGMAP} in context \"in-cluster\" is forbidden (403): ",
            spec.namespace
        )) && lines[0].ends_with(&format!(
            "; grant get, create and update on configmaps in namespace {} (see deploy/report-role.yaml)",
            spec.namespace
        )),
        "{stderr}"
    );
    let cm = report_configmap(&cluster, &spec.namespace);
    assert_eq!(
        cm["metadata"]["resourceVersion"], version_after_second,
        "nothing written"
    );
}
