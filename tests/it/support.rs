//! Setup shared by the integration tests: the built binary and its command line on a fake cluster;
//! for apply (`apply`, `e2e`, `kill_resume`, `scope`, `tool_cluster`) the fixtures, the fake Gloo
//! Mesh and Istio clusters, the stand-in tools and what they read, the journal as the cluster holds
//! it, and the controllers the fake API server does not play itself (Gloo Mesh discovery, the
//! sidecar injector); for observe and check (`observe`, `faults`, `fleet`, `cli`) the Istio ambient
//! fake and the sidecar pods it folds, and the rules of a report.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fake_apiserver::{Builder, Cluster as FakeCluster, FakeApiServer};
use serde_json::{Value, json};

use kubectl_meshup::apply::journal::Journal;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apply");

/// The built `kubectl-meshup`.
pub fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("kubectl-meshup")
}

/// Runs `cmd` (a [`meshup`] command) to its end and shows its exit code and stderr in the test's
/// output.
pub fn run(cmd: &mut assert_cmd::Command) -> std::process::Output {
    let out = cmd.output().expect("run kubectl-meshup");
    eprintln!(
        "exit {:?}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Text of a process's stdout/stderr.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The built `kubectl-meshup` as an `assert_cmd` command, with nothing of this shell's Kubernetes
/// setup (`KUBECONFIG`, in-cluster mode's `KUBERNETES_SERVICE_HOST`), colour or log level, and a 60 s
/// timeout.
pub fn meshup() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(binary());
    cmd.env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .timeout(Duration::from_secs(60));
    cmd
}

/// A file under tests/fixtures.
pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// `PATH` with `first` before the system's.
pub fn path_with(first: &[PathBuf]) -> OsString {
    let system = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(first.iter().cloned().chain(std::env::split_paths(&system))).expect("PATH")
}

/// The built `kubectl-meshup --kubeconfig KUBECONFIG ARGS` for a fake cluster: `PATH` as given, the
/// kubectl discovery cache in `cache`, and no `KUBECONFIG` from this shell.
pub fn meshup_on(kubeconfig: &Path, args: &[&str], path: &OsString, cache: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("PATH", path)
        .env("KUBECACHEDIR", cache)
        .env_remove("KUBECONFIG");
    cmd
}

/// A Gloo Mesh 0.10.6 management cluster (gloo-mesh/cluster.yaml) on Kubernetes 1.21, inside Gloo
/// Mesh 1.0's range, served as `builder` says (rollouts, their delay).
pub fn gloo_mesh_server(builder: Builder) -> FakeApiServer {
    let server = builder.server_version("v1.21.14-eks-ab12cd3").start();
    server
        .seed_path(Path::new(FIXTURES).join("gloo-mesh/cluster.yaml"))
        .expect("seed");
    server
}

/// A cluster on the fake API server's Kubernetes (1.29) with three nodes (cluster/nodes.yaml) and an
/// Istio 1.22 canary with ambient (cluster/istio-1-22-ambient.yaml).
pub fn istio_ambient_server() -> FakeApiServer {
    let server = FakeApiServer::start();
    server
        .seed_paths([
            fixture("cluster/nodes.yaml"),
            fixture("cluster/istio-1-22-ambient.yaml"),
        ])
        .expect("seed fixtures");
    server
}

/// Beside the stand-in tools in `tools`, what the Gloo Mesh 1.0.0 upgrade reads: the CRDs `helm show
/// crds` prints, and the version of the meshctl on PATH, the target's (as runbook step 1 asks).
pub fn gloo_mesh_tool_files(tools: &Path) {
    copy_fixture("gloo-mesh/crds-1.0.0.yaml", &tools.join("crds.yaml"));
    std::fs::write(tools.join("meshctl.version"), "1.0.0").expect("meshctl version");
}

/// A directory with the named stand-in tools (tests/fixtures/apply/bin) and the script they share to
/// pick their cluster as the real tools do (cluster.sh). Nothing there tells them which cluster: like
/// the real ones they go by their flags, else `KUBECONFIG`, else `$HOME/.kube/config`.
pub fn stand_in_tools(tools: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in tools.iter().copied().chain(["cluster.sh"]) {
        std::fs::copy(
            Path::new(FIXTURES).join("bin").join(file),
            dir.path().join(file),
        )
        .expect("copy tool");
    }
    dir
}

/// A kubeconfig with one context per `(name, server)`, each with its own cluster and user entry, and
/// `current` as the current context: what a user's ~/.kube/config with several clusters looks like.
pub fn kubeconfig_yaml(contexts: &[(&str, &str)], current: &str) -> String {
    let mut clusters = String::new();
    let mut users = String::new();
    let mut named = String::new();
    for (name, server) in contexts {
        clusters.push_str(&format!(
            "- name: {name}-cluster\n  cluster:\n    server: {server}\n"
        ));
        users.push_str(&format!(
            "- name: {name}-user\n  user:\n    token: fake-token-{name}\n"
        ));
        named.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}-cluster\n    user: {name}-user\n    namespace: default\n"
        ));
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{named}current-context: {current}\npreferences: {{}}\n"
    )
}

/// Writes [`kubeconfig_yaml`] for `(context, fake server)` pairs to `path`.
pub fn write_kubeconfig(path: &Path, contexts: &[(&str, &FakeApiServer)], current: &str) {
    let urls: Vec<(&str, String)> = contexts.iter().map(|(n, s)| (*n, s.url())).collect();
    let pairs: Vec<(&str, &str)> = urls.iter().map(|(n, u)| (*n, u.as_str())).collect();
    std::fs::write(path, kubeconfig_yaml(&pairs, current)).expect("write kubeconfig");
}

/// The flags apply adds to a stand-in tool's call to point it at `context` in `kubeconfig`, as
/// calls.log records them (each tool spells the context flag its own way).
pub fn cluster_flags(tool: &str, kubeconfig: &Path, context: &str) -> String {
    let context_flag = match tool {
        "helm" => "--kube-context",
        "meshctl" => "--kubecontext",
        _ => "--context",
    };
    format!(
        "--kubeconfig {} {context_flag} {context}",
        kubeconfig.display()
    )
}

/// Copies a fixture (a path under tests/fixtures/apply) to `to`, e.g. beside the stand-in tools.
pub fn copy_fixture(fixture: &str, to: &Path) {
    std::fs::copy(Path::new(FIXTURES).join(fixture), to).expect("copy fixture");
}

/// What `istioctl install --set revision=REVISION` (Istio `version`) creates, written beside the
/// stand-in tools in `tools` (`istio-REVISION.yaml`), from the 1.24.2 fixture (revision 1-24).
pub fn write_istio_install(tools: &Path, revision: &str, version: &str) {
    let install = std::fs::read_to_string(Path::new(FIXTURES).join("istio/istio-1-24.yaml"))
        .expect("fixture")
        .replace("1-24", revision)
        .replace("1.24.2", version);
    std::fs::write(tools.join(format!("istio-{revision}.yaml")), install).expect("write");
}

/// The versions a CustomResourceDefinition (as the API server returns it) stores objects in.
pub fn storage_versions(crd: &Value) -> Vec<&str> {
    crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == true)
        .filter_map(|v| v["name"].as_str())
        .collect()
}

/// The rule of each finding of a `check -o json` report, in the report's order.
pub fn finding_rules(report: &Value) -> Vec<&str> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect()
}

/// The calls the stand-in tools in `tools` recorded (calls.log), one line each.
pub fn tool_calls(tools: &Path) -> Vec<String> {
    std::fs::read_to_string(tools.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// The apply journal in `namespace`, if one was written.
pub fn read_journal(server: &FakeApiServer, namespace: &str) -> Option<Journal> {
    let cm = server.get("configmaps", namespace, "kubectl-meshup-journal")?;
    let text = cm["data"]["journal.json"].as_str()?;
    Some(serde_json::from_str(text).expect("journal.json parses"))
}

/// Gloo Mesh discovery's replicas, and the count apply recorded on it before scaling it down (the
/// `meshup.dev/replicas-before` annotation), as the cluster holds them.
pub fn discovery_replicas_and_recorded(server: &FakeApiServer) -> (Option<i64>, Option<String>) {
    let d = server
        .get("deployments", "gloo-mesh", "discovery")
        .expect("discovery exists");
    (
        d["spec"]["replicas"].as_i64(),
        d["metadata"]["annotations"]["meshup.dev/replicas-before"]
            .as_str()
            .map(str::to_string),
    )
}

/// Plays Gloo Mesh 1.0 discovery: `after` it is scaled up from 0, it writes what it discovers in its
/// own API (discovered.yaml: a v1 mesh, destination and workload where 0.10 had a traffic target;
/// the plan deleted 0.10's v1alpha2 resources in its step 3, and waits for 1.0's in its step 8).
pub fn play_gloo_discovery(server: &FakeApiServer, after: Duration) {
    server.on_change(move |change, cluster| {
        let replicas = |o: Option<&Value>| {
            o.and_then(|o| o.pointer("/spec/replicas"))
                .and_then(Value::as_i64)
        };
        let scaled_up = change.kind == "Deployment"
            && change.name == "discovery"
            && replicas(Some(&change.object)) >= Some(1)
            && replicas(change.old.as_ref()) == Some(0);
        if scaled_up {
            let cluster: FakeCluster = cluster.clone();
            std::thread::spawn(move || {
                std::thread::sleep(after);
                cluster
                    .seed_path(Path::new(FIXTURES).join("gloo-mesh/discovered.yaml"))
                    .expect("discovery writes its resources");
            });
        }
    });
}

/// The proxy version each Istio revision of the fixtures injects.
pub const PROXY_VERSIONS: [(&str, &str); 4] = [
    ("1-23", "1.23.4"),
    ("1-24", "1.24.2"),
    ("1-24-2", "1.24.2"),
    ("1-24-6", "1.24.6"),
];

/// A pod of a Bookinfo deployment, injected by the revision its namespace points at.
pub fn injected_pod(deployment: &str, app: &str, revision: &str, generation: u32) -> Value {
    let version = PROXY_VERSIONS
        .iter()
        .find(|(r, _)| *r == revision)
        .map(|(_, v)| *v)
        .unwrap_or("unknown");
    // The Deployment controller names the ReplicaSet DEPLOYMENT-HASH and labels its pods with the hash.
    let hash = format!("5d8f7c9b{generation}");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{deployment}-{hash}-x7k2p"),
            "namespace": "bookinfo",
            "labels": {"app": app, "version": "v1", "istio.io/rev": revision, "pod-template-hash": hash,
                       "service.istio.io/canonical-name": app, "security.istio.io/tlsMode": "istio"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": format!("{deployment}-{hash}"), "uid": "0", "controller": true}]
        },
        "spec": {
            "initContainers": [{"name": "istio-init", "image": format!("docker.io/istio/proxyv2:{version}")}],
            "containers": [
                {"name": app, "image": format!("docker.io/istio/examples-bookinfo-{app}-v1:1.20.2")},
                {"name": "istio-proxy", "image": format!("docker.io/istio/proxyv2:{version}"),
                 "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"]}
            ]
        },
        "status": {"phase": "Running"}
    })
}

/// Seeds the Bookinfo pods of istio/cluster.yaml's deployments (reviews-v1, productpage-v1), first
/// generation, as injected by `revision`.
pub fn seed_bookinfo_pods(server: &FakeApiServer, revision: &str) {
    for (deployment, app) in [("reviews-v1", "reviews"), ("productpage-v1", "productpage")] {
        server
            .seed(injected_pod(deployment, app, revision, 1))
            .expect("seed pod");
    }
}

/// Plays the ReplicaSet controller and the sidecar injector: `after` a Bookinfo deployment's
/// template changes (a restart), its pod is replaced by one injected by the revision its namespace
/// is labelled with.
pub fn play_injector(server: &FakeApiServer, after: Duration) {
    server.on_change(move |change, cluster| {
        if change.kind != "Deployment" || change.namespace.as_deref() != Some("bookinfo") {
            return;
        }
        if !change.spec_changed() || change.old.is_none() {
            return;
        }
        let name = change.name.clone();
        let cluster: FakeCluster = cluster.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            let revision = cluster
                .get("namespaces", "", "bookinfo")
                .and_then(|ns| {
                    ns["metadata"]["labels"]["istio.io/rev"]
                        .as_str()
                        .map(String::from)
                })
                .unwrap_or_default();
            let app = name.trim_end_matches("-v1").to_string();
            for pod in cluster.list("pods", "bookinfo") {
                if pod["metadata"]["labels"]["app"] == app.as_str() {
                    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
                    cluster.remove("pods", "bookinfo", &pod_name);
                }
            }
            cluster
                .seed(injected_pod(&name, &app, &revision, 2))
                .expect("new pod");
        });
    });
}

/// One sidecar pod of Deployment `name` in `namespace`, as injected by revision 1-22.
pub fn sidecar_pod(namespace: &str, name: &str, i: usize, proxy: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{name}-5f7c9d6b8-{i:05}"), "namespace": namespace,
            "labels": {"app": name, "pod-template-hash": "5f7c9d6b8", "security.istio.io/tlsMode": "istio"},
            "annotations": {"sidecar.istio.io/status": "{\"containers\":[\"istio-proxy\"],\"revision\":\"1-22\"}"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-5f7c9d6b8"),
                                 "uid": "00000000-0000-4000-8000-000000000000", "controller": true}]
        },
        "spec": {"containers": [
            {"name": name, "image": "registry.example.com/app:1.0.0"},
            {"name": "istio-proxy", "image": format!("docker.io/istio/proxyv2:{proxy}")}
        ]}
    })
}
