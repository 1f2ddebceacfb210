//! `kubectl meshup compat update` end to end: a newer istio.io `supportStatus.yml` (a minor the built-in
//! data lacks, a changed end-of-life date) served from a local HTTP server, fetched with
//! `compat update --from http://127.0.0.1:…`, then used by `plan` and `check` against the fake API
//! server; broken, truncated and oversized downloads leave the previous file byte for byte.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fake_apiserver::FakeApiServer;
use serde_json::Value;

use crate::support::{FIXTURES, binary, text};

const BUILT_IN_TABLE: &str = include_str!("../../data/sources/istio/supportStatus.yml");

/// The built-in table plus Istio 1.32, and 1.29 ended on Oct 14, 2026 (the built-in table expects Aug).
fn newer_table() -> String {
    let with_132 = BUILT_IN_TABLE.replacen(
        "- version: \"1.30\"",
        "- version: \"1.32\"\n  supported: \"Yes\"\n  releaseDate: \"Nov 19, 2026\"\n  eolDate: \"\"\n  \
         k8sVersions: [\"1.33\", \"1.34\", \"1.35\", \"1.36\", \"1.37\"]\n  testedK8sVersions: [\"1.30\", \"1.31\", \"1.32\"]\n\
         - version: \"1.30\"",
        1,
    );
    let ended = with_132.replacen(
        "  supported: \"Yes\"\n  releaseDate: \"Feb 16, 2026\"\n  eolDate: \"~Aug 2026 (Expected)\"",
        "  supported: \"No\"\n  releaseDate: \"Feb 16, 2026\"\n  eolDate: \"Oct 14, 2026\"",
        1,
    );
    assert_ne!(ended, with_132, "the 1.29 row is in the built-in table");
    ended
}

/// A tiny HTTP/1.1 server: each path answers with a fixed (status, declared length, body).
fn serve(routes: Vec<(&'static str, u16, Option<usize>, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
            let (status, length, body) = routes
                .iter()
                .find(|(p, ..)| *p == path)
                .map(|(_, s, l, b)| (*s, *l, b.clone()))
                .unwrap_or((404, None, b"not found".to_vec()));
            // A declared length of 0 with a body: no Content-Length at all, the body ends at close.
            let length = match length {
                Some(0) => String::new(),
                l => format!("Content-Length: {}\r\n", l.unwrap_or(body.len())),
            };
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n{length}Connection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

struct Env {
    home: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            home: tempfile::tempdir().expect("tempdir"),
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn data_file(&self) -> PathBuf {
        self.home
            .path()
            .join("xdg")
            .join("kubectl-meshup")
            .join("compat.json")
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .env("XDG_DATA_HOME", self.home.path().join("xdg"))
            .env("HOME", self.home.path())
            .env("KUBECACHEDIR", self.cache.path())
            .env("KUBECTL_MESHUP_MAX_DOWNLOAD_MIB", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for proxy in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(proxy);
        }
        cmd.output().expect("run kubectl-meshup")
    }
}

/// An Istio 1.30.1 control plane (revision 1-30) with two injected workloads, on Kubernetes 1.33.
fn istio_130_cluster() -> FakeApiServer {
    let server = FakeApiServer::builder().server_version("v1.33.4").start();
    let fixture = std::fs::read_to_string(Path::new(FIXTURES).join("istio/cluster.yaml"))
        .expect("fixture")
        .replace("1-23", "1-30")
        .replace("pilot:1.23.4", "pilot:1.30.1");
    server.seed_yaml(&fixture).expect("seed");
    server
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

#[test]
fn an_update_from_a_local_server_brings_a_new_minor_that_plan_and_check_then_use() {
    let url = serve(vec![(
        "/supportStatus.yml",
        200,
        None,
        newer_table().into_bytes(),
    )]);
    let env = Env::new();
    let server = istio_130_cluster();
    let kubeconfig = server.kubeconfig_path().display().to_string();

    // Before: the built-in data does not know 1.32.
    let before = env.run(&[
        "--kubeconfig",
        &kubeconfig,
        "plan",
        "--to",
        "istio=1.32",
        "-o",
        "json",
    ]);
    assert_eq!(before.status.code(), Some(2), "{}", text(&before.stderr));
    assert!(
        text(&before.stderr).contains("not in the compatibility data"),
        "{}",
        text(&before.stderr)
    );

    let out = env.run(&[
        "compat",
        "update",
        "--from",
        &format!("{url}/supportStatus.yml"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Istio up to 1.32 (new: 1.32)"),
        "{}",
        text(&out.stdout)
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(env.data_file()).expect("data file written"))
            .expect("JSON");
    let minor = |m: &str| {
        written["istio"]["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .find(|r| r["minor"] == m)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(minor("1.32")["supportedK8s"][0], "1.33");
    assert_eq!(minor("1.32")["releaseDate"], "2026-11-19");
    assert_eq!(minor("1.29")["eol"], "2026-10-14");
    assert_eq!(minor("1.29")["eolStatus"], "final");
    assert!(
        written["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .any(|s| s
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{url}/supportStatus.yml (fetched ")))),
        "{written}"
    );

    // `compat show` names the file in use.
    let show = json(&env.run(&["compat", "show", "-o", "json"]));
    assert_eq!(show["date"], written["date"]);
    assert!(
        show["from"]
            .as_str()
            .is_some_and(|f| f.starts_with("compat update, ")),
        "{show}"
    );
    assert_eq!(show["ageDays"], 0);

    // The plan now reaches 1.32 (one canary hop from 1.30) and records the data it used.
    let out = env.run(&[
        "--kubeconfig",
        &kubeconfig,
        "plan",
        "--to",
        "istio=1.32",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = json(&out);
    assert_eq!(plan["targets"][0]["version"], "1.32.0", "{plan}");
    assert_eq!(plan["metadata"]["compatData"], written["date"]);
    assert!(
        plan["metadata"]["compatDataFrom"]
            .as_str()
            .is_some_and(|f| f.contains(&env.data_file().display().to_string())),
        "{}",
        plan["metadata"]
    );
    let table = env.run(&["--kubeconfig", &kubeconfig, "plan", "--to", "istio=1.32"]);
    assert!(
        text(&table.stdout).contains(&format!(
            "with compatibility data of {} (compat update, {})",
            written["date"].as_str().unwrap_or_default(),
            env.data_file().display()
        )),
        "{}",
        text(&table.stdout)
    );
    // The plan read the cluster and changed nothing in it.
    assert!(server.cluster().mutating_requests().is_empty());

    // check judges a 1.32 control plane with the new row: supported on Kubernetes 1.33.
    server
        .cluster()
        .modify("deployments", "istio-system", "istiod-1-30", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                Value::from("docker.io/istio/pilot:1.32.0");
        })
        .expect("istiod");
    let check = env.run(&[
        "--kubeconfig",
        &kubeconfig,
        "check",
        "--date",
        "2026-12-01",
        "-o",
        "json",
    ]);
    let report = json(&check);
    assert_eq!(report["compatData"], written["date"]);
    assert!(report["compatDataWarnings"].is_null(), "{report}");
    let k8s = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "istio.k8s-support")
        .cloned()
        .unwrap_or_else(|| panic!("no istio.k8s-support finding: {report}"));
    assert_eq!(k8s["severity"], "pass", "{k8s}");
    assert!(
        k8s["message"].as_str().is_some_and(|m| m.contains("1.32")),
        "{k8s}"
    );

    // ... and a 1.29 control plane by the new end-of-life date (the built-in data says 2026-10-12, planned).
    server
        .cluster()
        .modify("deployments", "istio-system", "istiod-1-30", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                Value::from("docker.io/istio/pilot:1.29.2");
        })
        .expect("istiod");
    let eol = |env: &Env| {
        let report = json(&env.run(&[
            "--kubeconfig",
            &kubeconfig,
            "check",
            "--date",
            "2026-10-13",
            "-o",
            "json",
        ]));
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["rule"] == "istio.eol")
            .cloned()
            .unwrap_or_else(|| panic!("no istio.eol finding: {report}"))
    };
    let judged = eol(&env);
    assert_eq!(
        judged["message"],
        "Istio 1.29 reaches end of life on 2026-10-14, in 1 day; plan the upgrade",
        "{judged}"
    );
    let built_in = eol(&Env::new());
    assert_eq!(
        built_in["message"],
        "Istio 1.29 is past end of life on 2026-10-12 (planned); upgrade to a supported release (newest known: 1.31)",
        "{built_in}"
    );
}

#[test]
fn broken_truncated_or_oversized_downloads_change_nothing() {
    let good = newer_table();
    let cut_at_a_row = good
        .split("- version: \"1.20\"")
        .next()
        .expect("table")
        .to_string();
    let url = serve(vec![
        (
            "/good/supportStatus.yml",
            200,
            None,
            good.clone().into_bytes(),
        ),
        (
            "/malformed/supportStatus.yml",
            200,
            None,
            b"<html>rate limited</html>".to_vec(),
        ),
        // Declares more than it sends, then closes: the body ends early.
        (
            "/truncated/supportStatus.yml",
            200,
            Some(good.len() + 500),
            good.as_bytes()[..good.len() / 2].to_vec(),
        ),
        (
            "/rows-missing/supportStatus.yml",
            200,
            None,
            cut_at_a_row.into_bytes(),
        ),
        (
            "/large/supportStatus.yml",
            200,
            None,
            vec![b'#'; 2 * 1024 * 1024],
        ),
        // Oversized with no Content-Length: cut while streaming.
        (
            "/large-unannounced/supportStatus.yml",
            200,
            Some(0),
            vec![b'#'; 2 * 1024 * 1024],
        ),
        ("/error/supportStatus.yml", 503, None, b"busy".to_vec()),
    ]);
    let env = Env::new();
    let out = env.run(&[
        "compat",
        "update",
        "--from",
        &format!("{url}/good/supportStatus.yml"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before = std::fs::read(env.data_file()).expect("data file");

    for (path, reason) in [
        ("malformed", "istio/supportStatus.yml: "),
        ("truncated", "end of file before message length reached"),
        ("rows-missing", "lacks Istio 1.7, 1.8"),
        (
            "large",
            "larger than 1 MiB (the limit per download); set KUBECTL_MESHUP_MAX_DOWNLOAD_MIB",
        ),
        (
            "large-unannounced",
            "larger than 1 MiB (the limit per download)",
        ),
        ("error", "the server answered 503"),
        ("absent", "404 Not Found"),
    ] {
        let out = env.run(&[
            "compat",
            "update",
            "--from",
            &format!("{url}/{path}/supportStatus.yml"),
        ]);
        let err = text(&out.stderr);
        eprintln!("{path}: {err}");
        assert_eq!(out.status.code(), Some(1), "{path}: {err}");
        assert_eq!(err.lines().count(), 1, "{path}: one line: {err}");
        assert!(
            err.starts_with("error: cannot update the compatibility data: ")
                && err.contains(reason),
            "{path}: {err}"
        );
        assert!(err.contains("nothing was changed"), "{path}: {err}");
        assert_eq!(
            std::fs::read(env.data_file()).expect("data file"),
            before,
            "{path}: the previous data file is untouched"
        );
        assert!(out.stdout.is_empty(), "{path}");
    }
    // Plain http is only for loopback.
    let out = env.run(&[
        "compat",
        "update",
        "--from",
        "http://example.invalid/supportStatus.yml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("only https:// URLs are fetched"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(env.data_file()).expect("data file"), before);
    // No temporary files are left beside it.
    let dir = env.data_file().parent().expect("dir").to_path_buf();
    assert_eq!(std::fs::read_dir(dir).expect("dir").count(), 1);
}

#[test]
fn old_data_is_flagged_in_the_headers_of_check_and_plan_naming_the_update_command() {
    let env = Env::new();
    let server = istio_130_cluster();
    let kubeconfig = server.kubeconfig_path().display().to_string();
    // The built-in data (2026-09-09) judged at a pinned date 120 days later.
    let out = env.run(&["--kubeconfig", &kubeconfig, "check", "--date", "2027-01-07"]);
    let table = text(&out.stdout);
    assert!(
        table.starts_with("Checked 1 cluster against compatibility data dated 2026-09-09 (built in), as of 2027-01-07\n\
         warning: the compatibility data is 120 days old (dated 2026-09-09, older than 90 days): newer releases and end-of-life dates may be missing; run `kubectl meshup compat update`\n"),
        "{table}"
    );
    let report = json(&env.run(&[
        "--kubeconfig",
        &kubeconfig,
        "check",
        "--date",
        "2027-01-07",
        "-o",
        "json",
    ]));
    assert_eq!(report["compatDataFrom"], "built in");
    assert_eq!(
        report["compatDataWarnings"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    // 89 days: no warning.
    let report = json(&env.run(&[
        "--kubeconfig",
        &kubeconfig,
        "check",
        "--date",
        "2026-12-07",
        "-o",
        "json",
    ]));
    assert!(report["compatDataWarnings"].is_null(), "{report}");

    // A cluster newer than the data: the plan's warnings say so first, naming the command.
    server
        .cluster()
        .modify("deployments", "istio-system", "istiod-1-30", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                Value::from("docker.io/istio/pilot:1.33.0");
        })
        .expect("istiod");
    let out = env.run(&[
        "--kubeconfig",
        &kubeconfig,
        "check",
        "--date",
        "2026-12-01",
        "-o",
        "json",
    ]);
    let report = json(&out);
    let warnings = report["compatDataWarnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains(
                "runs Istio 1.33.0, newer than every Istio minor in the compatibility data"
            ) && w.contains("kubectl meshup compat update"))),
        "{report}"
    );
}
