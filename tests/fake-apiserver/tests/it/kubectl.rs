//! The fake API server driven by the real kubectl (an independent client).
//!
//! `KUBECTL` selects the binary (default: `kubectl` on PATH). Every invocation gets the
//! server's kubeconfig and a fresh `KUBECACHEDIR`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fake_apiserver::{FakeApiServer, Fault};
use serde_json::{Value, json};

use crate::CRD;

struct Kubectl {
    kubeconfig: std::path::PathBuf,
    cache: tempfile::TempDir,
}

fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

impl Kubectl {
    fn new(server: &FakeApiServer) -> Self {
        Self::with_kubeconfig(server.kubeconfig_path())
    }

    fn with_kubeconfig(path: &Path) -> Self {
        Kubectl {
            kubeconfig: path.to_path_buf(),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(kubectl_bin());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECACHEDIR", self.cache.path())
            .env_remove("KUBECONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl_bin()));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Run and require success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_stdin(args, None)
    }

    fn ok_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_with(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
}

const OBJECTS: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: team, labels: {app: w}}
spec: {size: 3}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.25"}]}
"#;

#[test]
fn version_and_api_resources() {
    let server = FakeApiServer::start();
    let k = Kubectl::new(&server);
    let v = k.json(&["version"]);
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.29.6-eks-db838b0");
    assert_eq!(v["serverVersion"]["minor"], "29+");

    let names = k.ok(&["api-resources", "-o", "name"]);
    for want in [
        "pods",
        "namespaces",
        "configmaps",
        "deployments.apps",
        "daemonsets.apps",
        "customresourcedefinitions.apiextensions.k8s.io",
        "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        "leases.coordination.k8s.io",
    ] {
        assert!(names.lines().any(|l| l == want), "{want} in {names}");
    }
    assert!(!names.contains("widgets.example.com"));
    server.seed_yaml(CRD).unwrap();
    let wide = k.ok(&["api-resources", "--api-group=example.com"]);
    assert!(wide.contains("widgets") && wide.contains("wd") && wide.contains("Widget"));
}

/// Server-side apply of a CRD and of objects (validation on), wait, create, get -o json. Run
/// against two reported server versions: where `kubectl` is gcloud's version-skew dispatcher,
/// this runs both kubectl 1.29 and 1.32.
fn apply_create_get(server_version: &str) {
    let server = FakeApiServer::builder()
        .server_version(server_version)
        .start();
    let k = Kubectl::new(&server);
    let out = k.ok_stdin(&["apply", "--server-side", "-f", "-"], Some(CRD));
    assert!(out.contains("serverside-applied"), "{out}");
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], Some(OBJECTS));

    // kubectl asked the server to validate (the OpenAPI v3 stub says it can).
    let reqs = server.requests();
    let patches: Vec<_> = reqs.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 4);
    for p in &patches {
        assert_eq!(p.param("fieldValidation").as_deref(), Some("Strict"));
        assert_eq!(p.param("fieldManager").as_deref(), Some("kubectl"));
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
    }
    assert!(
        reqs.iter()
            .any(|r| r.path == "/openapi/v3/apis/example.com/v1")
    );
    let ua = patches[0].user_agent.clone().unwrap_or_default();
    eprintln!("server {server_version}: kubectl user agent {ua}");
    assert!(ua.starts_with("kubectl"), "{ua}");

    let w = k.json(&["-n", "team", "get", "widget", "w1"]);
    assert_eq!(w["spec"]["size"], 3);
    assert_eq!(w["kind"], "Widget");
    let stored = server.get("widgets.example.com", "team", "w1").unwrap();
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(stored["metadata"]["managedFields"][0]["operation"], "Apply");

    // create -f (validation on) and create configmap.
    let out = k.ok_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: team}\nspec: {size: 1}\n"),
    );
    assert!(out.contains("widget.example.com/w2 created"), "{out}");
    // `kubectl create configmap` (a generator) sends protobuf from kubectl 1.32 on; `create -f`
    // sends JSON.
    let c1 =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, namespace: team}\ndata: {a: b}\n";
    k.ok_stdin(&["create", "-f", "-"], Some(c1));
    let post = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/widgets"))
        .unwrap();
    assert_eq!(post.param("fieldValidation").as_deref(), Some("Strict"));
    let again = k.run_with(&["create", "-f", "-"], Some(c1));
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("AlreadyExists")
            || String::from_utf8_lossy(&again.stderr).contains("already exists")
    );

    let list = k.json(&["get", "widgets", "-A"]);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["w1", "w2"]);
    let cm = k.json(&["-n", "team", "get", "cm", "c1"]);
    assert_eq!(cm["data"]["a"], "b");
    // Human-readable get (server-side Table).
    let table = k.ok(&["get", "wd", "-A"]);
    assert!(
        table.contains("NAMESPACE") && table.contains("w2"),
        "{table}"
    );
}

#[test]
fn apply_create_get_kubectl_for_eks_1_29() {
    apply_create_get("v1.29.6-eks-db838b0");
}

#[test]
fn apply_create_get_kubectl_for_1_32() {
    apply_create_get("v1.32.4");
}

#[test]
fn get_json_of_seeded_builtins_with_status() {
    let server = FakeApiServer::start();
    server
        .seed_yaml(
            r#"
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {kubernetes.io/os: linux}}
status:
  nodeInfo: {kernelVersion: 5.15.0-1057-aws, kubeletVersion: v1.29.6-eks}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: default, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: c, image: "img:1"}]}
status: {phase: Running}
"#,
        )
        .unwrap();
    let k = Kubectl::new(&server);
    let n = k.json(&["get", "node", "node-1"]);
    assert_eq!(n["status"]["nodeInfo"]["kernelVersion"], "5.15.0-1057-aws");
    let pods = k.json(&["get", "pods", "-A", "-l", "app=a"]);
    assert_eq!(pods["items"][0]["status"]["phase"], "Running");
    let none = k.json(&["get", "pods", "-A", "-l", "app=b"]);
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let by_field = k.json(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=node-1",
    ]);
    assert_eq!(by_field["items"].as_array().unwrap().len(), 1);
    // Chunked lists: kubectl pages with --chunk-size.
    for i in 0..7 {
        server
            .seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("c{i}"), "namespace": "default"}}))
            .unwrap();
    }
    server.clear_requests();
    let cms = k.json(&["get", "cm", "--chunk-size=3"]);
    assert_eq!(cms["items"].as_array().unwrap().len(), 7);
    let list_calls = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/namespaces/default/configmaps")
        .count();
    assert_eq!(list_calls, 3);
}

#[test]
fn scale_status_patch_and_delete_all_kubectl_for_eks_1_29() {
    scale_status_patch_and_delete_all("v1.29.6-eks-db838b0");
}

#[test]
fn scale_status_patch_and_delete_all_kubectl_for_1_32() {
    scale_status_patch_and_delete_all("v1.32.4");
}

fn scale_status_patch_and_delete_all(server_version: &str) {
    let server = FakeApiServer::builder()
        .server_version(server_version)
        .start();
    server.seed_yaml(CRD).unwrap();
    server.seed_yaml(OBJECTS).unwrap();
    let k = Kubectl::new(&server);

    let out = k.ok(&["-n", "team", "scale", "deploy/web", "--replicas=4"]);
    assert!(out.contains("scaled"), "{out}");
    let d = server.get("deploy", "team", "web").unwrap();
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["generation"], 2);

    // Status subresource: strategic merge on a built-in, merge on a custom resource.
    k.ok(&[
        "-n",
        "team",
        "patch",
        "deploy",
        "web",
        "--subresource=status",
        "-p",
        r#"{"status":{"readyReplicas":1},"spec":{"replicas":9}}"#,
    ]);
    let d = server.get("deploy", "team", "web").unwrap();
    assert_eq!(d["status"]["readyReplicas"], 1);
    assert_eq!(d["spec"]["replicas"], 4);
    k.ok(&[
        "-n",
        "team",
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ]);
    let w = server.get("widgets", "team", "w1").unwrap();
    assert_eq!(w["status"]["ready"], true);
    assert_eq!(w["metadata"]["generation"], 1);

    for i in 0..3 {
        k.ok_stdin(
            &["-n", "team", "create", "-f", "-"],
            Some(&format!("{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"c{i}\"}}}}")),
        );
    }
    assert_eq!(server.count("cm", "team"), 3);
    let out = k.ok(&["-n", "team", "delete", "cm", "--all"]);
    assert_eq!(out.matches("deleted").count(), 3, "{out}");
    assert_eq!(server.count("cm", "team"), 0);
    let out = k.ok(&["-n", "team", "get", "cm"]);
    assert_eq!(out, "");
}

#[test]
fn rollout_status_completes_with_auto_rollout_kubectl_for_eks_1_29() {
    rollout_status_completes_with_auto_rollout("v1.29.6-eks-db838b0");
}

#[test]
fn rollout_status_completes_with_auto_rollout_kubectl_for_1_32() {
    rollout_status_completes_with_auto_rollout("v1.32.4");
}

fn rollout_status_completes_with_auto_rollout(server_version: &str) {
    let server = FakeApiServer::builder()
        .server_version(server_version)
        .auto_rollout(true)
        .start();
    let k = Kubectl::new(&server);
    k.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"),
    );
    k.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(OBJECTS.split("---").nth(2).unwrap()),
    );
    k.ok(&["-n", "team", "set", "image", "deploy/web", "web=nginx:1.27"]);
    let out = k.ok(&[
        "-n",
        "team",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=20s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = server.get("deploy", "team", "web").unwrap();
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
}

#[test]
fn rollout_status_waits_for_a_controller_played_by_the_test() {
    let server = FakeApiServer::start();
    server
        .seed(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "cni", "namespace": "kube-system", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "cni"}},
                "template": {"metadata": {"labels": {"app": "cni"}},
                    "spec": {"containers": [{"name": "c", "image": "cni:1"}]}}},
            "status": {"observedGeneration": 2, "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 1, "numberAvailable": 2}}))
        .unwrap();
    let cluster = server.cluster();
    let player = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        cluster
            .complete_rollout("daemonsets", "kube-system", "cni")
            .unwrap()
    });
    let k = Kubectl::new(&server);
    let t0 = std::time::Instant::now();
    let out = k.ok(&[
        "-n",
        "kube-system",
        "rollout",
        "status",
        "ds/cni",
        "--timeout=20s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    assert!(t0.elapsed() >= Duration::from_millis(1000));
    let ds = player.join().unwrap();
    assert_eq!(ds["status"]["numberAvailable"], 3);
    assert_eq!(ds["status"]["observedGeneration"], 3);
}

#[test]
fn rbac_denials_and_can_i() {
    let server = FakeApiServer::start();
    server.deny("list", "", "pods");
    let k = Kubectl::new(&server);
    let out = k.run_with(&["get", "pods", "-A"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "pods is forbidden: User \"meshup-test\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
        ),
        "{err}"
    );
    let no = k.run_with(&["auth", "can-i", "list", "pods"], None);
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
    assert!(!no.status.success());
    assert_eq!(k.ok(&["auth", "can-i", "get", "pods"]).trim(), "yes");
}

#[test]
fn kubectl_retries_429_with_retry_after() {
    let server = FakeApiServer::start();
    let id = server.inject(
        Fault::status(429)
            .retry_after(1)
            .on("/api/v1/namespaces/default/configmaps")
            .method("GET")
            .times(1),
    );
    let k = Kubectl::new(&server);
    let v = k.json(&["get", "cm"]);
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    assert_eq!(server.fault_hits(id), 1);
    let statuses: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/default/configmaps")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn binary_serves_seeds_and_writes_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("seed")).unwrap();
    std::fs::write(dir.path().join("seed/b-objects.yaml"), OBJECTS).unwrap();
    std::fs::write(dir.path().join("seed/c-crd.yaml"), CRD).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .arg("--seed")
        .arg(dir.path().join("seed"))
        .args(["--server-version", "v1.30.4-eks-1234567", "--auto-rollout"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let k = Kubectl::with_kubeconfig(&kubeconfig);
    let v = k.json(&["version"]);
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.30.4-eks-1234567");
    assert_eq!(v["serverVersion"]["minor"], "30+");
    let w = k.json(&["-n", "team", "get", "wd", "w1"]);
    assert_eq!(w["spec"]["size"], 3);
    k.ok(&["-n", "team", "scale", "deploy/web", "--replicas=3"]);
    let out = k.ok(&[
        "-n",
        "team",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=20s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    child.kill().unwrap();
    child.wait().unwrap();
}
