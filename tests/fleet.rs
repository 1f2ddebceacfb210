//! Past one workstation (issue 15), against the fake API server: the report ConfigMap written with
//! optimistic concurrency (`check --publish-configmap`).
//!
//! Each case prints what the user saw (run with `--nocapture`); docs/what-happens-when.md quotes it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use fake_apiserver::{FakeApiServer, Fault};
use serde_json::{Value, json};

mod support;

const DATE: &str = "2025-06-01";
const CONFIGMAP: &str = "kubectl-meshup-report";
const CM_PATH: &str = "/api/v1/namespaces/default/configmaps/kubectl-meshup-report";

fn meshup() -> Command {
    let mut cmd = Command::cargo_bin("kubectl-meshup").expect("binary built");
    cmd.env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .timeout(Duration::from_secs(60));
    cmd
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run kubectl-meshup");
    eprintln!(
        "exit {:?}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn istio_cluster() -> FakeApiServer {
    let server = FakeApiServer::start();
    server
        .seed_paths([
            fixture("cluster/nodes.yaml"),
            fixture("cluster/istio-1-22-ambient.yaml"),
        ])
        .expect("seed fixtures");
    server
}

fn publish(server: &FakeApiServer) -> Output {
    run(meshup()
        .args(["check", "--publish-configmap", "-o", "json", "--date", DATE])
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path()))
}

fn requests_to(server: &FakeApiServer, method: &str, path: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

/// The published ConfigMap's report is the report check printed.
fn assert_published(server: &FakeApiServer, out: &Output) -> Value {
    let printed: Value = serde_json::from_slice(&out.stdout).expect("report on stdout");
    let cm = server
        .get("configmaps", "default", CONFIGMAP)
        .expect("ConfigMap written");
    let stored: Value =
        serde_json::from_str(cm["data"]["report.json"].as_str().expect("report.json"))
            .expect("report parses");
    assert_eq!(stored, printed, "the ConfigMap holds the printed report");
    let fails = printed["summary"]["fail"].as_u64().expect("fail count");
    assert_eq!(
        cm["metadata"]["labels"]["meshup.dev/fail"],
        fails.to_string()
    );
    assert_eq!(
        cm["metadata"]["annotations"]["meshup.dev/evaluated-at"],
        DATE
    );
    cm
}

#[test]
fn a_conflicting_replace_is_retried_after_reading_again() {
    let server = istio_cluster();
    server
        .seed(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": "default", "labels": {"team": "mesh"}},
            "data": {"report.json": "{}"}
        }))
        .expect("seed an older report");
    let fault = server.inject(Fault::status(409).on(CM_PATH).method("PUT").times(2));
    let out = publish(&server);
    assert_eq!(out.status.code(), Some(0), "published; no failures then");
    assert_eq!(server.fault_hits(fault), 2);
    assert_eq!(
        requests_to(&server, "PUT", CM_PATH),
        3,
        "two conflicts, then written"
    );
    assert_eq!(
        requests_to(&server, "GET", CM_PATH),
        3,
        "read again after each"
    );
    let cm = assert_published(&server, &out);
    assert_eq!(
        cm["metadata"]["labels"]["team"], "mesh",
        "others' labels stay"
    );
}

#[test]
fn a_create_that_loses_the_race_is_retried_and_endless_conflicts_fail_in_one_line() {
    let server = istio_cluster();
    let fault = server.inject(
        Fault::status(409)
            .on("/api/v1/namespaces/default/configmaps")
            .method("POST")
            .times(1),
    );
    let out = publish(&server);
    assert_eq!(out.status.code(), Some(0), "published; no failures then");
    assert_eq!(server.fault_hits(fault), 1);
    assert_published(&server, &out);

    let before = server
        .get("configmaps", "default", CONFIGMAP)
        .expect("written")["metadata"]["resourceVersion"]
        .clone();
    let fault = server.inject(Fault::status(409).on(CM_PATH).method("PUT"));
    let out = publish(&server);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.fault_hits(fault), 5, "five attempts, no more");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: cannot publish the report: ConfigMap default/kubectl-meshup-report in context \"fake-apiserver\" changed under every one of 5 writes; another writer keeps updating it: run again"
    );
    let after = server
        .get("configmaps", "default", CONFIGMAP)
        .expect("still there")["metadata"]["resourceVersion"]
        .clone();
    assert_eq!(before, after, "nothing written");
}
