//! Past one workstation (issue 15), against the fake API server: the report ConfigMap written with
//! optimistic concurrency (`check --publish-configmap`); the metrics pushed to a real Prometheus
//! Pushgateway (Debian's `prometheus-pushgateway`, started here on loopback) and printed with
//! `-o openmetrics`.
//!
//! Each case prints what the user saw (run with `--nocapture`); docs/what-happens-when.md quotes it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_apiserver::{FakeApiServer, Fault};
use serde_json::{Value, json};

use crate::support::{self, fixture, istio_ambient_server, meshup, run};

const DATE: &str = "2025-06-01";
const CONFIGMAP: &str = "kubectl-meshup-report";
const CM_PATH: &str = "/api/v1/namespaces/default/configmaps/kubectl-meshup-report";

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
    let server = istio_ambient_server();
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
    let server = istio_ambient_server();
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

/// A Pushgateway on a free loopback port, stopped when dropped. `None` (the test is skipped, and says
/// so) when the binary is missing outside CI; under CI=true a missing binary fails the test.
struct Pushgateway {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

const PUSHGATEWAY: &str = "prometheus-pushgateway";

impl Pushgateway {
    fn start() -> Option<Pushgateway> {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(PUSHGATEWAY))
                .find(|p| p.is_file())
        });
        let Some(binary) = found else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{PUSHGATEWAY} is not on PATH; .ci/run installs it (apt-get install -y prometheus-pushgateway)"
            );
            eprintln!(
                "SKIPPED: {PUSHGATEWAY} is not on PATH; install it with `apt-get install -y prometheus-pushgateway` to run this test"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let child = std::process::Command::new(binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--persistence.file={}",
                dir.path().join("metrics.store").display()
            ))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Pushgateway");
        let pgw = Pushgateway {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while pgw.get("/-/ready").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "the Pushgateway did not get ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(pgw)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP/1.0 GET: status and body (0 when nothing listens yet).
    fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample line of Prometheus text: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let mut map = BTreeMap::new();
            // Label values here hold no `,` or `"`: split on `",`.
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                map.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
            (name.to_string(), map, value.parse().expect("a number"))
        })
        .collect()
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The findings of a report as `(severity, rule) -> count`.
fn finding_counts(report: &Value) -> BTreeMap<(String, String), f64> {
    let mut counts = BTreeMap::new();
    for f in report["findings"].as_array().expect("findings") {
        *counts
            .entry((
                f["severity"].as_str().expect("severity").to_string(),
                f["rule"].as_str().expect("rule").to_string(),
            ))
            .or_insert(0.0) += 1.0;
    }
    counts
}

fn metric_counts(samples: &[Sample]) -> BTreeMap<(String, String), f64> {
    find(samples, "meshup_findings", &[("cluster", "fake-apiserver")])
        .into_iter()
        .map(|(_, l, v)| ((l["severity"].clone(), l["rule"].clone()), *v))
        .collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[test]
fn a_real_pushgateway_receives_the_checks_metrics() {
    let Some(pgw) = Pushgateway::start() else {
        return;
    };
    let server = istio_ambient_server();
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    let reference = run(meshup()
        .args(["check", "-o", "json", "--date", DATE, "--kubeconfig"])
        .arg(&kubeconfig));
    let report: Value = serde_json::from_slice(&reference.stdout).expect("report");
    let want = finding_counts(&report);
    assert!(!want.is_empty());

    let before = now().floor();
    let out = run(meshup()
        .args(["check", "--date", DATE, "--push-metrics", &pgw.url()])
        .arg("--kubeconfig")
        .arg(&kubeconfig));
    let after = now().ceil();
    assert_eq!(
        out.status.code(),
        reference.status.code(),
        "the check's own verdict"
    );

    let (status, text) = pgw.get("/metrics");
    assert_eq!(status, 200);
    let got = samples(&text);
    let pushed: Vec<Sample> = got
        .iter()
        .filter(|(_, l, _)| l.get("job").map(String::as_str) == Some("kubectl-meshup"))
        .cloned()
        .collect();
    assert_eq!(
        metric_counts(&pushed),
        want,
        "one gauge per severity and rule:\n{text}"
    );
    let fails = want
        .iter()
        .filter(|((s, _), _)| s == "fail")
        .map(|(_, n)| n)
        .sum::<f64>();
    let per_severity = find(
        &pushed,
        "meshup_check_findings",
        &[("cluster", "fake-apiserver"), ("severity", "fail")],
    );
    assert_eq!(per_severity.len(), 1, "{text}");
    assert_eq!(per_severity[0].2, fails);
    let istio = find(
        &pushed,
        "meshup_mesh_version_info",
        &[("cluster", "fake-apiserver"), ("mesh", "istio")],
    );
    assert!(!istio.is_empty(), "{text}");
    assert!(
        istio
            .iter()
            .all(|(_, l, v)| l["version"].starts_with("1.2") && *v == 1.0),
        "{istio:?}"
    );
    let last = find(&pushed, "meshup_last_success_timestamp_seconds", &[]);
    assert_eq!(last.len(), 1, "{text}");
    assert!(
        (before..=after).contains(&last[0].2),
        "{} not in {before}..={after}",
        last[0].2
    );
    assert_eq!(
        find(&got, "push_time_seconds", &[("job", "kubectl-meshup")]).len(),
        1,
        "the Pushgateway took the push: {text}"
    );

    // The same series on stdout for a textfile collector.
    let out = run(meshup()
        .args(["check", "-o", "openmetrics", "--date", DATE, "--kubeconfig"])
        .arg(&kubeconfig));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(printed.ends_with("# EOF\n"), "{printed}");
    assert_eq!(metric_counts(&samples(&printed)), want);

    // A grouping key in the URL: a group of its own beside the first.
    let out = run(meshup()
        .args(["check", "--date", DATE, "--push-metrics"])
        .arg(format!("{}/metrics/job/meshup/cluster/eu-1", pgw.url()))
        .arg("--kubeconfig")
        .arg(&kubeconfig));
    assert_eq!(out.status.code(), reference.status.code());
    let (_, text) = pgw.get("/metrics");
    let grouped = find(
        &samples(&text),
        "meshup_last_success_timestamp_seconds",
        &[("job", "meshup"), ("cluster", "eu-1")],
    )
    .len();
    assert_eq!(grouped, 1, "{text}");
}

#[test]
fn a_pushgateway_that_is_not_there_is_one_line_and_exit_1() {
    let server = istio_ambient_server();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = run(meshup()
        .args(["check", "--date", DATE, "--push-metrics"])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot push metrics to the Pushgateway at http://127.0.0.1:{port}: "
        )) && stderr
            .trim_end()
            .ends_with("; check --push-metrics and that the Pushgateway is reachable"),
        "{stderr}"
    );
    assert!(
        server.mutating_requests().is_empty(),
        "nothing written to the cluster"
    );
}

/// The fleet: 20 contexts, each its own fake API server (or none), in every state the view must show.
struct Fleet {
    servers: Vec<Option<FakeApiServer>>,
    names: Vec<String>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

const FLEET_SIZE: usize = 20;
/// Published fresh: 0..=11 (11 has an older Kubernetes the target needs more than); 3 is stale.
const PUBLISHED: std::ops::Range<usize> = 0..12;
const STALE: usize = 3;
const OLD_KUBERNETES: usize = 11;
/// Nothing published: 12..=16 (15 and 16 have no mesh).
const NO_MESH: [usize; 2] = [15, 16];
const UNREACHABLE: usize = 17;
const FORBIDDEN: usize = 18;
const UNPUBLISHED_ISTIO: usize = 19;
const NS: &str = "meshup-system";

fn name(i: usize) -> String {
    format!("c{i:02}")
}

fn fleet() -> Fleet {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut servers = Vec::new();
    for i in 0..FLEET_SIZE {
        if i == UNREACHABLE {
            servers.push(None);
            continue;
        }
        let server = if i == OLD_KUBERNETES {
            FakeApiServer::builder().server_version("v1.26.3").start()
        } else {
            FakeApiServer::start()
        };
        server
            .seed_path(fixture("cluster/nodes.yaml"))
            .expect("nodes");
        server
            .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
            .expect("namespace");
        if !NO_MESH.contains(&i) {
            server
                .seed_path(fixture("cluster/istio-1-22-ambient.yaml"))
                .expect("istio");
        }
        servers.push(Some(server));
    }
    // A port nothing listens on: the unreachable cluster.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let names: Vec<String> = (0..FLEET_SIZE).map(name).collect();
    let urls: Vec<String> = servers
        .iter()
        .map(|s| match s {
            Some(s) => s.url(),
            None => format!("http://{closed}"),
        })
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .zip(&urls)
        .map(|(n, u)| (n.as_str(), u.as_str()))
        .collect();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, support::kubeconfig_yaml(&pairs, "c00")).expect("kubeconfig");
    let fleet = Fleet {
        servers,
        names,
        kubeconfig,
        _dir: dir,
    };
    // What the CronJob of every cluster would have done: publish into meshup-system.
    let published: Vec<String> = PUBLISHED.map(name).collect();
    let out = run(meshup()
        .args([
            "check",
            "--publish-configmap",
            "-n",
            NS,
            "--date",
            DATE,
            "--context",
        ])
        .arg(published.join(","))
        .arg("--kubeconfig")
        .arg(&fleet.kubeconfig));
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "published");
    for i in PUBLISHED {
        assert!(
            fleet.server(i).get("configmaps", NS, CONFIGMAP).is_some(),
            "{} published",
            name(i)
        );
    }
    // One cluster's CronJob stopped three days ago.
    fleet
        .server(STALE)
        .modify("configmaps", NS, CONFIGMAP, |cm| {
            cm["metadata"]["annotations"]["meshup.dev/checked-at"] = json!("2020-01-01T05:17:00Z");
        })
        .expect("make it stale");
    // One where this user may not read ConfigMaps there.
    fleet.server(FORBIDDEN).deny("get", "", "configmaps");
    fleet
}

impl Fleet {
    fn server(&self, i: usize) -> &FakeApiServer {
        self.servers[i].as_ref().expect("a server")
    }

    fn requests(&self) -> Vec<usize> {
        self.servers
            .iter()
            .map(|s| s.as_ref().map(|s| s.requests().len()).unwrap_or(0))
            .collect()
    }

    fn clear_requests(&self) {
        for s in self.servers.iter().flatten() {
            s.clear_requests();
        }
    }
}

#[test]
fn the_fleet_view_has_a_row_per_cluster_in_each_state() {
    let fleet = fleet();
    fleet.clear_requests();
    let out = run(meshup()
        .args([
            "fleet",
            "--all-contexts",
            "--to",
            "istio=1.24",
            "--date",
            DATE,
        ])
        .args(["--cluster-timeout", "20s", "-o", "json"])
        .arg("--kubeconfig")
        .arg(&fleet.kubeconfig));
    let report: Value = serde_json::from_slice(&out.stdout).expect("FleetReport JSON");
    assert_eq!(report["kind"], "FleetReport");
    assert_eq!(report["targets"], json!(["istio=1.24"]));
    let rows = report["clusters"].as_array().expect("clusters");
    let contexts: Vec<&str> = rows.iter().filter_map(|r| r["context"].as_str()).collect();
    assert_eq!(contexts, fleet.names, "one row per context, in order");
    let row = |i: usize| &rows[i];

    for i in PUBLISHED.filter(|i| *i != STALE) {
        let r = row(i);
        assert_eq!(r["status"], "ok", "{r:#}");
        assert_eq!(r["source"], "published", "{r:#}");
        assert!(r["reportAgeSeconds"].as_u64().expect("age") < 600, "{r:#}");
        assert_eq!(r["meshes"][0]["mesh"], "istio", "{r:#}");
    }
    let published = |i: usize| -> Value {
        let cm = fleet
            .server(i)
            .get("configmaps", NS, CONFIGMAP)
            .expect("cm");
        serde_json::from_str(cm["data"]["report.json"].as_str().expect("report")).expect("parses")
    };
    assert_eq!(row(0)["fail"], published(0)["summary"]["fail"]);
    assert_eq!(row(0)["warn"], published(0)["summary"]["warn"]);
    assert_eq!(row(0)["kubernetes"], "v1.29.6-eks-db838b0");
    assert_eq!(row(0)["targets"][0]["verdict"], "ok", "{:#}", row(0));
    assert_eq!(row(0)["blocks"], false);

    let old = row(OLD_KUBERNETES);
    assert_eq!(old["kubernetes"], "v1.26.3");
    assert_eq!(old["targets"][0]["verdict"], "blocked", "{old:#}");
    assert!(
        old["targets"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("1.26")),
        "{old:#}"
    );
    assert_eq!(old["blocks"], true);

    let stale = row(STALE);
    assert_eq!(stale["status"], "ok");
    assert_eq!(stale["source"], "live", "{stale:#}");
    assert!(
        stale["liveBecause"]
            .as_str()
            .is_some_and(|r| r.starts_with("the published report is ")
                && r.ends_with(" old (--max-report-age 1d12h)")),
        "{stale:#}"
    );

    for i in [12, 13, 14, UNPUBLISHED_ISTIO] {
        let r = row(i);
        assert_eq!(r["source"], "live", "{r:#}");
        assert_eq!(
            r["liveBecause"],
            "no report published (ConfigMap meshup-system/kubectl-meshup-report not found)"
        );
        assert_eq!(r["meshes"][0]["version"], "1.22.3", "{r:#}");
    }
    for i in NO_MESH {
        let r = row(i);
        assert_eq!(r["status"], "ok");
        assert_eq!(r["meshes"], json!([]), "{r:#}");
        assert_eq!(r["targets"][0]["verdict"], "not-installed", "{r:#}");
        assert_eq!(r["blocks"], false);
    }

    let down = row(UNREACHABLE);
    assert_eq!(down["status"], "unreachable", "{down:#}");
    assert!(
        down["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot reach the API server of context \"c17\"")),
        "{down:#}"
    );
    let denied = row(FORBIDDEN);
    assert_eq!(denied["status"], "forbidden", "{denied:#}");
    assert!(
        denied["reason"].as_str().is_some_and(|r| r.starts_with(
            "reading ConfigMap meshup-system/kubectl-meshup-report in context \"c18\" is forbidden (403)"
        )),
        "{denied:#}"
    );
    assert_eq!(out.status.code(), Some(3), "c11 blocks istio=1.24");

    // Published clusters cost one GET; nothing was written anywhere.
    let requests = fleet.requests();
    for i in PUBLISHED.filter(|i| *i != STALE) {
        assert_eq!(requests[i], 1, "{}: one GET", name(i));
    }
    assert!(requests[UNPUBLISHED_ISTIO] > 1, "a live check reads more");
    for s in fleet.servers.iter().flatten() {
        assert!(s.mutating_requests().is_empty());
    }

    // The table: a row each, the reasons below.
    let out = run(meshup()
        .args([
            "fleet",
            "--all-contexts",
            "--to",
            "istio=1.24",
            "--date",
            DATE,
        ])
        .arg("--kubeconfig")
        .arg(&fleet.kubeconfig));
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert_eq!(out.status.code(), Some(3));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("CONTEXT"), "{table}");
    for (i, n) in fleet.names.iter().enumerate() {
        assert!(lines[i + 1].starts_with(n.as_str()), "{table}");
    }
    assert!(table.contains("c11: istio=1.24 blocked: "), "{table}");
    assert!(
        table
            .trim_end()
            .ends_with("20 clusters: 1 block a target, 2 could not be judged"),
        "{table}"
    );
}

#[test]
fn a_contexts_file_picks_the_clusters_and_without_targets_failures_block() {
    let fleet = fleet();
    let file = fleet._dir.path().join("contexts.txt");
    std::fs::write(&file, "# the EU clusters\nc15\n\nc16  # no mesh\n").expect("write");
    let out = run(meshup()
        .args(["fleet", "-o", "json", "--date", DATE, "--contexts-file"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&fleet.kubeconfig));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let contexts: Vec<&str> = report["clusters"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["context"].as_str())
        .collect();
    assert_eq!(contexts, ["c15", "c16"]);
    let fails: u64 = report["clusters"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["fail"].as_u64().expect("fail"))
        .sum();
    assert_eq!(
        out.status.code(),
        Some(if fails > 0 { 3 } else { 0 }),
        "{report:#}"
    );
    let missing = run(meshup()
        .args(["fleet", "--contexts-file", "/nonexistent/contexts.txt"])
        .arg("--kubeconfig")
        .arg(&fleet.kubeconfig));
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim_end(),
        "error: cannot read contexts file /nonexistent/contexts.txt: No such file or directory (os error 2); pass a file of context names, one a line"
    );
}

#[test]
fn a_cluster_that_does_not_answer_in_time_is_a_row_and_a_missing_namespace_is_named() {
    let slow = istio_ambient_server();
    let fault = slow.inject(
        Fault::never_answer()
            .on("/api/v1/namespaces/meshup-system/configmaps/kubectl-meshup-report"),
    );
    let fine = istio_ambient_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    support::write_kubeconfig(&kubeconfig, &[("slow", &slow), ("fine", &fine)], "fine");
    let started = Instant::now();
    let out = run(meshup()
        .args([
            "fleet",
            "--all-contexts",
            "--cluster-timeout",
            "2s",
            "-o",
            "json",
        ])
        .args(["--date", DATE, "--kubeconfig"])
        .arg(&kubeconfig));
    let took = started.elapsed();
    assert!(slow.fault_hits(fault) >= 1);
    assert!(
        took < Duration::from_secs(20),
        "bounded by the cluster timeout: {took:?}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let slow_row = &report["clusters"][0];
    assert_eq!(slow_row["context"], "slow");
    assert_eq!(slow_row["status"], "unreachable", "{slow_row:#}");
    assert_eq!(
        slow_row["reason"],
        format!(
            "no answer from {} within 2s (--cluster-timeout)",
            slow.url()
        )
    );
    let fine_row = &report["clusters"][1];
    assert_eq!(fine_row["status"], "ok", "{fine_row:#}");
    assert_eq!(fine_row["source"], "live");
    assert_eq!(
        out.status.code(),
        Some(0),
        "an unreachable cluster is a row, not a failure"
    );

    // Publishing into a namespace that is not there names it and the fix.
    let out = run(meshup()
        .args([
            "check",
            "--publish-configmap",
            "-n",
            "meshup-system",
            "--date",
            DATE,
        ])
        .arg("--kubeconfig")
        .arg(fine.kubeconfig_path()));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: cannot publish the report: namespace meshup-system does not exist in context \"fake-apiserver\"; create it (`kubectl apply -k deploy/` does) or pass -n NAMESPACE"
    );
    assert!(fine.get("configmaps", "meshup-system", CONFIGMAP).is_none());
}

#[test]
fn concurrency_bounds_how_many_clusters_are_read_at_once() {
    let servers: Vec<FakeApiServer> = (0..3).map(|_| istio_ambient_server()).collect();
    for s in &servers {
        s.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
            .expect("namespace");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    support::write_kubeconfig(
        &kubeconfig,
        &[("a", &servers[0]), ("b", &servers[1]), ("c", &servers[2])],
        "a",
    );
    let out = run(meshup()
        .args([
            "check",
            "--publish-configmap",
            "-n",
            NS,
            "--all-contexts",
            "--date",
            DATE,
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig));
    assert_eq!(out.status.code(), Some(0));
    // Each cluster's report takes 800 ms to come.
    for s in &servers {
        s.inject(
            Fault::latency(Duration::from_millis(800))
                .on("/api/v1/namespaces/meshup-system/configmaps/kubectl-meshup-report"),
        );
    }
    let fleet = |concurrency: &str| {
        let started = Instant::now();
        let out = run(meshup()
            .args([
                "fleet",
                "--all-contexts",
                "-o",
                "json",
                "--concurrency",
                concurrency,
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig));
        let took = started.elapsed();
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        for row in report["clusters"].as_array().expect("rows") {
            assert_eq!(row["source"], "published", "{row:#}");
        }
        took
    };
    let one_at_a_time = fleet("1");
    assert!(
        one_at_a_time >= Duration::from_millis(2400),
        "three 800 ms reads one after another: {one_at_a_time:?}"
    );
    let all_at_once = fleet("3");
    eprintln!("--concurrency 1: {one_at_a_time:?}; --concurrency 3: {all_at_once:?}");
    assert!(
        all_at_once < one_at_a_time,
        "{all_at_once:?} vs {one_at_a_time:?}"
    );
}
