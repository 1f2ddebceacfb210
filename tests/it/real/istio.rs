//! Istio on the real control plane, installed with the real `istioctl` and `helm` from the packaged
//! charts, then checked, planned and applied through the real `kubectl` (issue 11).
//!
//! What the harness plays: istiod's sidecar injector and its caBundle patcher ([`Injector`]), because
//! istiod's pods are KWOK fakes. Everything else is real: the API server admits and stores what
//! istioctl and helm write, the controller manager rolls Deployments and ReplicaSets, the scheduler
//! places pods and KWOK makes them Running and Ready.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use kubectl_meshup::snapshot::{Cluster, ClusterSnapshot};
use kubectl_meshup::version::Version;

use crate::real::harness::{RealCluster, bin, charts, plugin_binary, text};
use crate::real::injector::Injector;

/// A directory put on PATH before the system's: `istioctl` (the given build) and `helm`, as a user
/// has them, plus the directory of the built plugin so `kubectl meshup` finds it.
struct Tools {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    helm_home: tempfile::TempDir,
}

impl Tools {
    fn new(istioctl: Option<&str>) -> Self {
        let tools = Tools {
            dir: tempfile::tempdir().expect("tools dir"),
            cache: tempfile::tempdir().expect("kubectl cache dir"),
            helm_home: tempfile::tempdir().expect("helm home"),
        };
        if let Some(istioctl) = istioctl {
            tools.use_istioctl(istioctl);
        }
        std::os::unix::fs::symlink(bin("helm"), tools.dir.path().join("helm")).expect("link helm");
        tools
    }

    /// Points `istioctl` on PATH at another build (`istioctl-1.31`).
    fn use_istioctl(&self, istioctl: &str) {
        let link = self.dir.path().join("istioctl");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(bin(istioctl), &link).expect("link istioctl");
    }

    fn path(&self) -> std::ffi::OsString {
        let plugin_dir = plugin_binary().parent().expect("plugin dir").to_path_buf();
        let system = std::env::var_os("PATH").unwrap_or_default();
        std::env::join_paths(
            [plugin_dir, self.dir.path().to_path_buf()]
                .into_iter()
                .chain(std::env::split_paths(&system)),
        )
        .expect("PATH")
    }

    /// A command run as the user would, with this PATH, a private kubectl cache and helm home.
    fn command(&self, program: &str, cluster: &RealCluster) -> Command {
        let mut cmd = Command::new(program);
        let home = self.helm_home.path();
        cmd.env("PATH", self.path())
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("KUBECACHEDIR", self.cache.path())
            .env("HELM_REPOSITORY_CONFIG", home.join("repositories.yaml"))
            .env("HELM_REPOSITORY_CACHE", home.join("cache/repository"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("NO_COLOR", "1");
        cmd
    }

    fn kubectl(&self, cluster: &RealCluster, args: &[&str]) -> Output {
        self.command("kubectl", cluster)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    fn kubectl_json(&self, cluster: &RealCluster, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(cluster, &all);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("kubectl JSON")
    }

    /// `kubectl meshup ARGS` through kubectl's plugin mechanism.
    fn meshup(&self, cluster: &RealCluster, args: &[&str]) -> Output {
        let mut all = vec!["meshup"];
        all.extend(args);
        self.kubectl(cluster, &all)
    }

    /// `kubectl meshup snapshot -o json`: the facts observe read.
    fn snapshot(&self, cluster: &RealCluster) -> Cluster {
        let out = self.meshup(cluster, &["snapshot", "-o", "json"]);
        assert!(out.status.success(), "snapshot: {}", text(&out.stderr));
        let mut snapshot: ClusterSnapshot =
            serde_json::from_slice(&out.stdout).expect("a ClusterSnapshot");
        assert_eq!(snapshot.clusters.len(), 1);
        snapshot.clusters.remove(0)
    }

    /// Runs a tool to completion, printing its output and wall time; panics when it fails.
    fn run(&self, cluster: &RealCluster, program: &str, args: &[&str]) -> Duration {
        let start = Instant::now();
        let out = self
            .command(program, cluster)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} could not start: {e}"));
        let took = start.elapsed();
        eprintln!("--- {program} {} ({took:.1?})", args.join(" "));
        eprintln!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "{program} {args:?} failed (kubeconfig {}: {:?})",
            cluster.kubeconfig().display(),
            std::fs::metadata(cluster.kubeconfig()).map(|m| m.len())
        );
        took
    }
}

/// The proxy images of every pod in `namespace` (sidecars in containers or native sidecars).
fn proxy_images(
    tools: &Tools,
    cluster: &RealCluster,
    namespace: &str,
) -> Vec<(String, Option<String>)> {
    let pods = tools.kubectl_json(cluster, &["get", "pods", "-n", namespace]);
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let image = ["initContainers", "containers"]
                .iter()
                .flat_map(|f| p["spec"][f].as_array().into_iter().flatten())
                .find(|c| c["name"] == "istio-proxy")
                .and_then(|c| c["image"].as_str())
                .map(str::to_string);
            (name, image)
        })
        .collect()
}

/// Bookinfo's Deployments (and a Service each) in `namespace`, enrolled with `label`.
fn bookinfo(namespace: &str, label: &str, value: &str) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n  labels:\n    {label}: {value}\n"
    );
    for (app, version) in [
        ("productpage", "v1"),
        ("details", "v1"),
        ("ratings", "v1"),
        ("reviews", "v1"),
        ("reviews", "v2"),
    ] {
        yaml.push_str(&format!(
            r#"---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}-{version}
  namespace: {namespace}
  labels: {{app: {app}, version: {version}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {app}, version: {version}}}
  template:
    metadata:
      labels: {{app: {app}, version: {version}}}
    spec:
      containers:
      - name: {app}
        image: docker.io/istio/examples-bookinfo-{app}-{version}:1.20.2
        ports:
        - containerPort: 9080
"#
        ));
    }
    for app in ["productpage", "details", "ratings", "reviews"] {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {app}\n  namespace: {namespace}\n  labels: {{app: {app}, service: {app}}}\nspec:\n  selector: {{app: {app}}}\n  ports:\n  - name: http\n    port: 9080\n"
        ));
    }
    yaml
}

const BOOKINFO_DEPLOYMENTS: [&str; 5] = [
    "productpage-v1",
    "details-v1",
    "ratings-v1",
    "reviews-v1",
    "reviews-v2",
];

/// Applies Bookinfo and waits until every Deployment is rolled out (its pods injected, scheduled and
/// Ready).
fn deploy_bookinfo(
    tools: &Tools,
    cluster: &RealCluster,
    namespace: &str,
    label: &str,
    value: &str,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bookinfo.yaml");
    std::fs::write(&file, bookinfo(namespace, label, value)).expect("write bookinfo");
    let out = tools.kubectl(
        cluster,
        &["apply", "-f", file.to_str().expect("utf-8 path")],
    );
    assert!(
        out.status.success(),
        "apply bookinfo: {}",
        text(&out.stderr)
    );
    for d in BOOKINFO_DEPLOYMENTS {
        let out = tools.kubectl(
            cluster,
            &[
                "rollout",
                "status",
                "-n",
                namespace,
                &format!("deployment/{d}"),
                "--timeout=180s",
            ],
        );
        assert!(
            out.status.success(),
            "rollout of {namespace}/{d}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// Every pod in `namespace` carries the proxy `image`, and there are two per Deployment.
fn assert_proxies(tools: &Tools, cluster: &RealCluster, namespace: &str, image: &str) {
    let pods = proxy_images(tools, cluster, namespace);
    assert_eq!(pods.len(), 2 * BOOKINFO_DEPLOYMENTS.len(), "{pods:?}");
    for (pod, proxy) in &pods {
        assert_eq!(proxy.as_deref(), Some(image), "pod {namespace}/{pod}");
    }
}

/// The named injection webhook configurations exist, and every Istio one calls the injector at the
/// path of its revision.
fn assert_webhooks_point_at(
    tools: &Tools,
    cluster: &RealCluster,
    injector: &Injector,
    expected: &[&str],
) {
    let start = Instant::now();
    let pointed = |list: &Value| {
        list["items"].as_array().into_iter().flatten().all(|mwc| {
            let rev = mwc["metadata"]["labels"]["istio.io/rev"]
                .as_str()
                .unwrap_or_default();
            mwc["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|w| w["clientConfig"]["url"] == injector.url(rev).as_str())
        })
    };
    let seen = loop {
        let list = tools.kubectl_json(
            cluster,
            &["get", "mutatingwebhookconfigurations", "-l", "istio.io/rev"],
        );
        if pointed(&list) {
            break names(&list);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Istio webhooks not pointed at the injector: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for name in expected {
        assert!(seen.contains(*name), "{name} in {seen:?}");
    }
}

fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["severity"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn check_json(tools: &Tools, cluster: &RealCluster) -> (Option<i32>, Value) {
    let out = tools.meshup(cluster, &["check", "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check -o json: {e}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn names(items: &Value) -> BTreeSet<String> {
    items["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Istio 1.30.4 installed by the real istioctl as revision 1-30-4 with non-default settings, Bookinfo
/// injected by it; check judges it, plan makes a canary to 1.31.0 and apply runs it with the real
/// istioctl 1.31: every pod ends on proxyv2:1.31.0, the namespace on the new revision, and revision
/// 1-30-4 (istiod and its webhook) is gone.
#[test]
fn istioctl_canary_from_1_30_4_to_1_31_0() {
    let whole = Instant::now();
    let cluster = RealCluster::start();
    let injector = Injector::start(cluster.kubeconfig());
    let tools = Tools::new(Some("istioctl-1.30"));

    let version = tools
        .command("istioctl", &cluster)
        .args(["version", "--remote=false"])
        .output()
        .expect("istioctl version");
    assert_eq!(text(&version.stdout).trim(), "client version: 1.30.4");

    let install = tools.run(
        &cluster,
        "istioctl",
        &[
            "install",
            "-y",
            "--set",
            "revision=1-30-4",
            "--set",
            "meshConfig.accessLogFile=/dev/stdout",
            "--set",
            "components.pilot.k8s.resources.limits.memory=2Gi",
        ],
    );
    eprintln!("timing: istioctl 1.30 install: {install:.1?}");

    // What istioctl installed, as the API server holds it; its injection webhook now calls the
    // injector (what istiod's caBundle patcher would have done, plus the URL).
    assert_webhooks_point_at(
        &tools,
        &cluster,
        &injector,
        &["istio-sidecar-injector-1-30-4"],
    );
    let istiod = tools.kubectl_json(
        &cluster,
        &["get", "deployment", "-n", "istio-system", "istiod-1-30-4"],
    );
    let discovery = &istiod["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(discovery["image"], "docker.io/istio/pilot:1.30.4");
    assert_eq!(discovery["resources"]["limits"]["memory"], "2Gi");
    let mesh = tools.kubectl_json(
        &cluster,
        &["get", "configmap", "-n", "istio-system", "istio-1-30-4"],
    );
    let mesh_config = mesh["data"]["mesh"].as_str().unwrap_or_default();
    assert!(
        mesh_config.contains("accessLogFile: /dev/stdout"),
        "{mesh_config}"
    );

    deploy_bookinfo(&tools, &cluster, "bookinfo", "istio.io/rev", "1-30-4");
    deploy_bookinfo(&tools, &cluster, "shop", "istio.io/rev", "1-30-4");
    assert_proxies(
        &tools,
        &cluster,
        "bookinfo",
        "docker.io/istio/proxyv2:1.30.4",
    );
    assert_proxies(&tools, &cluster, "shop", "docker.io/istio/proxyv2:1.30.4");
    assert!(
        injector.injected() >= 20,
        "{} pods injected",
        injector.injected()
    );

    // check finds istiod, the revision, its webhook and the proxies, and judges them.
    let observed = tools.snapshot(&cluster);
    let istio = observed.istio.as_ref().expect("Istio observed");
    let revisions: Vec<_> = istio
        .control_planes
        .iter()
        .map(|c| c.revision.as_str())
        .collect();
    assert_eq!(revisions, ["1-30-4"]);
    assert_eq!(
        istio.control_planes[0].istiod.version.version,
        Some(Version::new(1, 30, 4))
    );
    assert!(
        istio
            .webhooks
            .iter()
            .any(|w| w.name == "istio-sidecar-injector-1-30-4" && w.revision == "1-30-4"),
        "{:?}",
        istio.webhooks
    );
    let proxies: u64 = istio
        .proxies
        .iter()
        .filter(|p| p.revision == "1-30-4" && (p.namespace == "bookinfo" || p.namespace == "shop"))
        .map(|p| p.pods)
        .sum();
    assert_eq!(proxies, 20, "{:?}", istio.proxies);
    let (code, report) = check_json(&tools, &cluster);
    eprintln!("check: exit {code:?}, summary {}", report["summary"]);
    let found = findings(&report);
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .any(|(rule, _, subject)| rule.starts_with("istio") && subject.contains("1-30-4")),
        "{found:#?}"
    );
    assert!(
        !found.iter().any(|(_, severity, _)| severity == "fail"),
        "{found:#?}"
    );
    assert_eq!(code, Some(0));

    // plan: a canary to revision 1-31-0.
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_file = dir.path().join("plan.yaml");
    let plan_path = plan_file.to_str().expect("utf-8 path");
    let out = tools.meshup(
        &cluster,
        &[
            "plan",
            "--to",
            "istio=1.31.0",
            "-o",
            "yaml",
            "--out",
            plan_path,
        ],
    );
    assert!(
        out.status.success(),
        "plan: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let plan: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&plan_file).expect("plan file"))
            .expect("plan YAML");
    assert_eq!(plan["strategy"], "canary");
    let step_ids: Vec<&str> = plan["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    eprintln!("plan steps: {step_ids:?}");
    assert!(
        step_ids.iter().any(|s| s.contains("install-1-31-0")),
        "{step_ids:?}"
    );

    // apply with the istioctl of the target version on PATH.
    tools.use_istioctl("istioctl-1.31");
    let start = Instant::now();
    let out = tools.meshup(&cluster, &["apply", plan_path, "--yes"]);
    let apply = start.elapsed();
    eprintln!("{}{}", text(&out.stdout), text(&out.stderr));
    eprintln!("timing: kubectl meshup apply (canary 1.30.4 -> 1.31.0): {apply:.1?}");
    assert_eq!(out.status.code(), Some(0), "apply failed");

    // The cluster afterwards.
    assert_proxies(
        &tools,
        &cluster,
        "bookinfo",
        "docker.io/istio/proxyv2:1.31.0",
    );
    assert_proxies(&tools, &cluster, "shop", "docker.io/istio/proxyv2:1.31.0");
    for ns in ["bookinfo", "shop"] {
        let namespace = tools.kubectl_json(&cluster, &["get", "namespace", ns]);
        assert_eq!(
            namespace["metadata"]["labels"]["istio.io/rev"], "1-31-0",
            "{ns}"
        );
    }
    // `istioctl uninstall` deletes with foreground propagation: the Deployment goes once the
    // garbage collector has removed its ReplicaSet and pods.
    let start = Instant::now();
    let deployments = loop {
        let deployments =
            names(&tools.kubectl_json(&cluster, &["get", "deployments", "-n", "istio-system"]));
        if !deployments.contains("istiod-1-30-4") || start.elapsed() > Duration::from_secs(60) {
            break deployments;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "istiod-1-30-4 gone {:.1?} after apply returned",
        start.elapsed()
    );
    assert!(deployments.contains("istiod-1-31-0"), "{deployments:?}");
    assert!(!deployments.contains("istiod-1-30-4"), "{deployments:?}");
    let webhooks = names(&tools.kubectl_json(&cluster, &["get", "mutatingwebhookconfigurations"]));
    assert!(
        webhooks.contains("istio-sidecar-injector-1-31-0"),
        "{webhooks:?}"
    );
    assert!(
        !webhooks.contains("istio-sidecar-injector-1-30-4"),
        "{webhooks:?}"
    );
    let new_istiod = tools.kubectl_json(
        &cluster,
        &["get", "deployment", "-n", "istio-system", "istiod-1-31-0"],
    );
    assert_eq!(
        new_istiod["spec"]["template"]["spec"]["containers"][0]["image"],
        "docker.io/istio/pilot:1.31.0"
    );
    // The plan carries the user's install settings (issue 12): istioctl 1.31 installed the new revision
    // from the IstioOperator read back from 1-30-4 (its mesh config, env and resources), so the new
    // revision keeps the access log and the memory limit 1-30-4 had.
    let new_mesh = tools.kubectl_json(
        &cluster,
        &["get", "configmap", "-n", "istio-system", "istio-1-31-0"],
    );
    let new_mesh = new_mesh["data"]["mesh"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "istio-1-31-0 mesh config carries accessLogFile: {}",
        new_mesh.contains("accessLogFile: /dev/stdout")
    );
    assert!(
        new_mesh.contains("accessLogFile: /dev/stdout"),
        "{new_mesh}"
    );
    assert_eq!(
        new_istiod["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "2Gi"
    );
    let (code, report) = check_json(&tools, &cluster);
    eprintln!(
        "check after apply: exit {code:?}, summary {}",
        report["summary"]
    );
    assert_eq!(code, Some(0));
    eprintln!("timing: whole test: {:.1?}", whole.elapsed());
}

/// The packaged charts of 1.30.4 and 1.31.0 served as a Helm chart repository on 127.0.0.1 (an
/// `index.yaml` made by the real `helm repo index`), as a user's mirror of istio-release would be.
struct ChartRepo {
    url: String,
    _dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ChartRepo {
    fn start() -> ChartRepo {
        let dir = tempfile::tempdir().expect("chart repo dir");
        for version in ["1.30.4", "1.31.0"] {
            for entry in std::fs::read_dir(charts(&format!("istio-{version}"))).expect("charts") {
                let path = entry.expect("chart entry").path();
                if path.extension().is_some_and(|e| e == "tgz") {
                    let name = path.file_name().expect("file name");
                    std::fs::copy(&path, dir.path().join(name)).expect("copy chart");
                }
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("chart repo runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the chart repo");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let out = Command::new(bin("helm"))
            .args(["repo", "index"])
            .arg(dir.path())
            .args(["--url", &url])
            .output()
            .expect("helm repo index");
        assert!(
            out.status.success(),
            "helm repo index: {}",
            text(&out.stderr)
        );
        let root = dir.path().to_path_buf();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let root = root.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let root = root.clone();
                            async move {
                                let name = req.uri().path().trim_start_matches('/');
                                let file = (!name.contains('/') && !name.is_empty())
                                    .then(|| std::fs::read(root.join(name)).ok())
                                    .flatten();
                                let mut response = hyper::Response::new(http_body_util::Full::new(
                                    hyper::body::Bytes::from(file.clone().unwrap_or_default()),
                                ));
                                if file.is_none() {
                                    *response.status_mut() = hyper::StatusCode::NOT_FOUND;
                                }
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        ChartRepo {
            url,
            _dir: dir,
            runtime: Some(runtime),
        }
    }
}

/// `helm repo add istio URL` in the tools' own Helm home.
fn add_repo(tools: &Tools, cluster: &RealCluster, repo: &ChartRepo) {
    tools.run(cluster, "helm", &["repo", "add", "istio", &repo.url]);
    tools.run(cluster, "helm", &["repo", "update"]);
}

/// A Helm release's values as Helm stored them (`helm get values -o json`).
fn helm_values(tools: &Tools, cluster: &RealCluster, release: &str, namespace: &str) -> Value {
    let out = tools
        .command("helm", cluster)
        .args(["get", "values", release, "-n", namespace, "-o", "json"])
        .output()
        .expect("helm get values");
    assert!(
        out.status.success(),
        "helm get values: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("values JSON")
}

fn plan_steps(plan: &Value) -> Vec<(String, String)> {
    plan["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let action = &s["action"];
            let what = match action["type"].as_str().unwrap_or_default() {
                "run" => format!(
                    "run {} {}",
                    action["tool"].as_str().unwrap_or_default(),
                    action["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (s["id"].as_str().unwrap_or_default().to_string(), what)
        })
        .collect()
}

/// `kubectl meshup plan ARGS -o yaml --out FILE`, parsed.
fn make_plan(
    tools: &Tools,
    cluster: &RealCluster,
    dir: &Path,
    name: &str,
    args: &[&str],
) -> (PathBuf, Value) {
    let file = dir.join(name);
    let path = file.to_str().expect("utf-8 path");
    let mut all = vec!["plan"];
    all.extend(args);
    all.extend(["-o", "yaml", "--out", path]);
    let out = tools.meshup(cluster, &all);
    assert!(
        out.status.success(),
        "plan {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let plan: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).expect("plan file"))
        .expect("plan YAML");
    (file, plan)
}

/// `helm install RELEASE istio/CHART -n NAMESPACE --version 1.30.4` with the images a released
/// chart defaults to (docker.io/istio, 1.30.4): the charts packaged from the release-branch commit
/// default to registry.istio.io/testing and `latest`, which Istio's release build rewrites. `--wait`
/// unless `wait` is false.
fn helm_install(
    tools: &Tools,
    cluster: &RealCluster,
    release: &str,
    chart: &str,
    namespace: &str,
    values: &[&str],
    wait: bool,
) {
    let chart_ref = format!("istio/{chart}");
    let mut args = vec![
        "install",
        release,
        &chart_ref,
        "-n",
        namespace,
        "--create-namespace",
        "--version",
        "1.30.4",
    ];
    // The ztunnel chart reads `hub` and `tag`; the others `global.hub` and `global.tag`.
    let (hub, tag) = if chart == "ztunnel" {
        ("hub=docker.io/istio", "tag=1.30.4")
    } else {
        ("global.hub=docker.io/istio", "global.tag=1.30.4")
    };
    if chart != "base" {
        args.extend(["--set", hub, "--set", tag]);
    }
    args.extend(values);
    if wait {
        args.push("--wait");
    }
    tools.run(cluster, "helm", &args);
}

/// base, istiod (an access log, `REGISTRY_ONLY`, a 2Gi memory limit) and an ingress gateway at
/// 1.30.4, installed by the real helm from the chart repository `add_repo` named, then Bookinfo
/// injected; asserts what helm installed.
fn helm_install_istio_1_30_4(tools: &Tools, cluster: &RealCluster, injector: &Injector) {
    let start = Instant::now();
    helm_install(
        tools,
        cluster,
        "istio-base",
        "base",
        "istio-system",
        &[],
        true,
    );
    helm_install(
        tools,
        cluster,
        "istiod",
        "istiod",
        "istio-system",
        &[
            "--set",
            "meshConfig.accessLogFile=/dev/stdout",
            "--set",
            "meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY",
            "--set",
            "resources.limits.memory=2Gi",
        ],
        true,
    );
    assert_webhooks_point_at(tools, cluster, injector, &["istio-sidecar-injector"]);
    helm_install(
        tools,
        cluster,
        "istio-ingressgateway",
        "gateway",
        "istio-ingress",
        &[],
        false,
    );
    // Not `helm --wait`: it waits for the LoadBalancer Service's address, which nothing here assigns.
    let out = tools.kubectl(
        cluster,
        &[
            "rollout",
            "status",
            "-n",
            "istio-ingress",
            "deployment/istio-ingressgateway",
            "--timeout=180s",
        ],
    );
    assert!(
        out.status.success(),
        "gateway rollout: {}",
        text(&out.stderr)
    );
    eprintln!(
        "timing: helm install of base, istiod and gateway 1.30.4: {:.1?}",
        start.elapsed()
    );

    // What helm installed.
    let istiod = tools.kubectl_json(
        cluster,
        &["get", "deployment", "-n", "istio-system", "istiod"],
    );
    let discovery = &istiod["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(discovery["image"], "docker.io/istio/pilot:1.30.4");
    assert_eq!(discovery["resources"]["limits"]["memory"], "2Gi");
    let mesh = tools.kubectl_json(
        cluster,
        &["get", "configmap", "-n", "istio-system", "istio"],
    );
    let mesh_config = mesh["data"]["mesh"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        mesh_config.contains("accessLogFile: /dev/stdout"),
        "{mesh_config}"
    );
    assert!(mesh_config.contains("mode: REGISTRY_ONLY"), "{mesh_config}");
    let gateway = proxy_images(tools, cluster, "istio-ingress");
    assert!(!gateway.is_empty());
    for (pod, image) in &gateway {
        assert_eq!(
            image.as_deref(),
            Some("docker.io/istio/proxyv2:1.30.4"),
            "gateway pod {pod}"
        );
    }

    deploy_bookinfo(tools, cluster, "bookinfo", "istio-injection", "enabled");
    assert_proxies(tools, cluster, "bookinfo", "docker.io/istio/proxyv2:1.30.4");
}

/// Istio 1.30.4 installed by the real helm (base, istiod with non-default values, an ingress gateway),
/// Bookinfo injected: check detects every component; the plan is a helm canary to 1.31.0 that carries
/// the release's values and takes the charts from the mirror (`--chart-repo`); `apply --yes` runs it
/// with the real helm: every proxy ends on 1.31.0, the namespace on the new revision, the old
/// release gone, and the new revision's mesh config and resources equal the old ones.
#[test]
fn helm_canary_from_1_30_4_to_1_31_0() {
    let whole = Instant::now();
    let cluster = RealCluster::start();
    let injector = Injector::start(cluster.kubeconfig());
    let tools = Tools::new(None);
    let repo = ChartRepo::start();
    add_repo(&tools, &cluster, &repo);
    helm_install_istio_1_30_4(&tools, &cluster, &injector);

    // check detects every component.
    let observed = tools.snapshot(&cluster);
    let istio = observed.istio.as_ref().expect("Istio observed");
    assert_eq!(istio.control_planes.len(), 1, "{:?}", istio.control_planes);
    assert_eq!(istio.control_planes[0].revision, "default");
    assert_eq!(
        istio.control_planes[0].istiod.version.version,
        Some(Version::new(1, 30, 4))
    );
    assert!(
        istio
            .webhooks
            .iter()
            .any(|w| w.name == "istio-sidecar-injector" && w.revision == "default"),
        "{:?}",
        istio.webhooks
    );
    let gateways: Vec<_> = istio
        .gateways
        .iter()
        .map(|g| format!("{}/{}", g.workload.namespace, g.workload.name))
        .collect();
    assert_eq!(gateways, ["istio-ingress/istio-ingressgateway"]);
    assert!(
        istio
            .namespaces
            .iter()
            .any(|n| n.name == "bookinfo" && n.label == "istio-injection" && n.value == "enabled")
    );
    let proxies: u64 = istio
        .proxies
        .iter()
        .filter(|p| p.namespace == "bookinfo")
        .map(|p| p.pods)
        .sum();
    assert_eq!(proxies, 10, "{:?}", istio.proxies);
    assert!(
        istio
            .proxies
            .iter()
            .filter(|p| p.namespace == "bookinfo")
            .all(|p| p.version.version == Some(Version::new(1, 30, 4)))
    );
    let (code, report) = check_json(&tools, &cluster);
    eprintln!("check: exit {code:?}, summary {}", report["summary"]);
    assert_eq!(code, Some(0), "{report:#}");

    // The plans the planner offers today.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, default_plan) = make_plan(
        &tools,
        &cluster,
        dir.path(),
        "default.yaml",
        &["--to", "istio=1.31.0"],
    );
    let default_steps = plan_steps(&default_plan);
    eprintln!(
        "default plan ({}): {default_steps:#?}",
        default_plan["strategy"]
    );
    // What the planner offers a Helm install: a canary installed by helm, as the mesh was, from
    // Istio's chart repository, with the release's own values carried as a file (access log,
    // REGISTRY_ONLY, the memory limit; the revision set anew).
    assert_eq!(default_plan["strategy"], "canary");
    let install = default_steps
        .iter()
        .find(|(id, _)| id.ends_with("-install-1-31-0"))
        .map(|(_, what)| what.as_str());
    assert_eq!(
        install,
        Some(
            "run helm install istiod-1-31-0 istiod --repo https://istio-release.storage.googleapis.com/charts --version 1.31.0 --namespace istio-system --set revision=1-31-0 --set global.hub=docker.io/istio --set global.tag=1.31.0 --wait"
        ),
        "{default_steps:#?}"
    );
    // ... carrying the release's own values, read from the release Secret the real helm wrote.
    let carried = default_plan["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|id| id.ends_with("-install-1-31-0"))
        })
        .map(|s| s["action"]["config"].clone())
        .unwrap_or_default();
    assert_eq!(carried["kind"], "helm-values", "{carried}");
    assert!(
        carried["source"]
            .as_str()
            .is_some_and(|s| s.contains("Helm release istio-system/istiod")),
        "{carried}"
    );
    let document = &carried["document"];
    assert_eq!(document["meshConfig"]["accessLogFile"], "/dev/stdout");
    assert_eq!(
        document["meshConfig"]["outboundTrafficPolicy"]["mode"],
        "REGISTRY_ONLY"
    );
    assert_eq!(document["resources"]["limits"]["memory"], "2Gi");
    assert!(document.get("revision").is_none(), "{document}");
    let mesh_before = mesh_config(&tools, &cluster, "istio");
    let (plan_file, _) = make_plan(
        &tools,
        &cluster,
        dir.path(),
        "canary.yaml",
        &[
            "--to",
            "istio=1.31.0",
            "--chart-repo",
            &format!("istio={}", repo.url),
        ],
    );
    apply_from_mirror(
        &tools,
        &cluster,
        &plan_file,
        &repo,
        "helm canary 1.30.4 -> 1.31.0",
    );

    // The cluster afterwards: the new revision from the real helm, with the user's values.
    let releases = helm_releases(&tools, &cluster, "istio-system");
    eprintln!("helm releases after apply: {releases:?}");
    assert!(
        releases.contains(&("istiod-1-31-0".to_string(), "istiod-1.31.0".to_string())),
        "{releases:?}"
    );
    assert!(
        !releases.iter().any(|(name, _)| name == "istiod"),
        "{releases:?}"
    );
    let values = helm_values(&tools, &cluster, "istiod-1-31-0", "istio-system");
    assert_eq!(values["revision"], "1-31-0", "{values}");
    assert_eq!(
        values["meshConfig"]["accessLogFile"], "/dev/stdout",
        "{values}"
    );
    assert_eq!(
        values["meshConfig"]["outboundTrafficPolicy"]["mode"],
        "REGISTRY_ONLY"
    );
    let new_istiod = tools.kubectl_json(
        &cluster,
        &["get", "deployment", "-n", "istio-system", "istiod-1-31-0"],
    );
    let discovery = &new_istiod["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(discovery["image"], "docker.io/istio/pilot:1.31.0");
    assert_eq!(discovery["resources"]["limits"]["memory"], "2Gi");
    // Equal but for the address of the revision's own istiod, which the chart derives from it.
    let mesh_after = mesh_config(&tools, &cluster, "istio-1-31-0");
    assert_eq!(
        mesh_after.replace("istiod-1-31-0.istio-system.svc", "istiod.istio-system.svc"),
        mesh_before,
        "the new revision's mesh config"
    );
    assert_proxies(
        &tools,
        &cluster,
        "bookinfo",
        "docker.io/istio/proxyv2:1.31.0",
    );
    let namespace = tools.kubectl_json(&cluster, &["get", "namespace", "bookinfo"]);
    eprintln!(
        "bookinfo labels after apply: {}",
        namespace["metadata"]["labels"]
    );
    let deployments =
        names(&tools.kubectl_json(&cluster, &["get", "deployments", "-n", "istio-system"]));
    assert!(deployments.contains("istiod-1-31-0"), "{deployments:?}");
    assert!(!deployments.contains("istiod"), "{deployments:?}");
    let (code, report) = check_json(&tools, &cluster);
    eprintln!(
        "check after apply: exit {code:?}, summary {}",
        report["summary"]
    );
    assert_eq!(code, Some(0), "{report:#}");
    eprintln!("timing: whole test: {:.1?}", whole.elapsed());
}

/// The same Helm install upgraded in place (`--strategy in-place`) from the mirror: base first, then
/// istiod and the gateway with `helm upgrade --reset-values --values <the release's values>`; the
/// releases end at chart 1.31.0 with the user's values, istiod runs pilot:1.31.0 with the same mesh
/// config and memory limit, and the restarted proxies run 1.31.0.
#[test]
fn helm_in_place_from_1_30_4_to_1_31_0() {
    let whole = Instant::now();
    let cluster = RealCluster::start();
    let injector = Injector::start(cluster.kubeconfig());
    let tools = Tools::new(None);
    let repo = ChartRepo::start();
    add_repo(&tools, &cluster, &repo);
    helm_install_istio_1_30_4(&tools, &cluster, &injector);
    let mesh_before = mesh_config(&tools, &cluster, "istio");
    let dir = tempfile::tempdir().expect("tempdir");
    let (plan_file, plan) = make_plan(
        &tools,
        &cluster,
        dir.path(),
        "in-place.yaml",
        &[
            "--to",
            "istio=1.31.0",
            "--strategy",
            "in-place",
            "--chart-repo",
            &format!("istio={}", repo.url),
        ],
    );
    let steps = plan_steps(&plan);
    eprintln!("in-place plan: {steps:#?}");
    assert_eq!(plan["strategy"], "in-place");
    let helm: Vec<&str> = steps
        .iter()
        .filter(|(_, what)| what.starts_with("run helm"))
        .map(|(_, what)| what.as_str())
        .collect();
    assert!(
        !helm.is_empty()
            && helm
                .iter()
                .all(|w| w.contains(&format!("--repo {} ", repo.url))),
        "{helm:#?}"
    );
    assert!(
        helm.iter().all(|w| !w.contains("--reuse-values")),
        "{helm:#?}"
    );

    // istiod patches only the webhooks' caBundle; the injector also points them at itself, which
    // helm's upgrade of the istiod chart cannot merge: hand them back to their Service until helm has
    // upgraded istiod (tests/it/real/injector.rs), then point them here again before pods restart.
    injector.hand_back(cluster.kubeconfig());
    let start = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let upgraded = helm_releases(&tools, &cluster, "istio-system")
                    .contains(&("istiod".to_string(), "istiod-1.31.0".to_string()));
                if upgraded {
                    injector.take_over();
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let out = tools.meshup(
            &cluster,
            &[
                "apply",
                plan_file.to_str().expect("utf-8"),
                "--yes",
                "--allow-chart-repo",
                &repo.url,
            ],
        );
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    });
    eprintln!("{}{}", text(&out.stdout), text(&out.stderr));
    eprintln!(
        "timing: kubectl meshup apply (helm in place 1.30.4 -> 1.31.0): exit {:?} in {:.1?}",
        out.status.code(),
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "apply failed");

    // Afterwards: every release at chart 1.31.0, the user's values intact.
    let releases = helm_releases(&tools, &cluster, "istio-system");
    assert!(
        releases.contains(&("istio-base".to_string(), "base-1.31.0".to_string())),
        "{releases:?}"
    );
    assert!(
        releases.contains(&("istiod".to_string(), "istiod-1.31.0".to_string())),
        "{releases:?}"
    );
    let gateways = helm_releases(&tools, &cluster, "istio-ingress");
    assert!(
        gateways.contains(&(
            "istio-ingressgateway".to_string(),
            "gateway-1.31.0".to_string()
        )),
        "{gateways:?}"
    );
    let values = helm_values(&tools, &cluster, "istiod", "istio-system");
    eprintln!("istiod release values after apply: {values}");
    assert_eq!(values["meshConfig"]["accessLogFile"], "/dev/stdout");
    assert_eq!(
        values["meshConfig"]["outboundTrafficPolicy"]["mode"],
        "REGISTRY_ONLY"
    );
    assert_eq!(values["resources"]["limits"]["memory"], "2Gi");
    let istiod = tools.kubectl_json(
        &cluster,
        &["get", "deployment", "-n", "istio-system", "istiod"],
    );
    let discovery = &istiod["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(discovery["image"], "docker.io/istio/pilot:1.31.0");
    assert_eq!(discovery["resources"]["limits"]["memory"], "2Gi");
    assert_eq!(mesh_config(&tools, &cluster, "istio"), mesh_before);
    let gateway = proxy_images(&tools, &cluster, "istio-ingress");
    assert!(!gateway.is_empty());
    for (pod, image) in &gateway {
        assert_eq!(
            image.as_deref(),
            Some("docker.io/istio/proxyv2:1.31.0"),
            "gateway pod {pod}"
        );
    }
    assert_proxies(
        &tools,
        &cluster,
        "bookinfo",
        "docker.io/istio/proxyv2:1.31.0",
    );
    let (code, report) = check_json(&tools, &cluster);
    eprintln!(
        "check after apply: exit {code:?}, summary {}",
        report["summary"]
    );
    assert_eq!(code, Some(0), "{report:#}");
    eprintln!("timing: whole test: {:.1?}", whole.elapsed());
}

/// `kubectl meshup apply PLAN --yes --allow-chart-repo <mirror>`: the plan's charts come from the
/// mirror on 127.0.0.1 (planned with `--chart-repo`); asserts it exits 0 and prints its time.
fn apply_from_mirror(
    tools: &Tools,
    cluster: &RealCluster,
    plan: &Path,
    repo: &ChartRepo,
    what: &str,
) {
    let start = Instant::now();
    let out = tools.meshup(
        cluster,
        &[
            "apply",
            plan.to_str().expect("utf-8"),
            "--yes",
            "--allow-chart-repo",
            &repo.url,
        ],
    );
    eprintln!("{}{}", text(&out.stdout), text(&out.stderr));
    eprintln!(
        "timing: kubectl meshup apply ({what}): exit {:?} in {:.1?}",
        out.status.code(),
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "apply failed");
}

/// The `mesh` document of ConfigMap istio-system/`name`.
fn mesh_config(tools: &Tools, cluster: &RealCluster, name: &str) -> String {
    let map = tools.kubectl_json(cluster, &["get", "configmap", "-n", "istio-system", name]);
    map["data"]["mesh"].as_str().unwrap_or_default().to_string()
}

/// `(release, chart)` of each Helm release in `namespace`, as `helm list` shows them.
fn helm_releases(tools: &Tools, cluster: &RealCluster, namespace: &str) -> Vec<(String, String)> {
    let out = tools
        .command("helm", cluster)
        .args(["list", "-n", namespace, "-o", "json"])
        .output()
        .expect("helm list");
    assert!(out.status.success(), "helm list: {}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).expect("helm list JSON");
    list.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["chart"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Ambient from the real charts at 1.30.4 (base, istiod, istio-cni and ztunnel with the ambient
/// profile): check finds ztunnel and istio-cni as the charts render them (the ztunnel DaemonSet
/// carries `app.kubernetes.io/name: ztunnel`, not `app: ztunnel`) and judges them; the canary plan
/// to 1.31.0 (istio-cni and ztunnel in place) applied with the real helm from the mirror leaves
/// ztunnel at `ztunnel:1.31.0` and istio-cni at `install-cni:1.31.0-distroless`.
#[test]
fn helm_ambient_1_30_4_found_and_upgraded() {
    let whole = Instant::now();
    let cluster = RealCluster::start();
    let _injector = Injector::start(cluster.kubeconfig());
    let tools = Tools::new(None);
    let repo = ChartRepo::start();
    add_repo(&tools, &cluster, &repo);
    let start = Instant::now();
    helm_install(
        &tools,
        &cluster,
        "istio-base",
        "base",
        "istio-system",
        &[],
        true,
    );
    let ambient = ["--set", "profile=ambient"];
    helm_install(
        &tools,
        &cluster,
        "istiod",
        "istiod",
        "istio-system",
        &ambient,
        true,
    );
    helm_install(
        &tools,
        &cluster,
        "istio-cni",
        "cni",
        "istio-system",
        &ambient,
        true,
    );
    helm_install(
        &tools,
        &cluster,
        "ztunnel",
        "ztunnel",
        "istio-system",
        &[],
        true,
    );
    eprintln!(
        "timing: helm install of base, istiod, cni and ztunnel 1.30.4: {:.1?}",
        start.elapsed()
    );

    // As the charts render them: ztunnel's DaemonSet without `app: ztunnel`.
    let ztunnel = tools.kubectl_json(
        &cluster,
        &["get", "daemonset", "-n", "istio-system", "ztunnel"],
    );
    assert_eq!(
        ztunnel["metadata"]["labels"]["app.kubernetes.io/name"],
        "ztunnel"
    );
    assert!(
        ztunnel["metadata"]["labels"]["app"].is_null(),
        "{:#}",
        ztunnel["metadata"]
    );
    let cni = tools.kubectl_json(
        &cluster,
        &["get", "daemonset", "-n", "istio-system", "istio-cni-node"],
    );
    assert_eq!(cni["metadata"]["labels"]["k8s-app"], "istio-cni-node");

    cluster.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ambient-apps\n  labels:\n    istio.io/dataplane-mode: ambient\n");

    let observed = tools.snapshot(&cluster);
    let istio = observed.istio.as_ref().expect("Istio observed");
    let images = |ds: &Value| {
        ds["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(images(&ztunnel), "docker.io/istio/ztunnel:1.30.4");
    // The cni chart defaults to the distroless variant.
    assert_eq!(
        images(&cni),
        "docker.io/istio/install-cni:1.30.4-distroless"
    );
    let z = istio.ztunnel.as_ref().expect("ztunnel found");
    assert_eq!(
        (z.namespace.as_str(), z.name.as_str(), z.kind.as_str()),
        ("istio-system", "ztunnel", "DaemonSet")
    );
    assert_eq!(z.version.version, Some(Version::new(1, 30, 4)), "{z:?}");
    assert_eq!(z.desired, z.ready, "{z:?}");
    let c = istio.cni.as_ref().expect("istio-cni found");
    assert_eq!(c.name, "istio-cni-node");
    assert_eq!(c.version.version, Some(Version::new(1, 30, 4)), "{c:?}");
    assert!(
        istio.control_planes[0].ambient_enabled,
        "{:?}",
        istio.control_planes
    );
    assert!(
        istio
            .namespaces
            .iter()
            .any(|n| n.name == "ambient-apps" && n.value == "ambient")
    );
    assert!(
        istio.proxies.is_empty(),
        "ztunnel pods are not proxies: {:?}",
        istio.proxies
    );

    let (code, report) = check_json(&tools, &cluster);
    let found = findings(&report);
    eprintln!("check: exit {code:?}, findings {found:#?}");
    assert!(
        found
            .iter()
            .any(|(rule, _, subject)| rule.contains("ztunnel") || subject.contains("ztunnel")),
        "{found:#?}"
    );
    assert_eq!(code, Some(0), "{report:#}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (plan_file, plan) = make_plan(
        &tools,
        &cluster,
        dir.path(),
        "plan.yaml",
        &[
            "--to",
            "istio=1.31.0",
            "--chart-repo",
            &format!("istio={}", repo.url),
        ],
    );
    let steps = plan_steps(&plan);
    eprintln!("ambient plan ({}): {steps:#?}", plan["strategy"]);
    // The cni and ztunnel steps set the version and keep each component's own flavor the way its
    // chart reads it: the cni chart appends its `variant` (distroless under the ambient profile, as
    // istiod's) to `global.tag`; the ztunnel chart reads its own `hub`/`tag` and runs upstream.
    let step = |suffix: &str| {
        steps
            .iter()
            .find(|(id, _)| id.ends_with(suffix))
            .map(|(_, what)| what.clone())
            .unwrap_or_default()
    };
    let cni_step = step("-istio-cni-1-31-0");
    assert!(
        cni_step.ends_with(
            "--set global.hub=docker.io/istio --set global.tag=1.31.0 --set global.variant=distroless"
        ),
        "{cni_step}"
    );
    let ztunnel_step = step("-ztunnel-1-31-0");
    assert!(
        ztunnel_step.starts_with("run helm upgrade ztunnel ztunnel ")
            && ztunnel_step.contains("--version 1.31.0")
            && ztunnel_step.ends_with("--set hub=docker.io/istio --set tag=1.31.0"),
        "{steps:#?}"
    );

    apply_from_mirror(
        &tools,
        &cluster,
        &plan_file,
        &repo,
        "ambient canary 1.30.4 -> 1.31.0",
    );

    // Afterwards: the new control plane beside nothing old, ztunnel and istio-cni at 1.31.0 in
    // their own flavors, as the real helm rendered the new charts.
    let ztunnel = tools.kubectl_json(
        &cluster,
        &["get", "daemonset", "-n", "istio-system", "ztunnel"],
    );
    assert_eq!(images(&ztunnel), "docker.io/istio/ztunnel:1.31.0");
    let cni = tools.kubectl_json(
        &cluster,
        &["get", "daemonset", "-n", "istio-system", "istio-cni-node"],
    );
    assert_eq!(
        images(&cni),
        "docker.io/istio/install-cni:1.31.0-distroless"
    );
    let deployments =
        names(&tools.kubectl_json(&cluster, &["get", "deployments", "-n", "istio-system"]));
    assert!(deployments.contains("istiod-1-31-0"), "{deployments:?}");
    let after = tools.snapshot(&cluster);
    let istio = after.istio.as_ref().expect("Istio observed");
    assert!(
        istio
            .control_planes
            .iter()
            .all(|cp| cp.istiod.version.version == Some(Version::new(1, 31, 0))),
        "{:?}",
        istio.control_planes
    );
    assert!(istio.control_planes.iter().all(|cp| cp.ambient_enabled));
    eprintln!("timing: whole test: {:.1?}", whole.elapsed());
}

/// The rendered-object fixtures (tests/fixtures/rendered/istio-<version>/<chart>.yaml): what
/// `helm template` of each packaged chart prints, with the release names and namespaces of the
/// install guides and the values a test names. observe's detection is tested on them
/// (src/observe, tests/it/observe.rs).
const RENDERED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rendered");

/// (file, chart, release, namespace, values) rendered for each version. The second gateway is named
/// as Istio's Helm install guide names it (`helm install istio-ingress istio/gateway`: the chart then
/// labels it `istio: ingress`) and pinned to a revision (the chart sets `istio.io/rev` on the pod
/// template only).
const RENDERED_CHARTS: [(&str, &str, &str, &str, &[&str]); 6] = [
    ("base", "base", "istio-base", "istio-system", &[]),
    ("istiod", "istiod", "istiod", "istio-system", &[]),
    (
        "gateway",
        "gateway",
        "istio-ingressgateway",
        "istio-ingress",
        &[],
    ),
    (
        "gateway-revision",
        "gateway",
        "istio-ingress",
        "istio-gateways",
        &["--set", "revision=canary"],
    ),
    (
        "cni",
        "cni",
        "istio-cni",
        "istio-system",
        &["--set", "profile=ambient"],
    ),
    ("ztunnel", "ztunnel", "ztunnel", "istio-system", &[]),
];

fn helm_template(
    version: &str,
    chart: &str,
    release: &str,
    namespace: &str,
    values: &[&str],
) -> String {
    let tgz = charts(&format!("istio-{version}")).join(format!("{chart}-{version}.tgz"));
    let out = Command::new(bin("helm"))
        .args(["template", release])
        .arg(&tgz)
        .args(["--namespace", namespace, "--kube-version", "v1.34.4"])
        .args(values)
        .output()
        .expect("helm template");
    assert!(
        out.status.success(),
        "helm template {}: {}",
        tgz.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The committed fixtures are exactly what the real helm renders from the packaged charts
/// (`MESHUP_UPDATE_RENDERED=1` rewrites them).
#[test]
fn rendered_fixtures_are_what_the_charts_render() {
    let update = std::env::var_os("MESHUP_UPDATE_RENDERED").is_some();
    for version in ["1.30.4", "1.31.0"] {
        let dir = Path::new(RENDERED).join(format!("istio-{version}"));
        for (name, chart, release, namespace, values) in RENDERED_CHARTS {
            let rendered = helm_template(version, chart, release, namespace, values);
            let file = dir.join(format!("{name}.yaml"));
            if update {
                std::fs::create_dir_all(&dir).expect("fixture dir");
                std::fs::write(&file, &rendered).expect("write fixture");
                continue;
            }
            let committed = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (MESHUP_UPDATE_RENDERED=1 writes it)",
                    file.display()
                )
            });
            assert!(
                committed == rendered,
                "{} differs from `helm template` of {chart} {version}",
                file.display()
            );
        }
    }
}
