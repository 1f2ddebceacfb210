//! A Gloo Mesh 0.10 management plane on the real control plane, and the pre-1.0 runbook's plan for it.
//!
//! The Gloo Mesh chart, its CRDs and a meshctl of that era cannot be had on this machine (the Go
//! module proxy answers 403 for github.com/solo-io/gloo-mesh), so they are stood in for: the chart is
//! built here from the repository's fixtures (tests/fixtures/apply/gloo-mesh: the 0.10 CRDs and
//! objects as the chart renders them, the 1.0 CRDs), packaged by the real helm and served from a chart
//! repository on 127.0.0.1; meshctl is the stand-in of tests/fixtures/apply/bin. Everything else is
//! real: helm installs and upgrades the release, the API server validates and stores every object,
//! the controllers roll the Deployments out and kwok runs their pods.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use kubectl_meshup::compat::CompatData;
use kubectl_meshup::plan::{self, Action, ChartRepos, Gate, PlanRequest, UpgradePlan};
use kubectl_meshup::snapshot::ClusterSnapshot;
use kubectl_meshup::version::Minor;

use crate::real::harness::{RealCluster, bin, text};
use crate::support::FIXTURES;

pub const NAMESPACE: &str = "gloo-mesh";
pub const DISCOVERY_GROUP: &str = "discovery.mesh.gloo.solo.io";

/// The chart's templates (both versions): what cluster.yaml's Deployments are, as helm renders them.
const TEMPLATES: &str = r#"{{- range $name := list "discovery" "networking" }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ $.Release.Namespace }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $.Release.Namespace }}
  labels:
    app: {{ $name }}
    app.kubernetes.io/name: {{ $name }}
    app.kubernetes.io/version: {{ $.Chart.AppVersion }}
    helm.sh/chart: gloo-mesh-{{ $.Chart.Version }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ $name }}}
  template:
    metadata:
      labels: {app: {{ $name }}}
    spec:
      serviceAccountName: {{ $name }}
      containers:
      - name: {{ $name }}
        image: gcr.io/gloo-mesh/gloo-mesh:{{ $.Chart.AppVersion }}
        args: [{{ $name }}, --metrics-port=9091, --verbose=true]
{{- end }}
"#;

/// The documents of a fixture file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read fixture");
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).expect("fixture parses");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn yaml_stream(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_json::to_string(d).expect("json")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A chart repository on 127.0.0.1 serving the stand-in Gloo Mesh chart 0.10.6 and 1.0.0.
pub struct ChartRepo {
    pub url: String,
    stop: Arc<AtomicBool>,
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// helm with its own home directories under the cluster's, for `kubeconfig`.
pub fn helm(cluster: &RealCluster) -> Command {
    let mut cmd = Command::new(bin("helm"));
    helm_env(&mut cmd, cluster);
    cmd
}

fn helm_env(cmd: &mut Command, cluster: &RealCluster) {
    let home = cluster.dir().join("helm");
    cmd.env("KUBECONFIG", cluster.kubeconfig())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

impl ChartRepo {
    pub fn start(cluster: &RealCluster) -> ChartRepo {
        let root = cluster.dir().join("chart-repo");
        std::fs::create_dir_all(&root).expect("chart repo dir");
        let cluster_docs = documents(&Path::new(FIXTURES).join("gloo-mesh/cluster.yaml"));
        let crds_0_10: Vec<Value> = cluster_docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .cloned()
            .collect();
        let crds_1_0 = documents(&Path::new(FIXTURES).join("gloo-mesh/crds-1.0.0.yaml"));
        for (version, crds) in [("0.10.6", &crds_0_10), ("1.0.0", &crds_1_0)] {
            let src = cluster.dir().join(format!("chart-src-{version}/gloo-mesh"));
            std::fs::create_dir_all(src.join("templates")).expect("chart dir");
            std::fs::create_dir_all(src.join("crds")).expect("chart dir");
            std::fs::write(
                src.join("Chart.yaml"),
                format!(
                    "apiVersion: v2\nname: gloo-mesh\nversion: {version}\nappVersion: {version}\ndescription: Stand-in for the Gloo Mesh {version} chart (kubectl-meshup real-cluster tests)\n"
                ),
            )
            .expect("Chart.yaml");
            std::fs::write(src.join("templates/gloo-mesh.yaml"), TEMPLATES).expect("template");
            std::fs::write(src.join("crds/crds.yaml"), yaml_stream(crds)).expect("crds");
            run_ok(
                helm(cluster)
                    .arg("package")
                    .arg(&src)
                    .arg("--destination")
                    .arg(&root),
            );
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind chart repo");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        run_ok(
            helm(cluster)
                .args(["repo", "index"])
                .arg(&root)
                .args(["--url", &url]),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || serve(listener, root, stopping));
        ChartRepo { url, stop }
    }
}

/// A minimal static file server: GET /NAME answers the file NAME of `root`.
fn serve(listener: TcpListener, root: PathBuf, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        let mut reader = BufReader::new(&stream);
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        // Skip the headers.
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => break,
                Ok(_) if header.trim().is_empty() => break,
                Ok(_) => {}
            }
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/");
        let name = path.trim_start_matches('/');
        let file = (!name.contains("..") && !name.is_empty())
            .then(|| std::fs::read(root.join(name)).ok())
            .flatten();
        let _ = match file {
            Some(body) => stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )
                .and_then(|_| stream.write_all(&body)),
            None => stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
        };
    }
}

/// The installed Gloo Mesh 0.10.6: the release by helm, then what 0.10 discovery and the user wrote
/// (cluster.yaml's VirtualMesh, Mesh, TrafficTarget and Workload).
pub struct GlooMesh {
    pub repo: ChartRepo,
    /// A directory with the real helm and the stand-in meshctl (reporting 1.0.0), for `PATH`.
    pub tools: PathBuf,
}

impl GlooMesh {
    pub fn install(cluster: &mut RealCluster) -> GlooMesh {
        let repo = ChartRepo::start(cluster);
        run_ok(helm(cluster).args([
            "install",
            "gloo-mesh",
            "gloo-mesh",
            "--repo",
            &repo.url,
            "--version",
            "0.10.6",
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--wait",
            "--timeout=120s",
        ]));
        let cluster_docs = documents(&Path::new(FIXTURES).join("gloo-mesh/cluster.yaml"));
        let written: Vec<Value> = cluster_docs
            .into_iter()
            .filter(|d| {
                !matches!(
                    d["kind"].as_str(),
                    Some("CustomResourceDefinition" | "Deployment" | "Namespace")
                )
            })
            .collect();
        cluster.apply_yaml(&yaml_stream(&written));

        let tools = cluster.dir().join("tools");
        std::fs::create_dir_all(&tools).expect("tools dir");
        std::os::unix::fs::symlink(bin("helm"), tools.join("helm")).expect("helm link");
        // The stand-in meshctl picks its cluster with cluster.sh beside it, as the real one would.
        for file in ["meshctl", "cluster.sh"] {
            std::fs::copy(Path::new(FIXTURES).join("bin").join(file), tools.join(file))
                .expect(file);
        }
        std::fs::write(tools.join("meshctl.version"), "1.0.0").expect("meshctl.version");
        GlooMesh { repo, tools }
    }

    /// `kubectl-meshup` with the tools first on `PATH` and helm's homes set, for `kubeconfig`.
    pub fn meshup_command(&self, cluster: &RealCluster, kubeconfig: &Path) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.tools.clone()];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = cluster.meshup_command_for(kubeconfig);
        helm_env(&mut cmd, cluster);
        cmd.env("KUBECONFIG", kubeconfig)
            .env("PATH", std::env::join_paths(dirs).expect("PATH"));
        cmd
    }

    /// `kubectl-meshup ARGS`, as [`GlooMesh::meshup_command`].
    pub fn meshup(&self, cluster: &RealCluster, kubeconfig: &Path, args: &[&str]) -> Output {
        self.meshup_command(cluster, kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl-meshup")
    }

    /// `--allow-chart-repo URL` for the chart repository on 127.0.0.1: every apply of
    /// [`runbook_plan`] passes it, as an air-gapped site approves its mirror.
    pub fn allow_repo(&self) -> [&str; 2] {
        ["--allow-chart-repo", &self.repo.url]
    }

    /// `apply PLAN --allow-chart-repo URL --yes --force-conflicts`, as [`GlooMesh::meshup`]: the
    /// mirror approved, nobody at the terminal, the CRDs helm installed taken over.
    pub fn apply(&self, cluster: &RealCluster, kubeconfig: &Path, plan: &str) -> Output {
        let [allow, url] = self.allow_repo();
        self.meshup(
            cluster,
            kubeconfig,
            &["apply", plan, allow, url, "--yes", "--force-conflicts"],
        )
    }

    /// The meshctl calls the stand-in recorded.
    pub fn meshctl_calls(&self) -> Vec<String> {
        crate::support::tool_calls(&self.tools)
    }
}

/// Plays Gloo Mesh 1.0 discovery: once the discovery Deployment runs while the 1.0 CRDs are served
/// (the runbook's step 8), it writes what it discovers
/// (discovered.yaml: a v1 mesh, destination and workload). Runs until the returned guard drops.
pub struct Discovery {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn play_discovery(cluster: &RealCluster) -> Discovery {
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let cache = cluster.dir().join("kubecache");
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let discovered = Path::new(FIXTURES).join("gloo-mesh/discovered.yaml");
    let thread = std::thread::spawn(move || {
        let kubectl = |args: &[&str]| {
            Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .env("KUBECACHEDIR", &cache)
                .args(args)
                .output()
                .map(|o| text(&o.stdout))
                .unwrap_or_default()
        };
        while !stopping.load(Ordering::SeqCst) {
            let replicas = kubectl(&[
                "get",
                "deployment",
                "discovery",
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.spec.replicas}",
            ]);
            // Destinations are served from the runbook's step 4 on (the 1.0 CRDs); discovery is
            // at zero from step 2 to step 8.
            if replicas.trim() == "1" {
                let served = kubectl(&["api-resources", "--api-group", DISCOVERY_GROUP]);
                if served.contains("destinations") {
                    let path = discovered.display().to_string();
                    kubectl(&["apply", "--server-side", "-f", &path]);
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    Discovery {
        stop,
        thread: Some(thread),
    }
}

/// The planner's plan of the Gloo Mesh pre-1.0 runbook (shared/seeds/gloo-mesh-upgrading.md), 0.10.6 ->
/// 1.0.0, for the cluster as `snapshot` read it, with the chart repository `repo` (the stand-in, as
/// `--chart-repo gloo-mesh=URL` names it), so its fingerprint and scope are the planner's and `apply`
/// finds no drift. Three things differ from `kubectl meshup plan`, each because this cluster is a
/// stand-in:
/// - the compatibility data lists Kubernetes 1.16-1.21 for Gloo Mesh 1.0, where the planner refuses,
///   and this control plane is v1.34 (the only one the real tier has): the test adds the cluster's
///   minor to that row;
/// - runbook step 5's manual review of the networking resources is left out (nobody here confirms
///   it; tests/it/apply.rs confirms it as `--confirm-manual` would);
/// - the closing "check passes" gate is left out: `check`, with the real data, rightly fails Gloo
///   Mesh 1.0 on v1.34.
///
/// This cluster registered none, so no re-registration (runbook step 7): fifteen steps. The chart
/// repository is not the vendor's, so every apply of this plan approves it with `--allow-chart-repo`
/// ([`GlooMesh::allow_repo`]).
pub fn runbook_plan(repo: &str, snapshot: &ClusterSnapshot) -> UpgradePlan {
    let kubernetes = snapshot.clusters[0].kubernetes.minor();
    let mut compat = CompatData::embedded();
    for release in &mut compat.gloo_mesh.releases {
        if release.minor == Minor::new(1, 0) && !release.k8s.contains(&kubernetes) {
            release.k8s.push(kubernetes);
        }
    }
    let request = PlanRequest {
        targets: vec!["gloo-mesh=1.0.0".parse().expect("target")],
        chart_repos: ChartRepos {
            gloo_mesh: repo.to_string(),
            ..ChartRepos::default()
        },
        tool_version: env!("CARGO_PKG_VERSION").into(),
        ..PlanRequest::default()
    };
    let mut plan = plan::plan(snapshot, &compat, &request).expect("the planner plans the runbook");
    plan.steps.retain(|s| {
        !matches!(
            s.action,
            Action::Manual { .. }
                | Action::Gate {
                    gate: Gate::CheckPasses
                }
        )
    });
    assert_eq!(plan.steps.len(), 15, "{:#?}", plan.steps);
    plan
}

/// The cluster as `kubectl meshup snapshot` reads it (admin).
pub fn snapshot(cluster: &RealCluster) -> ClusterSnapshot {
    let out = cluster.meshup(&["snapshot", "-o", "json"]);
    assert!(out.status.success(), "snapshot: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("snapshot parses")
}

/// Writes the runbook plan for the cluster as it is now; returns the plan file.
pub fn write_plan(cluster: &RealCluster, gloo: &GlooMesh) -> PathBuf {
    let plan = runbook_plan(&gloo.repo.url, &snapshot(cluster));
    let path = cluster.dir().join("plan.yaml");
    std::fs::write(&path, kubectl_meshup::plan::to_yaml(&plan)).expect("write plan");
    path
}

/// Everything the runbook touches, by `kind namespace/name` -> resourceVersion (and the
/// Deployments' replicas and image, the CRDs' served versions), as admin reads it.
pub fn state(cluster: &RealCluster) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let resources = format!(
        "deployments,serviceaccounts,configmaps,leases,secrets,virtualmeshes.networking.mesh.gloo.solo.io,meshes.{g},traffictargets.{g},workloads.{g}",
        g = DISCOVERY_GROUP
    );
    let mut lists = vec![cluster.get_json(&[&resources, "-n", NAMESPACE])];
    if let Some(d) = cluster.try_get(
        "customresourcedefinitions",
        None,
        &format!("destinations.{DISCOVERY_GROUP}"),
    ) {
        lists.push(serde_json::json!({"items": [d]}));
        lists.push(cluster.get_json(&[&format!("destinations.{DISCOVERY_GROUP}"), "-A"]));
    }
    lists.push(cluster.get_json(&["customresourcedefinitions"]));
    for list in lists {
        for o in list["items"].as_array().into_iter().flatten() {
            let key = format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or(""),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            );
            let mut value = o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if o["kind"] == "Deployment" {
                value += &format!(
                    " replicas={} image={}",
                    o["spec"]["replicas"], o["spec"]["template"]["spec"]["containers"][0]["image"]
                );
            }
            if o["kind"] == "CustomResourceDefinition" {
                let served: Vec<String> = o["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["served"] == true)
                    .filter_map(|v| v["name"].as_str().map(String::from))
                    .collect();
                value += &format!(" served={}", served.join(","));
            }
            out.insert(key, value);
        }
    }
    out
}

/// The apply journal in the gloo-mesh namespace, as the cluster holds it.
pub fn journal(cluster: &RealCluster) -> Option<kubectl_meshup::apply::journal::Journal> {
    let cm = cluster.try_get("configmaps", Some(NAMESPACE), "kubectl-meshup-journal")?;
    let text = cm["data"]["journal.json"].as_str()?.to_string();
    Some(serde_json::from_str(&text).expect("journal.json parses"))
}
