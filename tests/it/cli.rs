//! The whole CLI as a user runs it: exit codes, one-line errors, documents on stdout, colour manners,
//! and the plugin run through kubectl's plugin mechanism against the fake API server.

use std::path::{Path, PathBuf};

use fake_apiserver::FakeApiServer;
use predicates::prelude::*;

use crate::support::{fixture, istio_ambient_server, meshup};

const SEED_EXAMPLE: &str = "snapshots/gloo-mesh-istio-1-9-k8s-1-22.yaml";

/// stderr must be exactly one line, starting with `error:`.
fn one_line_error(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn help_shows_kubectl_usage_examples_and_exit_codes() {
    meshup()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Usage: kubectl meshup"))
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("130"));
    for sub in [
        "check",
        "snapshot",
        "plan",
        "apply",
        "version",
        "completion",
    ] {
        meshup()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("kubectl meshup {sub}")))
            .stdout(predicate::str::contains("Examples:"));
    }
}

#[test]
fn usage_errors_exit_2() {
    meshup().assert().code(2);
    meshup().args(["check", "--no-such-flag"]).assert().code(2);
    meshup()
        .args(["check", "--date", "tomorrow"])
        .assert()
        .code(2);
    meshup()
        .args(["check", "-o", "markdown", "--snapshot"])
        .arg(fixture(SEED_EXAMPLE))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("table|json|yaml"));
}

#[test]
fn version_as_json_names_the_compat_data() {
    let out = meshup().args(["version", "-o", "json"]).assert().success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(
        doc["compatData"]["date"]
            .as_str()
            .is_some_and(|d| d.len() == 10)
    );
    assert!(
        doc["compatData"]["sources"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
}

#[test]
fn completion_scripts_generate() {
    meshup()
        .args(["completion", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kubectl-meshup"));
}

#[test]
fn check_of_a_saved_snapshot_writes_a_check_report() {
    let out = meshup()
        .args(["check", "-o", "json", "--date", "2025-06-30", "--snapshot"])
        .arg(fixture(SEED_EXAMPLE))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(doc["apiVersion"], "meshup.dev/v1alpha1");
    assert_eq!(doc["kind"], "CheckReport");
    assert_eq!(doc["evaluatedAt"], "2025-06-30");
    assert!(doc["findings"].is_array());
    for key in ["pass", "info", "warn", "fail"] {
        assert!(doc["summary"][key].is_u64(), "summary.{key}");
    }
    // Exit 3 exactly when the report has failures.
    let fails = doc["summary"]["fail"].as_u64().unwrap();
    assert_eq!(out.status.code(), Some(if fails > 0 { 3 } else { 0 }));
}

#[test]
fn the_seed_example_fails_with_exit_3_naming_both_versions() {
    meshup()
        .args(["check", "--no-color", "--snapshot"])
        .arg(fixture(SEED_EXAMPLE))
        .assert()
        .code(3)
        .stdout(predicate::str::contains("1.9"))
        .stdout(predicate::str::contains("1.22"));
}

#[test]
fn a_snapshot_that_is_not_one_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-snapshot.yaml");
    std::fs::write(&path, "apiVersion: v1\nkind: ConfigMap\nclusters: []\n").unwrap();
    let out = meshup()
        .args(["check", "--snapshot"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line_error(&out).contains("not a ClusterSnapshot"));
}

#[test]
fn unknown_context_lists_the_available_ones() {
    let server = FakeApiServer::start();
    let out = meshup()
        .args(["check", "--context", "prod", "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("\"prod\"") && err.contains("fake-apiserver"),
        "{err}"
    );
}

#[test]
fn malformed_kubeconfig_is_one_line_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, "apiVersion: v1\nclusters: [ {name: a\n").unwrap();
    let out = meshup()
        .args(["check", "--kubeconfig"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("malformed") && err.contains("config"), "{err}");
}

#[test]
fn unreachable_server_is_one_line_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster: {server: 'http://127.0.0.1:1'}\ncontexts:\n- name: gone\n  context: {cluster: gone, user: u}\nusers:\n- name: u\n  user: {token: s3cr3t-t0ken-value}\n",
    )
    .unwrap();
    let out = meshup()
        .args(["check", "-vvv", "--request-timeout", "5s", "--kubeconfig"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("s3cr3t"), "a credential leaked: {stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cannot reach the API server of context \"gone\""),
        "{stderr}"
    );
}

#[test]
fn tables_on_a_pipe_or_with_no_color_carry_no_escape_codes() {
    let server = istio_ambient_server();
    for env in [None, Some(("NO_COLOR", "1"))] {
        let mut cmd = meshup();
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd
            .args(["check", "--kubeconfig"])
            .arg(server.kubeconfig_path())
            .output()
            .unwrap();
        assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
        assert!(!out.stdout.is_empty());
        assert!(!out.stdout.contains(&0x1b), "escape codes on a pipe");
    }
}

#[test]
fn snapshot_of_the_fake_cluster_reads_back_into_check() {
    let server = istio_ambient_server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.json");
    meshup()
        .args(["snapshot", "-o", "json", "--out"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["kind"], "ClusterSnapshot");
    assert_eq!(
        doc["clusters"][0]["istio"]["controlPlanes"][0]["revision"],
        "1-22"
    );
    let out = meshup()
        .args(["check", "-o", "yaml", "--snapshot"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 3)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: CheckReport"));
}

#[test]
fn runs_as_a_kubectl_plugin_against_the_fake_server() {
    let server = istio_ambient_server();
    let bin = assert_cmd::cargo::cargo_bin("kubectl-meshup");
    let bin_dir = bin.parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    let out = std::process::Command::new(kubectl)
        .args(["meshup", "check", "-o", "json", "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .env("PATH", path)
        .env("KUBECACHEDIR", cache.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(doc["kind"], "CheckReport");
    assert_eq!(doc["clusters"][0], "fake-apiserver");
}

// ---------------------------------------------------------------------------------------------
// plan

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn the_quick_start_plans_offline_from_the_example_snapshot() {
    let out = meshup()
        .args(["plan", "--to", "istio=1.24", "--snapshot"])
        .arg(example("istio-1.20-eks.yaml"))
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The CURRENT -> TARGET table with the path through 1.22, and the command to apply it.
    assert!(stdout.contains("Upgrade plan: istio 1.24"), "{stdout}");
    let path_line = stdout
        .lines()
        .find(|l| l.starts_with("istio ") && l.contains("prod-eks"))
        .unwrap_or_else(|| panic!("no component line: {stdout}"));
    assert!(
        path_line.contains("1.20.3-distroless -> 1.22.") && path_line.contains("-> 1.24."),
        "{path_line}"
    );
    assert!(stdout.contains("kubectl meshup apply"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "escape codes on a pipe");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_plan_written_with_out_shows_the_table_and_reads_back_with_plan_show() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.yaml");
    let out = meshup()
        .args(["plan", "--to", "istio=1.24", "-o", "yaml", "--out"])
        .arg(&file)
        .arg("--snapshot")
        .arg(example("istio-1.20-eks.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // As `terraform plan -out`: the human plan on stdout, the file for apply, where it went on stderr.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("Upgrade plan: istio 1.24"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("kubectl meshup apply {}", file.display())),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("kind: UpgradePlan"), "{text}");
    assert!(
        text.contains("createdAt: "),
        "created_at is stamped: {text}"
    );
    assert!(text.contains("integrity: sha256:"), "{text}");

    let shown = meshup().args(["plan", "show"]).arg(&file).output().unwrap();
    assert_eq!(shown.status.code(), Some(0), "{shown:?}");
    assert_eq!(String::from_utf8_lossy(&shown.stdout), stdout);
    let as_yaml = meshup()
        .args(["plan", "show", "-o", "yaml"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&as_yaml.stdout), text);
    let as_markdown = meshup()
        .args(["plan", "show", "-o", "markdown"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&as_markdown.stdout).contains("```sh"));

    // A .json name (or -o json) writes JSON.
    let json_file = dir.path().join("plan.json");
    meshup()
        .args(["plan", "--to", "istio=1.24", "--out"])
        .arg(&json_file)
        .arg("--snapshot")
        .arg(example("istio-1.20-eks.yaml"))
        .assert()
        .success();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).expect("json plan");
    assert_eq!(doc["kind"], "UpgradePlan");
}

#[test]
fn a_tampered_or_truncated_plan_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.yaml");
    meshup()
        .args(["plan", "--to", "istio=1.24", "--out"])
        .arg(&file)
        .arg("--snapshot")
        .arg(example("istio-1.20-eks.yaml"))
        .assert()
        .success();
    let text = std::fs::read_to_string(&file).unwrap();

    let tampered = dir.path().join("tampered.yaml");
    let edited = text.replacen("revision: 1-20-3", "revision: 1-19-0", 1);
    assert!(edited != text, "the edit changed the plan");
    std::fs::write(&tampered, edited).unwrap();
    let truncated = dir.path().join("truncated.yaml");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();

    for (path, cause) in [(&tampered, "changed after"), (&truncated, "truncated")] {
        for args in [&["plan", "show"][..], &["apply", "--dry-run"]] {
            let out = meshup().args(args).arg(path).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{args:?} {path:?}");
            let err = one_line_error(&out);
            assert!(err.contains(cause), "{err}");
            assert!(err.contains("kubectl meshup plan"), "names the fix: {err}");
            assert!(out.stdout.is_empty());
        }
    }
}

#[test]
fn a_bad_target_is_a_usage_error_naming_the_accepted_form() {
    for (to, says) in [
        ("istio", "MESH=VERSION"),
        ("istio=latest", "MESH=VERSION"),
        ("linkerd=2.14", "istio, gloo-mesh, kmesh"),
    ] {
        let out = meshup()
            .args(["plan", "--to", to, "--snapshot"])
            .arg(example("istio-1.20-eks.yaml"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{to}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{to}: {stderr}");
    }
    // A target for a mesh the cluster does not run is no path (nothing to upgrade), not a usage error.
    let out = meshup()
        .args(["plan", "--to", "kmesh=1.1", "--snapshot"])
        .arg(example("istio-1.20-eks.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(one_line_error(&out).contains("kmesh is not installed"));
    assert!(one_line_error(&out).contains("nothing to upgrade"));
    // No --to at all.
    let out = meshup()
        .args(["plan", "--snapshot"])
        .arg(example("istio-1.20-eks.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(one_line_error(&out).contains("--to"));
}

#[test]
fn no_allowed_path_exits_3_with_the_reason() {
    for (snapshot, says) in [
        ("plan/mspider-mixed.yaml", "mixed"),
        (
            "plan/istio-1.20-k8s-1.27.yaml",
            "--include-kubernetes-upgrade",
        ),
    ] {
        let out = meshup()
            .args(["plan", "--to", "istio=1.24", "--snapshot"])
            .arg(fixture(snapshot))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{snapshot}");
        assert!(one_line_error(&out).contains(says), "{snapshot}");
        assert!(out.stdout.is_empty());
    }
    // The flag the message names makes the plan.
    meshup()
        .args([
            "plan",
            "--to",
            "istio=1.24",
            "--include-kubernetes-upgrade",
            "--snapshot",
        ])
        .arg(fixture("plan/istio-1.20-k8s-1.27.yaml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("Kubernetes"));
}

#[test]
fn a_target_may_name_its_flavor_and_a_cross_flavor_target_exits_3() {
    // The upstream 1.20.3-distroless cluster: `-distroless` keeps its builds (exit 0, tags end in
    // -distroless); `-mspider` would mix DaoCloud's builds with upstream ones (exit 3, DaoCloud's rule).
    let out = meshup()
        .args([
            "plan",
            "--to",
            "istio=1.22-distroless",
            "-o",
            "yaml",
            "--snapshot",
        ])
        .arg(example("istio-1.20-eks.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(yaml.contains("flavor: distroless"), "{yaml}");
    assert!(yaml.contains("-distroless"), "{yaml}");
    let out = meshup()
        .args(["plan", "--to", "istio=1.22.8-mspider", "--snapshot"])
        .arg(example("istio-1.20-eks.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        one_line_error(&out).contains("does not support mixing -mspider and other builds"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty());
    // A flavor on a mesh that has none is a bad command line.
    let out = meshup()
        .args(["plan", "--to", "kmesh=1.1-mspider", "--snapshot"])
        .arg(example("istio-1.20-eks.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only Istio builds come in flavors"));
}

// ---------------------------------------------------------------------------------------------
// kubectl's plugin completion

#[test]
fn complete_prints_candidates_and_a_directive() {
    let server = FakeApiServer::start();
    let out = meshup()
        .args(["__complete", "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .args(["apply", "--context", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fake-apiserver\n:4\n");

    let out = meshup().args(["__complete", ""]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("plan\tPlan an ordered upgrade"), "{stdout}");
    assert!(!stdout.contains("__complete"), "{stdout}");
    assert!(stdout.ends_with("\n:4\n"), "{stdout}");

    let out = meshup().args(["__complete", "apply", ""]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), ":0\n");
}

// ---------------------------------------------------------------------------------------------
// replica state, and unread facts under --fail-on-unread

/// `check -o json` against the server: exit code, the report, stderr.
fn check_json(server: &FakeApiServer, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = meshup()
        .args(["check", "-o", "json", "--date", "2026-01-10"])
        .args(extra)
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).expect("a CheckReport on stdout");
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn findings_of<'a>(report: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

#[test]
fn istiod_with_no_ready_replica_blocks_check_with_exit_3_naming_the_fix() {
    let server = istio_ambient_server();
    let (code, report, _) = check_json(&server, &[]);
    assert_eq!(code, Some(0), "the seeded cluster passes: {report:#}");
    server
        .modify("deployments", "istio-system", "istiod-1-22", |d| {
            d["status"]["readyReplicas"] = serde_json::json!(0);
            d["status"]["availableReplicas"] = serde_json::json!(0);
        })
        .expect("istiod is seeded");
    server.clear_requests();

    let (code, report, stderr) = check_json(&server, &[]);
    assert_eq!(code, Some(3), "{stderr}");
    let failing: Vec<_> = findings_of(&report, "istio.replicas-ready")
        .into_iter()
        .filter(|f| f["subject"] == "istiod revision 1-22")
        .collect();
    assert_eq!(failing.len(), 1, "{report:#}");
    assert_eq!(failing[0]["severity"], "fail");
    assert_eq!(
        failing[0]["message"],
        "Deployment istio-system/istiod-1-22 (the Istio control plane of revision 1-22) has 0 of 2 replicas \
         ready, so it is down; look at its pods: kubectl -n istio-system describe deployment istiod-1-22"
    );
    eprintln!("{}", failing[0]["message"]);
    // check only reads: the Deployment is as it was.
    assert!(server.mutating_requests().is_empty());
    let istiod = server
        .get("deployments", "istio-system", "istiod-1-22")
        .expect("istiod still there");
    assert_eq!(istiod["spec"]["replicas"], 2);
    assert_eq!(istiod["status"]["readyReplicas"], 0);

    // Scaled to zero: the same rule fails, with the scale command.
    server
        .modify("deployments", "istio-system", "istiod-1-22", |d| {
            d["spec"]["replicas"] = serde_json::json!(0);
        })
        .expect("istiod is seeded");
    let (code, report, _) = check_json(&server, &[]);
    assert_eq!(code, Some(3));
    let failing = findings_of(&report, "istio.replicas-ready");
    assert_eq!(
        failing[0]["subject"], "istiod revision 1-22",
        "fails sort first"
    );
    assert_eq!(
        failing[0]["message"],
        "Deployment istio-system/istiod-1-22 (the Istio control plane of revision 1-22) is scaled to 0 \
         replicas, so it is down; scale it back to the replicas it usually runs (at least 1): kubectl -n \
         istio-system scale deployment istiod-1-22 --replicas=1"
    );
    let table = meshup()
        .args(["check", "--date", "2026-01-10", "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .output()
        .unwrap();
    assert_eq!(table.status.code(), Some(3));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("FAIL  istiod revision 1-22: Deployment"),
        "{text}"
    );
    eprintln!("{text}");
}

#[test]
fn fail_on_unread_makes_a_forbidden_list_exit_3_and_without_it_the_exit_is_unchanged() {
    let server = istio_ambient_server();
    server.deny("list", "", "pods");

    let (code, report, stderr) = check_json(&server, &[]);
    assert_eq!(
        code,
        Some(0),
        "a 403 on one list alone does not block: {stderr}"
    );
    let unread = findings_of(&report, "snapshot.unread");
    assert_eq!(unread.len(), 1, "{report:#}");
    assert_eq!(unread[0]["severity"], "warn");
    assert!(!stderr.contains("--fail-on-unread"), "{stderr}");

    let (code, report_strict, stderr) = check_json(&server, &["--fail-on-unread"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        report_strict["findings"], report["findings"],
        "the flag changes the exit code, not the report"
    );
    assert_eq!(
        stderr.trim_end(),
        "--fail-on-unread: 1 fact could not be read (pods in all namespaces in context fake-apiserver); \
         exit 3 — grant read access and check again"
    );
    assert!(server.mutating_requests().is_empty());

    // Nothing unread: the flag changes nothing.
    server.clear_denials();
    let (code, report, stderr) = check_json(&server, &["--fail-on-unread"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(findings_of(&report, "snapshot.unread").is_empty());
}

#[test]
fn check_help_documents_fail_on_unread_and_its_exit_code() {
    meshup()
        .args(["check", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--fail-on-unread"))
        .stdout(predicate::str::contains(
            "(with --fail-on-unread, also when a fact could not be read)",
        ));
}

#[test]
fn a_plain_http_chart_mirror_is_a_usage_error_unless_on_loopback() {
    let out = meshup()
        .args([
            "apply",
            "plan.yaml",
            "--allow-chart-repo",
            "http://charts.example.internal",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().next().is_some_and(|l| l.ends_with(
            "`http://charts.example.internal` is plain http on charts.example.internal, where anyone on the path could swap the charts: serve the mirror over https (plain http is allowed only on a loopback address)"
        )),
        "{stderr}"
    );
    // On a loopback address the flag is accepted: apply goes on to read the (missing) plan file.
    let missing = tempfile::tempdir().expect("dir");
    let plan = missing.path().join("plan.yaml");
    let out = meshup()
        .arg("apply")
        .arg(&plan)
        .args(["--allow-chart-repo", "http://127.0.0.1:8879"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("--allow-chart-repo"),
        "{out:?}"
    );
}
