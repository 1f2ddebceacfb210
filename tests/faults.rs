//! Nothing lost under faults (issue 8), through the binary a user runs:
//! - API faults injected by the fake API server: `check` gives the same verdict as without them, or
//!   fails in one line naming what it could not read;
//! - bad input: one-line errors naming the cause and the fix, documented exit codes, no panic;
//! - security: credentials never printed at any verbosity, TLS verified unless the kubeconfig says
//!   otherwise.
//!
//! Each case prints what the user saw (run with `--nocapture`); docs/what-happens-when.md quotes it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use fake_apiserver::{FakeApiServer, Fault};
use serde_json::Value;

mod support;
use support::sidecar_pod;

const DATE: &str = "2025-06-01";

fn meshup() -> Command {
    let mut cmd = Command::cargo_bin("kubectl-meshup").expect("binary built");
    cmd.env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(60));
    cmd
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// An Istio 1.22 canary with ambient, three nodes and 1,100 sidecar pods (three pages of pods), so
/// paging and expired continue tokens are exercised.
fn seeded() -> FakeApiServer {
    let server = FakeApiServer::start();
    server
        .seed_paths([
            fixture("cluster/nodes.yaml"),
            fixture("cluster/istio-1-22-ambient.yaml"),
        ])
        .expect("seed fixtures");
    for i in 0..1100 {
        server
            .seed(sidecar_pod("bookinfo", "web", i, "1.22.3"))
            .expect("seed pod");
    }
    server
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

/// `check -o json` against the server: exit code and the report's verdict (findings and summary).
fn check(server: &FakeApiServer, extra: &[&str]) -> (Option<i32>, Value, Output) {
    let out = run(meshup()
        .args(["check", "-o", "json", "--date", DATE, "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .args(extra));
    let verdict = serde_json::from_slice::<Value>(&out.stdout)
        .map(|r| serde_json::json!({"findings": r["findings"], "summary": r["summary"]}))
        .unwrap_or(Value::Null);
    (out.status.code(), verdict, out)
}

/// stderr is exactly one line, `error: ...`; returns it.
fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.trim_end().to_string()
}

// ----- API faults: same verdict, or one line naming what could not be read -------------------------

/// The verdict on the seeded cluster without faults: the reference every fault case must match.
fn reference_verdict() -> (Option<i32>, Value) {
    let server = seeded();
    let (code, verdict, _) = check(&server, &[]);
    assert!(matches!(code, Some(0 | 3)), "{code:?}");
    assert!(
        verdict["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    (code, verdict)
}

/// Runs `check` with `faults` injected and asserts the verdict is the reference one and the faults
/// were actually hit.
fn same_verdict_under(faults: Vec<Fault>, extra: &[&str]) {
    let (want_code, want) = reference_verdict();
    let server = seeded();
    let ids: Vec<_> = faults.into_iter().map(|f| server.inject(f)).collect();
    let (code, verdict, out) = check(&server, extra);
    let hits: u64 = ids.iter().map(|id| server.fault_hits(*id)).sum();
    assert!(hits > 0, "no fault was hit");
    assert_eq!(code, want_code, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(verdict, want);
    eprintln!("{hits} faults hit, same verdict");
}

#[test]
fn check_survives_500s_on_a_fifth_of_reads() {
    same_verdict_under(vec![Fault::status(500).on("*").rate(0.2, 500)], &[]);
}

#[test]
fn check_survives_503s_on_a_fifth_of_reads() {
    same_verdict_under(vec![Fault::status(503).on("*").rate(0.2, 503)], &[]);
}

#[test]
fn check_survives_429_with_retry_after_on_a_tenth_of_reads() {
    same_verdict_under(
        vec![Fault::status(429).retry_after(1).on("*").rate(0.1, 429)],
        &[],
    );
}

#[test]
fn check_survives_dropped_connections_on_a_fifth_of_reads() {
    same_verdict_under(vec![Fault::drop_connection().on("*").rate(0.2, 7)], &[]);
}

#[test]
fn check_survives_latency_spikes_and_retries_reads_that_time_out() {
    // 300 ms spikes on 30% of requests pass; 3 s stalls on 10% exceed --request-timeout 1s and are
    // retried.
    same_verdict_under(
        vec![
            Fault::latency(Duration::from_millis(300))
                .on("*")
                .rate(0.3, 1),
            Fault::latency(Duration::from_secs(3)).on("*").rate(0.1, 2),
        ],
        &["--request-timeout", "1s"],
    );
}

#[test]
fn check_restarts_a_list_whose_continue_token_expired() {
    same_verdict_under(
        vec![Fault::expired_continue().on("/api/v1/pods").times(2)],
        &[],
    );
}

#[test]
fn check_survives_all_faults_at_once() {
    same_verdict_under(
        vec![
            Fault::status(500).on("*").rate(0.1, 11),
            Fault::status(503).on("*").rate(0.1, 12),
            Fault::status(429).retry_after(1).on("*").rate(0.05, 13),
            Fault::drop_connection().on("*").rate(0.1, 14),
            Fault::latency(Duration::from_millis(200))
                .on("*")
                .rate(0.2, 15),
            Fault::expired_continue().on("/api/v1/pods").times(1),
        ],
        &[],
    );
}

/// A read that never succeeds: exit 1 within the retry bound, one line naming what was being read.
fn fails_naming(fault: Fault, must_contain: &[&str]) -> String {
    let server = seeded();
    let id = server.inject(fault);
    let started = Instant::now();
    let (code, _, out) = check(&server, &[]);
    let took = started.elapsed();
    assert_eq!(code, Some(1));
    assert!(out.stdout.is_empty(), "no report on a failed read");
    let err = one_line_error(&out);
    for part in must_contain {
        assert!(err.contains(part), "missing {part:?}: {err}");
    }
    // 5 attempts per request; the default bound keeps this to seconds, not kube-rs's minutes.
    assert!(server.fault_hits(id) >= 5, "{} hits", server.fault_hits(id));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    err
}

#[test]
fn pods_always_500_fail_naming_the_pods() {
    fails_naming(
        Fault::status(500).on("/api/v1/pods"),
        &[
            "reading pods in all namespaces in context \"fake-apiserver\" failed: 500 InternalError",
            "retry",
        ],
    );
}

#[test]
fn pods_always_503_fail_naming_the_pods() {
    fails_naming(
        Fault::status(503).on("/api/v1/pods"),
        &["reading pods in all namespaces", "503 ServiceUnavailable"],
    );
}

#[test]
fn pods_always_dropped_fail_naming_the_pods() {
    fails_naming(
        Fault::drop_connection().on("/api/v1/pods"),
        &["while reading pods in all namespaces", "fake-apiserver"],
    );
}

#[test]
fn writes_are_not_retried_on_server_errors() {
    // The one write `check` makes is none; drive one through kube-rs with the same client stack.
    let server = FakeApiServer::start();
    let id = server.inject(Fault::status(503).on("/api/v1/namespaces").method("POST"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let opts = kubectl_meshup::client::ConnectionOptions {
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            ..Default::default()
        };
        let targets = kubectl_meshup::client::connect(&opts).await.unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(targets[0].client.clone());
        let ns: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "once"}})).unwrap();
        api.create(&Default::default(), &ns).await
    });
    assert!(
        matches!(&status, Err(kube::Error::Api(s)) if s.code == 503),
        "{status:?}"
    );
    assert_eq!(server.fault_hits(id), 1, "a failed write is sent once");
}

// ----- bad input --------------------------------------------------------------------------------

#[test]
fn missing_kubeconfig_names_where_it_looked() {
    let home = tempfile::tempdir().unwrap();
    let out = run(meshup().arg("check").env("HOME", home.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("no kubeconfig found") && err.contains("--kubeconfig"),
        "{err}"
    );

    let out = run(meshup().args(["check", "--kubeconfig", "/nonexistent/kubeconfig"]));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
}

fn kubeconfig_file(dir: &Path, server: &str, user: &str) -> PathBuf {
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n{server}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n{user}\n"
        ),
    )
    .unwrap();
    path
}

const TOKEN: &str = "s3cr3t-bearer-T0KEN-4a1f";
/// A syntactically plausible client key: none of its lines may ever be printed.
const KEY_MARKER: &str = "MHcCAQEEIFAKEKEYmeshupDoNotPrintThisMaterialAAAAoAoGCCqGSM49";

fn token_user() -> String {
    format!("    token: {TOKEN}")
}

#[test]
fn tls_to_a_plain_http_server_is_a_tls_error() {
    let server = FakeApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let https = server.url().replace("http://", "https://");
    let config = kubeconfig_file(dir.path(), &format!("    server: {https}"), &token_user());
    let out = run(meshup()
        .args(["check", "-vvv", "--kubeconfig"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(TOKEN), "token leaked: {stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: TLS with the API server"), "{last}");
    assert!(last.contains("certificate-authority-data"), "{last}");
}

/// A TLS front for the fake server with a certificate from the test CA in tests/fixtures/tls.
struct TlsFront {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

fn tls_front(backend: &FakeApiServer) -> TlsFront {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = vec![CertificateDer::from_pem_file(fixture("tls/server.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(fixture("tls/server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let backend_addr = backend.url().trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let backend_addr = backend_addr.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend_addr).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    TlsFront {
        url,
        _runtime: runtime,
    }
}

#[test]
fn an_untrusted_certificate_is_refused_unless_the_kubeconfig_trusts_it() {
    let server = seeded();
    let front = tls_front(&server);
    let dir = tempfile::tempdir().unwrap();

    // No CA for it: verification fails.
    let config = kubeconfig_file(
        dir.path(),
        &format!("    server: {}", front.url),
        &token_user(),
    );
    let out = run(meshup()
        .args(["check", "-vvv", "--kubeconfig"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(TOKEN), "token leaked: {stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: TLS with the API server"), "{last}");
    assert!(
        last.to_ascii_lowercase().contains("unknown issuer")
            || last.to_ascii_lowercase().contains("certificate"),
        "{last}"
    );

    // The CA in the kubeconfig: verified and read.
    let ca = std::fs::read(fixture("tls/ca.crt")).unwrap();
    let ca_b64 = base64(&ca);
    let config = kubeconfig_file(
        dir.path(),
        &format!(
            "    server: {}\n    certificate-authority-data: {ca_b64}",
            front.url
        ),
        &token_user(),
    );
    let out = run(meshup()
        .args(["check", "--date", DATE, "--kubeconfig"])
        .arg(&config));
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "verified TLS works"
    );

    // insecure-skip-tls-verify: read, with a warning that says so.
    let config = kubeconfig_file(
        dir.path(),
        &format!(
            "    server: {}\n    insecure-skip-tls-verify: true",
            front.url
        ),
        &token_user(),
    );
    let out = run(meshup()
        .args(["check", "--date", DATE, "--kubeconfig"])
        .arg(&config));
    assert!(matches!(out.status.code(), Some(0 | 3)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("insecure-skip-tls-verify").count(),
        1,
        "one warning, not one per connection: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn unauthorized_says_log_in_again() {
    let server = FakeApiServer::start();
    server.inject(Fault::status(401).on("*"));
    let (code, _, out) = check(&server, &[]);
    assert_eq!(code, Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("rejected the credentials (401 Unauthorized)") && err.contains("log in again"),
        "{err}"
    );
}

#[test]
fn forbidden_lists_are_named_with_verb_and_resource_and_the_rest_is_checked() {
    let server = seeded();
    server.deny("list", "", "pods");
    let (code, verdict, out) = check(&server, &[]);
    assert!(
        matches!(code, Some(0 | 3)),
        "a 403 on one list is not fatal"
    );
    let findings = verdict["findings"].as_array().unwrap();
    let unread: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            f["message"]
                .as_str()
                .is_some_and(|m| m.contains("forbidden"))
        })
        .collect();
    assert_eq!(unread.len(), 1, "{findings:#?}");
    let message = unread[0]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot list resource \"pods\""),
        "names verb and resource: {message}"
    );
    assert_ne!(unread[0]["severity"], "pass");
    let table = run(meshup()
        .args(["check", "--date", DATE, "--kubeconfig"])
        .arg(server.kubeconfig_path()));
    eprintln!("{}", String::from_utf8_lossy(&table.stdout));
    drop(out);
}

#[test]
fn an_impossible_date_is_a_usage_error() {
    let out = run(meshup().args(["check", "--date", "2025-13-45"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2025-13-45"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

fn snapshot_with(istiod_version: &str) -> String {
    let text = std::fs::read_to_string(fixture("snapshots/gloo-mesh-istio-1-9-k8s-1-22.yaml"))
        .expect("example snapshot");
    text.replace("1.9.", &format!("{istiod_version}."))
}

#[test]
fn a_snapshot_with_an_unparseable_version_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.yaml");
    let text =
        std::fs::read_to_string(fixture("snapshots/gloo-mesh-istio-1-9-k8s-1-22.yaml")).unwrap();
    let mangled = text.replacen("1.9.", "1.x.", 1);
    assert_ne!(
        text, mangled,
        "the example has an Istio 1.9 version to mangle"
    );
    std::fs::write(&path, mangled).unwrap();
    let out = run(meshup().args(["check", "--snapshot"]).arg(&path));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("cannot read snapshot"), "{err}");
    assert!(err.contains("1.x"), "names the bad value: {err}");
}

#[test]
fn a_mesh_newer_than_the_data_warns_and_never_passes_silently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.yaml");
    std::fs::write(&path, snapshot_with("1.99")).unwrap();
    let out = run(meshup()
        .args(["check", "-o", "json", "--date", DATE, "--snapshot"])
        .arg(&path));
    assert!(matches!(out.status.code(), Some(0 | 3)));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let about_199: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["message"].as_str().is_some_and(|m| m.contains("1.99")))
        .collect();
    assert!(!about_199.is_empty(), "{report:#}");
    assert!(
        about_199.iter().all(|f| f["severity"] != "pass"),
        "{about_199:#?}"
    );
    assert!(
        about_199.iter().any(|f| f["severity"] == "warn"
            && f["message"].as_str().is_some_and(|m| m.contains("not in"))),
        "{about_199:#?}"
    );
}

#[test]
fn a_live_mesh_newer_than_the_data_warns() {
    let server = FakeApiServer::start();
    let text = std::fs::read_to_string(fixture("cluster/istio-1-22-ambient.yaml")).unwrap();
    server
        .seed_yaml(&text.replace("1.22.3", "1.99.0"))
        .expect("seed");
    let (code, verdict, _) = check(&server, &[]);
    assert!(matches!(code, Some(0 | 3)));
    let findings = verdict["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["severity"] == "warn"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("1.99") && m.contains("not in"))),
        "{findings:#?}"
    );
}

// ----- security ---------------------------------------------------------------------------------

fn assert_no_secret(out: &Output, secrets: &[&str]) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
    }
}

#[test]
fn tokens_and_keys_never_appear_at_any_verbosity() {
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    let key =
        format!("-----BEGIN EC PRIVATE KEY-----\n{KEY_MARKER}\n-----END EC PRIVATE KEY-----\n");
    let key_path = dir.path().join("client.key");
    std::fs::write(&key_path, &key).unwrap();
    let good = kubeconfig_file(
        dir.path(),
        &format!("    server: {}", server.url()),
        &token_user(),
    );
    for verbosity in [None, Some("-v"), Some("-vv"), Some("-vvv")] {
        for command in ["check", "snapshot"] {
            let out = run(meshup()
                .arg(command)
                .args(verbosity)
                .args(["--kubeconfig"])
                .arg(&good));
            assert!(matches!(out.status.code(), Some(0 | 3)));
            assert_no_secret(&out, &[TOKEN]);
        }
    }
    // Failing connections: refused, with faults, with a client key that is not a key.
    let refused = tempfile::tempdir().unwrap();
    let refused = kubeconfig_file(
        refused.path(),
        "    server: http://127.0.0.1:1",
        &token_user(),
    );
    let with_key = tempfile::tempdir().unwrap();
    let with_key = kubeconfig_file(
        with_key.path(),
        &format!("    server: {}", server.url()),
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}",
            base64(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            base64(key.as_bytes())
        ),
    );
    server.inject(Fault::status(500).on("/api/v1/nodes"));
    for verbosity in ["-v", "-vv", "-vvv"] {
        for config in [&refused, &good, &with_key] {
            let out = run(meshup()
                .args(["check", verbosity, "--kubeconfig"])
                .arg(config));
            assert_eq!(out.status.code(), Some(1));
            assert_no_secret(&out, &[TOKEN, KEY_MARKER]);
            if config == &with_key {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.trim_end().lines().last().unwrap_or_default();
                assert!(
                    last.starts_with("error: cannot use context \"c\"")
                        && last.contains("private key")
                        && last.contains("fix its cluster or user entry"),
                    "a bad client key is the kubeconfig's problem: {last}"
                );
            }
        }
    }
}

/// An exec credential plugin (as EKS and GKE use) whose output carries a secret.
fn exec_kubeconfig(dir: &Path, server: &str, script: &str) -> PathBuf {
    let plugin = dir.join("credential-plugin");
    std::fs::write(&plugin, format!("#!/bin/sh\n{script}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    kubeconfig_file(
        dir,
        &format!("    server: {server}"),
        &format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: Never",
            plugin.display()
        ),
    )
}

#[test]
fn exec_plugin_output_never_appears() {
    let server = seeded();
    let secret = "exec-plugin-S3CRET-9c2e";
    let good = format!(
        "echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{secret}\"}}}}'"
    );
    let cases = [
        (good.as_str(), true),
        // Fails, printing the secret on stdout.
        (&*format!("echo 'token {secret}'; exit 1"), false),
        // Succeeds with output that is not an ExecCredential (parsers like to quote it).
        (&*format!("echo '{{\"token\": \"{secret}\", broken'"), false),
        (&*format!("echo '{secret}'"), false),
    ];
    for (script, works) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = exec_kubeconfig(dir.path(), &server.url(), script);
        for verbosity in ["-v", "-vvv"] {
            let out = run(meshup()
                .args(["check", verbosity, "--kubeconfig"])
                .arg(&config));
            assert_no_secret(&out, &[secret]);
            if works {
                assert!(matches!(out.status.code(), Some(0 | 3)));
            } else {
                assert_eq!(out.status.code(), Some(1));
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.trim_end().lines().last().unwrap_or_default();
                assert!(last.starts_with("error: "), "{stderr}");
                assert!(last.contains("credential"), "{last}");
            }
        }
    }
}

// ----- hostile plan files -----------------------------------------------------------------------

mod hostile_plans {
    use kubectl_meshup::compat::CompatData;
    use kubectl_meshup::plan::{
        self, Mesh, PlanFileError, PlanRequest, Strategy, Target, UpgradePlan,
    };
    use kubectl_meshup::snapshot::ClusterSnapshot;
    use kubectl_meshup::version::Version;
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    /// The Gloo Mesh 0.12 → 1.1 plan: it runs meshctl and helm.
    pub fn gloo_plan() -> UpgradePlan {
        let snapshot: ClusterSnapshot = serde_saphyr::from_str(include_str!(
            "fixtures/plan/gloo-mesh-0.12-two-clusters.yaml"
        ))
        .expect("fixture");
        let request = PlanRequest {
            targets: vec![Target {
                mesh: Mesh::GlooMesh,
                version: Version::parse("1.1").unwrap(),
            }],
            strategy: Strategy::Canary,
            tool_version: "0.1.0".into(),
            ..Default::default()
        };
        plan::plan(&snapshot, &CompatData::embedded(), &request).expect("plan")
    }

    /// What an attacker who read the source does after editing: recompute the integrity hash
    /// (sha256 of the canonical JSON without `integrity`).
    pub fn resealed(mut doc: Value) -> String {
        let object = doc.as_object_mut().expect("a plan is an object");
        object.remove("integrity");
        let canonical = serde_json::to_vec(&doc).unwrap();
        let digest = Sha256::digest(&canonical);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        doc["integrity"] = Value::String(format!("sha256:{hex}"));
        serde_json::to_string_pretty(&doc).unwrap()
    }

    fn plan_json() -> Value {
        serde_json::from_str(&plan::to_json(&gloo_plan())).unwrap()
    }

    /// The first `run` step's action, to edit.
    fn first_run(doc: &mut Value) -> &mut Value {
        doc["steps"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .map(|s| &mut s["action"])
            .find(|a| a["type"] == "run")
            .expect("the Gloo Mesh plan runs a tool")
    }

    fn refused(text: &str) -> PlanFileError {
        let err = plan::load(text).expect_err("a hostile plan must not load");
        let message = err.to_string();
        eprintln!("{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        err
    }

    #[test]
    fn the_resealing_helper_matches_the_real_hash() {
        // Otherwise the tests below would pass for the wrong reason (a hash mismatch).
        let text = resealed(plan_json());
        let loaded = plan::load(&text).expect("resealed untouched plan loads");
        assert_eq!(loaded, {
            let mut p = gloo_plan();
            p.integrity = loaded.integrity.clone();
            p
        });
    }

    #[test]
    fn a_shell_as_the_tool_is_refused_even_with_a_valid_hash() {
        for tool in ["sh", "bash", "/bin/sh", "Helm", "helm; rm -rf /", ""] {
            let mut doc = plan_json();
            let run = first_run(&mut doc);
            run["tool"] = Value::String(tool.into());
            run["args"] = serde_json::json!(["-c", "touch /tmp/pwned"]);
            let err = refused(&resealed(doc));
            assert!(matches!(err, PlanFileError::Schema { .. }), "{tool}: {err}");
            assert!(err.to_string().contains("schema"), "{err}");
        }
    }

    #[test]
    fn an_exec_action_type_is_refused_even_with_a_valid_hash() {
        for kind in ["exec", "shell", "script", "command"] {
            let mut doc = plan_json();
            let run = first_run(&mut doc);
            *run = serde_json::json!({"type": kind, "command": "touch /tmp/pwned", "args": []});
            let err = refused(&resealed(doc));
            assert!(matches!(err, PlanFileError::Schema { .. }), "{kind}: {err}");
        }
    }

    #[test]
    fn an_added_field_is_refused_even_with_a_valid_hash() {
        let edits: [fn(&mut Value); 4] = [
            |d| first_run(d)["shell"] = Value::Bool(true),
            |d| first_run(d)["env"] = serde_json::json!({"LD_PRELOAD": "/tmp/x.so"}),
            |d| d["steps"][0]["preCommand"] = Value::String("sh -c id".into()),
            |d| d["hooks"] = serde_json::json!([{"run": "id"}]),
        ];
        for edit in edits {
            let mut doc = plan_json();
            edit(&mut doc);
            let err = refused(&resealed(doc));
            assert!(matches!(err, PlanFileError::Schema { .. }), "{err}");
        }
    }

    #[test]
    fn a_hand_edited_argument_without_resealing_is_an_integrity_mismatch() {
        let mut doc = plan_json();
        first_run(&mut doc)["args"] = serde_json::json!(["$(touch /tmp/pwned)"]);
        let err = refused(&serde_json::to_string_pretty(&doc).unwrap());
        assert_eq!(err, PlanFileError::IntegrityMismatch);
    }

    #[test]
    fn a_resealed_argument_stays_an_argument_of_a_known_tool() {
        // An attacker can change arguments and reseal; the plan still only runs helm, istioctl or
        // meshctl with an argument vector (no shell), so `$(...)` is a literal string.
        let mut doc = plan_json();
        first_run(&mut doc)["args"] = serde_json::json!(["$(touch /tmp/pwned)", "`id`; id"]);
        let loaded = plan::load(&resealed(doc)).expect("typed arguments load");
        let run = loaded
            .steps
            .iter()
            .find_map(|s| match &s.action {
                plan::Action::Run { tool, args, .. } => Some((*tool, args.clone())),
                _ => None,
            })
            .unwrap();
        assert!(["helm", "istioctl", "meshctl"].contains(&run.0.program()));
        assert_eq!(run.1, ["$(touch /tmp/pwned)", "`id`; id"]);
    }

    #[test]
    fn truncated_and_malformed_plans_are_refused_in_one_line() {
        let yaml = plan::to_yaml(&gloo_plan());
        for cut in [0, 10, yaml.len() / 3, yaml.len() / 2, yaml.len() - 20] {
            let err = refused(&yaml[..cut]);
            eprintln!("cut at {cut}: {err}");
        }
        let json = plan::to_json(&gloo_plan());
        refused(&json[..json.len() / 2]);
        refused("{not json");
        refused("steps: [ {");
        refused("apiVersion: v1\nkind: ConfigMap\n");
    }
}

// ----- fuzzing with proptest (bounded: part of the normal test run) --------------------------------

mod fuzz {
    use kubectl_meshup::plan;
    use kubectl_meshup::snapshot::ClusterSnapshot;
    use kubectl_meshup::version::{KernelVersion, KubeVersion, Minor, Version, image_version};
    use proptest::prelude::*;

    const SNAPSHOTS: [&str; 3] = [
        include_str!("fixtures/snapshots/gloo-mesh-istio-1-9-k8s-1-22.yaml"),
        include_str!("fixtures/plan/istio-ambient-1.23.yaml"),
        include_str!("fixtures/plan/kmesh-1.0-dual-engine.yaml"),
    ];

    /// Text that looks like versions: digits, dots, letters, signs, and now and then anything.
    fn versionish() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9v.+-]{0,24}",
            "v?[0-9]{1,12}(\\.[0-9]{1,12}){0,3}([-+][a-z0-9.-]{0,12})?",
            ".{0,40}",
        ]
    }

    /// Inputs cargo-fuzz found (fuzz/artifacts). The first crashed the harness itself (it split the
    /// input at a byte that was inside `ɉ`), not the parsers; kept so they are fed these bytes too.
    #[test]
    fn inputs_found_by_cargo_fuzz_do_not_panic() {
        let found: [&[u8]; 1] = [b"\x0f\0\0\0\0\0\0\0\xc9\x89\x0f\0\0\0\0\0\0\0"];
        for bytes in found {
            let s = String::from_utf8_lossy(bytes);
            let _ = Version::parse(&s);
            let _ = Minor::parse(&s);
            let _ = KernelVersion::parse(&s);
            let _ = image_version(&s);
            for (i, _) in s.char_indices() {
                let _ = KubeVersion::from_server(&s[..i], &s[i..], &s);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn version_parsers_never_panic(s in versionish()) {
            let _ = Minor::parse(&s);
            let _ = Version::parse(&s);
            let _ = Version::parse_prefix(&s);
            let _ = KernelVersion::parse(&s);
            let _ = KubeVersion::from_server(&s, "1", "29+");
            let _ = KubeVersion::from_server(&s, &s, &s);
            let _ = image_version(&s);
            let _ = image_version(&format!("docker.io/istio/pilot:{s}"));
            let _ = image_version(&format!("registry:5000/istio/proxyv2:{s}@sha256:{s}"));
        }

        #[test]
        fn versions_round_trip_through_display(major in 0u64..1_000, minor in 0u64..1_000,
                                               patch in proptest::option::of(0u64..100_000)) {
            let text = match patch {
                Some(p) => format!("{major}.{minor}.{p}"),
                None => format!("{major}.{minor}"),
            };
            let v = Version::parse(&text).expect("a plain version parses");
            prop_assert_eq!(v.to_string(), text.clone());
            prop_assert_eq!(Version::parse(&v.to_string()).unwrap(), v);
            let m = Minor::parse(&format!("{major}.{minor}")).expect("a minor parses");
            prop_assert_eq!(Minor::parse(&m.to_string()).unwrap(), m);
            // The serde form round-trips too (snapshots and plans carry versions as strings).
            let json = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), v);
        }

        #[test]
        fn parsed_versions_print_back_to_a_parseable_form(s in versionish()) {
            if let Ok(v) = Version::parse(&s) {
                prop_assert_eq!(Version::parse(&v.to_string()).unwrap(), v);
            }
            if let Ok(m) = Minor::parse(&s) {
                prop_assert_eq!(Minor::parse(&m.to_string()).unwrap(), m);
            }
        }

        #[test]
        fn snapshot_loading_never_panics_on_mangled_snapshots(
            which in 0usize..3, at in 0usize..100_000, len in 0usize..64, junk in ".{0,16}",
            json in any::<bool>(),
        ) {
            let original = SNAPSHOTS[which];
            let text = if json {
                let value: ClusterSnapshot = serde_saphyr::from_str(original).unwrap();
                serde_json::to_string(&value).unwrap()
            } else {
                original.to_string()
            };
            let mut chars: Vec<char> = text.chars().collect();
            let start = at % chars.len();
            let end = (start + len).min(chars.len());
            chars.splice(start..end, junk.chars());
            let mangled: String = chars.into_iter().collect();
            let _ = serde_saphyr::from_str::<ClusterSnapshot>(&mangled);
            let _ = serde_json::from_str::<ClusterSnapshot>(&mangled);
            let _ = serde_saphyr::from_str::<ClusterSnapshot>(&mangled[..start.min(mangled.len())]);
        }

        #[test]
        fn snapshot_loading_never_panics_on_arbitrary_text(text in ".{0,300}") {
            let _ = serde_saphyr::from_str::<ClusterSnapshot>(&text);
            let _ = serde_json::from_str::<ClusterSnapshot>(&text);
        }

        #[test]
        fn plan_loading_never_panics_on_mangled_json_plans(at in 0usize..100_000, len in 0usize..32,
                                                          junk in ".{0,12}") {
            let json = plan::to_json(&super::hostile_plans::gloo_plan());
            let mut chars: Vec<char> = json.chars().collect();
            let start = at % chars.len();
            let end = (start + len).min(chars.len());
            chars.splice(start..end, junk.chars());
            let mangled: String = chars.into_iter().collect();
            let loaded = plan::load(&mangled);
            // A change that leaves the document equal (same JSON) may load; any other change must not.
            if let Ok(p) = loaded {
                let reference: serde_json::Value = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(serde_json::to_value(&p).unwrap(), reference);
            }
        }
    }
}

// ----- plan files through the binary, and tools without a shell -----------------------------------

const PLAN_SNAPSHOT: &str = "plan/istio-1.20-k8s-1.29.yaml";

/// `plan --out` from a saved snapshot: a real plan file for the snapshot's cluster.
fn written_plan(dir: &Path) -> PathBuf {
    let path = dir.join("plan.yaml");
    let out = run(meshup()
        .args(["plan", "--to", "istio=1.22", "--snapshot"])
        .arg(fixture(PLAN_SNAPSHOT))
        .arg("--out")
        .arg(&path));
    assert_eq!(out.status.code(), Some(0));
    assert!(path.exists());
    path
}

/// `apply --yes PLAN` against the fake server: must be refused with nothing written.
fn apply_refused(server: &FakeApiServer, plan: &Path) -> String {
    server.clear_requests();
    let out = run(meshup()
        .args(["apply", "--yes", "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .arg(plan));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        server.mutating_requests().is_empty(),
        "{:?}",
        server.mutating_requests()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_unparseable_target_version_is_a_usage_error() {
    for bad in [
        "istio=1.x",
        "istio=",
        "istio=99999999999.1",
        "mesh=1.2",
        "1.24",
    ] {
        let out = run(meshup()
            .args(["plan", "--to", bad, "--snapshot"])
            .arg(fixture(PLAN_SNAPSHOT)));
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(bad), "names the value: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn broken_plan_files_are_refused_before_any_change() {
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    let plan = written_plan(dir.path());
    let text = std::fs::read_to_string(&plan).unwrap();

    let truncated = dir.path().join("truncated.yaml");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let err = apply_refused(&server, &truncated);
    assert!(
        err.starts_with("error: ") && err.contains("re-run `kubectl meshup plan`"),
        "{err}"
    );

    let malformed = dir.path().join("malformed.yaml");
    std::fs::write(
        &malformed,
        "apiVersion: meshup.dev/v1alpha1\nkind: UpgradePlan\nsteps: [ {\n",
    )
    .unwrap();
    let err = apply_refused(&server, &malformed);
    assert!(err.contains("not valid YAML"), "{err}");

    let edited = dir.path().join("edited.yaml");
    let changed = text.replacen("istio=1.22", "istio=1.23", 1);
    let changed = if changed == text {
        text.replacen("1.22", "1.23", 1)
    } else {
        changed
    };
    assert_ne!(changed, text);
    std::fs::write(&edited, changed).unwrap();
    let err = apply_refused(&server, &edited);
    assert!(err.contains("integrity hash mismatch"), "{err}");

    let missing = dir.path().join("nope.yaml");
    let err = apply_refused(&server, &missing);
    assert!(err.contains("nope.yaml"), "{err}");
}

#[test]
fn a_plan_made_for_another_cluster_is_refused_at_apply() {
    // The plan is for the snapshot's cluster; the fake server is another one.
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    let plan = written_plan(dir.path());
    // No context of the plan's name here.
    let err = apply_refused(&server, &plan);
    assert!(
        err.contains("\"prod-eu\" is not in the kubeconfig"),
        "{err}"
    );

    // A context of that name, but another cluster: its API server is not the one the plan recorded
    // (checked before the other facts of the fingerprint, which differ too).
    let kubeconfig = std::fs::read_to_string(server.kubeconfig_path())
        .unwrap()
        .replace("fake-apiserver", "prod-eu");
    let renamed = dir.path().join("kubeconfig");
    std::fs::write(&renamed, kubeconfig).unwrap();
    server.clear_requests();
    let out = run(meshup()
        .args(["apply", "--yes", "--kubeconfig"])
        .arg(&renamed)
        .arg(&plan));
    assert_eq!(out.status.code(), Some(1));
    assert!(server.mutating_requests().is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: context prod-eu now names API server {}, not https://4A5B6C.gr7.eu-west-1.eks.amazonaws.com, the one the plan was made against",
            server.url()
        )) && stderr.contains(&format!(
            "make a new plan for the cluster it names now with `kubectl meshup --kubeconfig {} --context prod-eu plan",
            renamed.display()
        )),
        "names both servers and the replan: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_resealed_plan_with_a_shell_is_refused_by_plan_show_and_apply() {
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    let plan = hostile_plans::gloo_plan();
    let mut doc: Value = serde_json::from_str(&kubectl_meshup::plan::to_json(&plan)).unwrap();
    let run_step = doc["steps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["action"]["type"] == "run")
        .unwrap();
    run_step["action"]["tool"] = Value::String("sh".into());
    run_step["action"]["args"] = serde_json::json!(["-c", "touch /tmp/pwned"]);
    let path = dir.path().join("hostile.json");
    std::fs::write(&path, hostile_plans::resealed(doc)).unwrap();

    let out = run(meshup().args(["plan", "show"]).arg(&path));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("unknown variant `sh`"), "{err}");
    let err = apply_refused(&server, &path);
    assert!(err.contains("unknown variant `sh`"), "{err}");
}

#[test]
fn tool_arguments_reach_the_tool_literally_without_a_shell() {
    use kubectl_meshup::apply::tools;

    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let argv_file = dir.path().join("argv");
    let tool = dir.path().join("helm");
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\n",
            argv_file.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hostile = vec![
        format!("$(touch {})", marker.display()),
        format!("`touch {}`", marker.display()),
        format!("; touch {}", marker.display()),
        format!("&& touch {} #", marker.display()),
        "*".to_string(),
    ];
    let located = tools::locate(
        kubectl_meshup::plan::Tool::Helm,
        Some(dir.path().as_os_str()),
    )
    .expect("the stand-in helm is found on the search path");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(tools::run(
        &located,
        "helm",
        &hostile,
        &[],
        Duration::from_secs(10),
        false,
        &mut |_| {},
    ))
    .expect("the stand-in runs");
    assert!(!marker.exists(), "an argument was run by a shell");
    let argv = std::fs::read_to_string(&argv_file).unwrap();
    assert_eq!(argv.lines().collect::<Vec<_>>(), hostile);
}
