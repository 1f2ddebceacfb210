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

use fake_apiserver::{FakeApiServer, Fault};
use serde_json::Value;

use crate::support::{fixture, istio_ambient_server, meshup, run, sidecar_pod};

const DATE: &str = "2025-06-01";

/// An Istio 1.22 canary with ambient, three nodes and 1,100 sidecar pods (three pages of pods), so
/// paging and expired continue tokens are exercised.
fn seeded() -> FakeApiServer {
    let server = istio_ambient_server();
    for i in 0..1100 {
        server
            .seed(sidecar_pod("bookinfo", "web", i, "1.22.3"))
            .expect("seed pod");
    }
    server
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
            "../fixtures/plan/gloo-mesh-0.12-two-clusters.yaml"
        ))
        .expect("fixture");
        let request = PlanRequest {
            targets: vec![Target {
                mesh: Mesh::GlooMesh,
                version: Version::parse("1.1").unwrap(),
                flavor: None,
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
        include_str!("../fixtures/snapshots/gloo-mesh-istio-1-9-k8s-1-22.yaml"),
        include_str!("../fixtures/plan/istio-ambient-1.23.yaml"),
        include_str!("../fixtures/plan/kmesh-1.0-dual-engine.yaml"),
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

// ----- bounded reads and secrets (issue 16) -------------------------------------------------------

/// What a run of the binary left: exit code, output, wall time and the child's peak RSS.
struct Measured {
    code: Option<i32>,
    output: Output,
    took: Duration,
    peak_rss_mib: f64,
}

/// Runs `kubectl-meshup ARGS` with `env`, reaping it with `wait4` to read its peak RSS; killed after
/// 120 s so a hang fails the test instead of holding it.
#[allow(
    clippy::zombie_processes,
    reason = "reaped by wait4, which std does not know of"
)]
fn run_measured(args: &[&str], env: &[(&str, &str)]) -> Measured {
    use std::io::Read as _;
    // The child's own peak comes from GNU time: a process this test spawns (vfork + exec) inherits
    // the test process's peak RSS into its ru_maxrss, which would measure the test, not the binary.
    // Without /usr/bin/time, wait4's figure is an upper bound that includes the test's own peak.
    let gnu_time = Path::new("/usr/bin/time");
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let binary = assert_cmd::cargo::cargo_bin("kubectl-meshup");
    let mut cmd = if gnu_time.exists() {
        let mut c = std::process::Command::new(gnu_time);
        c.args(["-f", "%M", "-o"]).arg(rss_file.path()).arg(&binary);
        c
    } else {
        std::process::Command::new(&binary)
    };
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start kubectl-meshup");
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: polling our own child (not reaped before this returns its pid), valid pointers.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break;
        }
        assert_eq!(reaped, 0, "wait4");
        if started.elapsed() > Duration::from_secs(120) {
            // Not reaped yet, so the pid is still this child's.
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    };
    // Both report KiB; GNU time's last line is the figure (a line before it may say the exit status).
    let from_time = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse::<f64>().ok()));
    let peak_rss_mib = from_time.unwrap_or(usage.ru_maxrss as f64) / 1024.0;
    eprintln!(
        "kubectl-meshup {}: exit {code:?} in {:.2}s, peak RSS {peak_rss_mib:.1} MiB\n--- stderr ---\n{}",
        args.join(" "),
        took.as_secs_f64(),
        String::from_utf8_lossy(&output.stderr)
    );
    Measured {
        code,
        output,
        took,
        peak_rss_mib,
    }
}

fn check_args(server: &FakeApiServer) -> Vec<String> {
    vec![
        "check".into(),
        "-o".into(),
        "json".into(),
        "--date".into(),
        DATE.into(),
        "--kubeconfig".into(),
        server.kubeconfig_path().display().to_string(),
    ]
}

/// `check` against `server` with `extra` flags must end with exit 1 in under `within`, in one line
/// that contains every part of `must_contain`.
fn ends_in_one_line(
    server: &FakeApiServer,
    extra: &[&str],
    env: &[(&str, &str)],
    within: Duration,
    must_contain: &[&str],
) -> Measured {
    let mut args = check_args(server);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = run_measured(&args, env);
    assert_eq!(m.code, Some(1));
    assert!(m.output.stdout.is_empty(), "no report after a failed read");
    let err = one_line_error(&m.output);
    for part in must_contain {
        assert!(err.contains(part), "missing {part:?}: {err}");
    }
    assert!(m.took < within, "took {:?}, limit {within:?}", m.took);
    m
}

#[test]
fn a_continue_token_that_repeats_ends_the_list_at_once() {
    let server = seeded();
    let id = server.inject(Fault::repeat_continue().on("/api/v1/pods"));
    ends_in_one_line(
        &server,
        &[],
        &[],
        Duration::from_secs(10),
        &[
            "reading pods in all namespaces in context \"fake-apiserver\"",
            "continue token it had already sent",
        ],
    );
    let pages = server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/pods")
        .count();
    assert_eq!(server.fault_hits(id), pages as u64);
    assert!(pages <= 3, "{pages} requests, not thousands");
}

#[test]
fn a_list_longer_than_the_page_cap_ends_naming_the_variable() {
    // 1,100 pods are three pages; a cap of two pages ends the list.
    let server = seeded();
    ends_in_one_line(
        &server,
        &[],
        &[("KUBECTL_MESHUP_MAX_PAGES", "2")],
        Duration::from_secs(10),
        &[
            "reading pods in all namespaces",
            "did not end after 2 pages",
            "KUBECTL_MESHUP_MAX_PAGES",
        ],
    );
}

#[test]
fn a_trickling_body_ends_at_the_request_timeout() {
    let server = seeded();
    server.inject(Fault::trickle(Duration::from_millis(200)).on("/api/v1/pods"));
    let m = ends_in_one_line(
        &server,
        &["--request-timeout", "2s"],
        &[],
        Duration::from_secs(8),
        &[
            "reading pods in all namespaces",
            "no complete answer within 2s (--request-timeout)",
            "raise --request-timeout",
        ],
    );
    assert!(m.took >= Duration::from_secs(2), "{:?}", m.took);
}

#[test]
fn a_server_that_never_answers_ends_at_the_request_timeout() {
    let server = seeded();
    let id = server.inject(Fault::never_answer().on("/api/v1/pods"));
    // Each of 5 attempts waits 1s, with backoff between them.
    ends_in_one_line(
        &server,
        &["--request-timeout", "1s"],
        &[],
        Duration::from_secs(15),
        &[
            "reading pods in all namespaces",
            "no complete answer within 1s",
        ],
    );
    assert!(server.fault_hits(id) >= 2, "timeouts of reads are retried");
}

#[test]
fn an_endless_list_stops_at_the_size_cap_with_bounded_memory() {
    let server = seeded();
    server.inject(Fault::endless_list().on("/api/v1/pods"));
    let m = ends_in_one_line(
        &server,
        &[],
        &[("KUBECTL_MESHUP_MAX_RESPONSE_MIB", "16")],
        Duration::from_secs(30),
        &[
            "reading pods in all namespaces",
            "larger than 16 MiB",
            "set KUBECTL_MESHUP_MAX_RESPONSE_MIB to raise it",
        ],
    );
    eprintln!(
        "endless list, 16 MiB cap: peak RSS {:.1} MiB",
        m.peak_rss_mib
    );
    assert!(m.peak_rss_mib < 128.0, "{:.1} MiB", m.peak_rss_mib);
    // The default cap (64 MiB).
    let m = ends_in_one_line(
        &server,
        &[],
        &[],
        Duration::from_secs(60),
        &["larger than 64 MiB"],
    );
    eprintln!(
        "endless list, default cap: peak RSS {:.1} MiB",
        m.peak_rss_mib
    );
    assert!(m.peak_rss_mib < 256.0, "{:.1} MiB", m.peak_rss_mib);
}

/// `check` and `snapshot` when pods answer with `fault`: the pods are unread with one line naming what
/// came back, never counted as "no proxies".
fn pods_unread_under(fault: Fault, must_contain: &[&str]) {
    let server = seeded();
    server.inject(fault);
    let (code, verdict, out) = check(&server, &[]);
    assert!(matches!(code, Some(0 | 3)), "{code:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "nothing else on stderr: {stderr}");
    let unread: Vec<&str> = verdict["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "snapshot.unread")
        .filter_map(|f| f["message"].as_str())
        .collect();
    assert_eq!(unread.len(), 1, "{verdict:#}");
    eprintln!("{}", unread[0]);
    assert!(
        unread[0].starts_with("could not read pods in all namespaces (the server answered"),
        "{}",
        unread[0]
    );
    for part in must_contain {
        assert!(unread[0].contains(part), "missing {part:?}: {}", unread[0]);
    }
    assert!(unread[0].contains("check what answers at the server's address"));

    let out = run(meshup()
        .args(["snapshot", "-o", "json", "--kubeconfig"])
        .arg(server.kubeconfig_path()));
    assert_eq!(out.status.code(), Some(0));
    let snapshot: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cluster = &snapshot["clusters"][0];
    assert_eq!(cluster["unread"][0]["what"], "pods in all namespaces");
    assert!(
        cluster["istio"]["proxies"]
            .as_array()
            .is_none_or(|p| p.is_empty()),
        "nothing counted from a page that was not read"
    );
}

#[test]
fn a_200_whose_body_is_a_status_is_unread_not_empty() {
    let status = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"maintenance","reason":"ServiceUnavailable","code":503}"#;
    pods_unread_under(
        Fault::raw(200, "application/json", status).on("/api/v1/pods"),
        &["200 with a `Status` object instead of a list"],
    );
}

#[test]
fn a_redirect_is_unread_naming_where_it_points() {
    pods_unread_under(
        Fault::raw(
            302,
            "text/html",
            "<a href=\"https://sso.example/login\">Found</a>",
        )
        .header("Location", "https://sso.example/login?next=/api/v1/pods")
        .on("/api/v1/pods"),
        &[
            "answered 302 Found to https://sso.example/login?next=/api/v1/pods (text/html)",
            "<a href=",
        ],
    );
}

#[test]
fn an_html_page_is_unread_with_its_first_bytes() {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Proxy login</title></head><body>{}</body></html>",
        "x".repeat(500)
    );
    pods_unread_under(
        Fault::raw(200, "text/html; charset=utf-8", page).on("/api/v1/pods"),
        &[
            "answered 200 OK (text/html; charset=utf-8) instead of JSON",
            "<!DOCTYPE html>\\n<html><head><title>",
            "…",
        ],
    );
}

const URL_PASSWORD: &str = "Pa55w0rd-in-the-URL";

#[test]
fn a_password_in_the_server_url_is_never_printed_or_written() {
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    let with_userinfo = server
        .url()
        .replace("http://", &format!("http://admin:{URL_PASSWORD}@"));
    let config = kubeconfig_file(
        dir.path(),
        &format!("    server: {with_userinfo}"),
        &token_user(),
    );
    let snapshot_file = dir.path().join("snapshot.yaml");
    for verbosity in [None, Some("-vvv")] {
        let out = run(meshup()
            .args(["snapshot", "--out"])
            .arg(&snapshot_file)
            .args(verbosity)
            .arg("--kubeconfig")
            .arg(&config));
        assert_eq!(out.status.code(), Some(0));
        assert_no_secret(&out, &[URL_PASSWORD, TOKEN]);
        let written = std::fs::read_to_string(&snapshot_file).unwrap();
        assert!(!written.contains(URL_PASSWORD), "{written}");
        assert!(
            written.contains(&format!("server: {}", server.url())),
            "{written}"
        );
        let out = run(meshup()
            .args(["check", "--date", DATE])
            .args(verbosity)
            .arg("--kubeconfig")
            .arg(&config));
        assert!(matches!(out.status.code(), Some(0 | 3)));
        assert_no_secret(&out, &[URL_PASSWORD, TOKEN]);
    }
    // Failing: a refused connection and a failing list.
    let refused = tempfile::tempdir().unwrap();
    let refused = kubeconfig_file(
        refused.path(),
        &format!("    server: http://admin:{URL_PASSWORD}@127.0.0.1:1"),
        &token_user(),
    );
    let out = run(meshup().args(["check", "--kubeconfig"]).arg(&refused));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("at http://127.0.0.1:1:"), "{err}");
    assert_no_secret(&out, &[URL_PASSWORD]);
    server.inject(Fault::status(500).on("/api/v1/pods"));
    let out = run(meshup()
        .args(["check", "-vvv", "--kubeconfig"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(1));
    assert_no_secret(&out, &[URL_PASSWORD, TOKEN]);
}

const PROXY_PASSWORD: &str = "pr0xy-Secret-99";

/// An HTTP CONNECT proxy in front of the fake server; records each request's header block.
struct ConnectProxy {
    url: String,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

fn connect_proxy() -> ConnectProxy {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    runtime.spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap_or_default()
                    .to_string();
                log.lock().unwrap().push(head);
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    ConnectProxy {
        url,
        seen,
        _runtime: runtime,
    }
}

#[test]
fn proxy_url_is_used_as_kubectl_uses_it_and_its_password_never_printed() {
    let server = seeded();
    let proxy = connect_proxy();
    let dir = tempfile::tempdir().unwrap();
    let proxy_url = proxy
        .url
        .replace("http://", &format!("http://puser:{PROXY_PASSWORD}@"));
    let config = kubeconfig_file(
        dir.path(),
        &format!("    server: {}\n    proxy-url: {proxy_url}", server.url()),
        &token_user(),
    );
    let out = run(meshup()
        .args(["check", "-vvv", "--date", DATE, "--kubeconfig"])
        .arg(&config));
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "read through the proxy"
    );
    assert_no_secret(&out, &[PROXY_PASSWORD, TOKEN]);
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the proxy was used");
    assert!(
        seen.iter().all(|h| h
            .to_ascii_lowercase()
            .contains("proxy-authorization: basic ")),
        "the proxy's credentials are sent to the proxy: {seen:?}"
    );

    // A proxy that refuses: one line, without the password.
    let config = kubeconfig_file(
        dir.path(),
        &format!(
            "    server: {}\n    proxy-url: http://puser:{PROXY_PASSWORD}@127.0.0.1:1",
            server.url()
        ),
        &token_user(),
    );
    let out = run(meshup().args(["check", "--kubeconfig"]).arg(&config));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains(&format!(
            "at {} through proxy http://127.0.0.1:1:",
            server.url()
        )),
        "names the proxy: {err}"
    );
    assert_no_secret(&out, &[PROXY_PASSWORD]);
    // A scheme kubectl does not support either.
    let config = kubeconfig_file(
        dir.path(),
        &format!(
            "    server: {}\n    proxy-url: ftp://puser:{PROXY_PASSWORD}@127.0.0.1:1",
            server.url()
        ),
        &token_user(),
    );
    let out = run(meshup().args(["check", "--kubeconfig"]).arg(&config));
    assert_eq!(out.status.code(), Some(1));
    one_line_error(&out);
    assert_no_secret(&out, &[PROXY_PASSWORD]);
}

#[test]
fn failure_reasons_are_stored_in_the_journal_redacted() {
    use kubectl_meshup::apply::journal::{Journal, JournalStore, StepRecord, StepState};
    let server = FakeApiServer::start();
    server
        .seed(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}))
        .unwrap();
    let reason = format!(
        "`helm upgrade` exited with exit status: 1: Error: Get \"https://bob:{URL_PASSWORD}@charts.example/index.yaml\": 401 | Authorization: Bearer {TOKEN} | --set db.password={PROXY_PASSWORD}"
    );
    let journal = Journal {
        plan: "p".into(),
        targets: "istio=1.24.6".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        steps: [(
            "s1".to_string(),
            StepRecord {
                state: StepState::Failed,
                started_at: None,
                finished_at: None,
                attempts: 1,
                undo: None,
                restarted_at: None,
                confirmed: None,
                error: Some(reason),
                tool: None,
            },
        )]
        .into(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let opts = kubectl_meshup::client::ConnectionOptions {
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            ..Default::default()
        };
        let targets = kubectl_meshup::client::connect(&opts).await.unwrap();
        let mut store = JournalStore::new(targets[0].client.clone(), "istio-system");
        store.save(&journal).await.unwrap();
    });
    let stored = server
        .get("configmaps", "istio-system", "kubectl-meshup-journal")
        .expect("the journal ConfigMap");
    let text = stored.to_string();
    for secret in [URL_PASSWORD, TOKEN, PROXY_PASSWORD] {
        assert!(!text.contains(secret), "{secret} stored: {text}");
    }
    let kept = stored["data"]["journal.json"].as_str().unwrap();
    eprintln!("{kept}");
    assert!(
        kept.contains("exited with exit status: 1"),
        "the reason is kept: {kept}"
    );
    assert!(
        kept.contains("https://[redacted]@charts.example/index.yaml"),
        "{kept}"
    );
}

#[test]
fn token_files_that_are_a_fifo_or_a_device_are_refused_at_once() {
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("token-fifo");
    let c_path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    for token_file in [fifo.display().to_string(), "/dev/zero".to_string()] {
        let config = kubeconfig_file(
            dir.path(),
            &format!("    server: {}", server.url()),
            &format!("    tokenFile: {token_file}"),
        );
        let m = run_measured(
            &[
                "check",
                "--request-timeout",
                "5s",
                "--kubeconfig",
                &config.display().to_string(),
            ],
            &[],
        );
        assert_eq!(m.code, Some(1));
        let err = one_line_error(&m.output);
        assert_eq!(
            err,
            format!(
                "error: cannot use the credentials of context \"c\": its tokenFile {token_file} is not a regular file (a pipe, a device or a directory); point it at a regular file"
            )
        );
        assert!(m.took < Duration::from_secs(3), "{:?}", m.took);
        assert!(m.peak_rss_mib < 64.0, "{:.1} MiB", m.peak_rss_mib);
    }
    // A token file larger than the cap.
    let big = dir.path().join("token-big");
    std::fs::write(&big, "t".repeat(4096)).unwrap();
    let config = kubeconfig_file(
        dir.path(),
        &format!("    server: {}", server.url()),
        &format!("    tokenFile: {}", big.display()),
    );
    let out = run(meshup()
        .args(["check", "--kubeconfig"])
        .arg(&config)
        .env("KUBECTL_MESHUP_MAX_CREDENTIAL_KIB", "1"));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("is larger than 1 KiB (the limit for a credential file); set KUBECTL_MESHUP_MAX_CREDENTIAL_KIB to raise it"),
        "{err}"
    );
}

#[test]
fn an_exec_plugin_that_never_exits_or_floods_is_stopped() {
    let server = seeded();
    // Never exits: stopped at --request-timeout.
    let dir = tempfile::tempdir().unwrap();
    let config = exec_kubeconfig(dir.path(), &server.url(), "exec sleep 3600");
    let m = run_measured(
        &[
            "check",
            "--request-timeout",
            "2s",
            "--kubeconfig",
            &config.display().to_string(),
        ],
        &[],
    );
    assert_eq!(m.code, Some(1));
    let err = one_line_error(&m.output);
    assert_eq!(
        err,
        "error: getting credentials for context \"c\" stopped: its exec credential plugin did not finish within 2s and was stopped; raise --request-timeout if it needs longer (0 waits without limit)"
    );
    assert!(
        m.took >= Duration::from_secs(2) && m.took < Duration::from_secs(6),
        "{:?}",
        m.took
    );

    // Prints without end: stopped at the cap, memory bounded.
    let dir = tempfile::tempdir().unwrap();
    let config = exec_kubeconfig(
        dir.path(),
        &server.url(),
        "exec yes password=exec-flood-S3CRET",
    );
    let m = run_measured(
        &["check", "--kubeconfig", &config.display().to_string()],
        &[],
    );
    assert_eq!(m.code, Some(1));
    let err = one_line_error(&m.output);
    assert_eq!(
        err,
        "error: getting credentials for context \"c\" stopped: its exec credential plugin printed more than 1 MiB and was stopped; set KUBECTL_MESHUP_MAX_CREDENTIAL_KIB to raise the limit"
    );
    assert_no_secret(&m.output, &["exec-flood-S3CRET"]);
    assert!(m.took < Duration::from_secs(10), "{:?}", m.took);
    eprintln!("exec flood: peak RSS {:.1} MiB", m.peak_rss_mib);
    assert!(m.peak_rss_mib < 64.0, "{:.1} MiB", m.peak_rss_mib);
}

/// A ClusterSnapshot file from the example, with `edit` applied.
fn snapshot_file(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let text =
        std::fs::read_to_string(fixture("snapshots/gloo-mesh-istio-1-9-k8s-1-22.yaml")).unwrap();
    let mut doc: Value = serde_saphyr::from_str(&text).unwrap();
    edit(&mut doc);
    let path = dir.join("snapshot.json");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    path
}

#[test]
fn snapshot_and_plan_files_are_read_with_a_size_limit_and_only_when_regular() {
    let dir = tempfile::tempdir().unwrap();
    // Over the limit (1 MiB here): refused before parsing.
    let big = snapshot_file(dir.path(), |doc| {
        doc["padding"] = Value::String("x".repeat(2 * 1024 * 1024));
    });
    let out = run(meshup()
        .args(["check", "--snapshot"])
        .arg(&big)
        .env("KUBECTL_MESHUP_MAX_FILE_MIB", "1"));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("is larger than 1 MiB (the limit for this file); set KUBECTL_MESHUP_MAX_FILE_MIB to raise it"),
        "{err}"
    );
    let plan = written_plan(dir.path());
    let out = run(meshup()
        .args(["plan", "show"])
        .arg(&plan)
        .env("KUBECTL_MESHUP_MAX_FILE_MIB", "1"));
    assert_eq!(out.status.code(), Some(0), "a real plan is far below 1 MiB");
    let padded = dir.path().join("padded-plan.yaml");
    let mut text = std::fs::read_to_string(&plan).unwrap();
    text.push_str(&format!("# {}\n", "x".repeat(2 * 1024 * 1024)));
    std::fs::write(&padded, text).unwrap();
    let out = run(meshup()
        .args(["plan", "show"])
        .arg(&padded)
        .env("KUBECTL_MESHUP_MAX_FILE_MIB", "1"));
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.starts_with("error: cannot read plan file")
            && err.contains("set KUBECTL_MESHUP_MAX_FILE_MIB to raise it"),
        "{err}"
    );

    // A FIFO and a device: refused at once, never read.
    let fifo = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    for special in [fifo.display().to_string(), "/dev/zero".to_string()] {
        for args in [
            vec!["check", "--snapshot", &special],
            vec!["plan", "show", &special],
        ] {
            let m = run_measured(&args, &[]);
            assert_eq!(m.code, Some(1));
            let err = one_line_error(&m.output);
            assert!(err.contains("is not a regular file"), "{err}");
            assert!(m.took < Duration::from_secs(3), "{:?}", m.took);
        }
    }
}

#[test]
fn a_snapshot_with_duplicate_cluster_names_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_file(dir.path(), |doc| {
        let clusters = doc["clusters"].as_array_mut().unwrap();
        let first = clusters[0].clone();
        clusters.push(first);
    });
    let out = run(meshup()
        .args(["check", "--date", DATE, "--snapshot"])
        .arg(&path));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = one_line_error(&out);
    assert!(
        err.contains("appears more than once; each cluster in a snapshot must have its own name"),
        "{err}"
    );
}

/// A stand-in `helm` running `script`, in its own directory.
fn stand_in_helm(dir: &Path, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tool = dir.join("helm");
    std::fs::write(&tool, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    tools::locate(kubectl_meshup::plan::Tool::Helm, Some(dir.as_os_str()))
        .expect("the stand-in helm is found on the search path")
}

use kubectl_meshup::apply::tools;

#[test]
fn tool_output_is_bounded_when_captured_and_when_streamed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Captured stdout (gates read `istioctl version`, `helm show crds`): stopped at the cap.
    let flood = stand_in_helm(dir.path(), "exec yes 'apiVersion: v1'");
    let started = Instant::now();
    let err = rt
        .block_on(tools::run(
            &flood,
            "helm",
            &["show".into(), "crds".into()],
            &[],
            Duration::from_secs(60),
            true,
            &mut |_| {},
        ))
        .err()
        .expect("a tool that never stops printing is stopped");
    eprintln!("{err}");
    assert_eq!(
        err.to_string(),
        "`helm show crds` printed more than 16 MiB on stdout and was stopped; set KUBECTL_MESHUP_MAX_TOOL_OUTPUT_MIB to raise the limit"
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    // Streamed output without newlines: lines are cut at 64 KiB; the stored tail at 1,000 characters.
    let one_long_line = stand_in_helm(
        dir.path(),
        "head -c 50000000 /dev/zero | tr '\\000' x; echo; echo 'Error: password=tool-S3CRET'; exit 1",
    );
    let mut longest = 0;
    let mut lines = 0;
    let err = rt
        .block_on(tools::run(
            &one_long_line,
            "helm",
            &["upgrade".into()],
            &[],
            Duration::from_secs(60),
            false,
            &mut |l| {
                lines += 1;
                longest = longest.max(l.len());
            },
        ))
        .err()
        .expect("the stand-in fails");
    eprintln!("{lines} lines streamed, the longest {longest} bytes");
    assert!(longest <= 64 * 1024 + '…'.len_utf8(), "{longest}");
    assert_eq!(lines, 2);
    match &err {
        tools::ToolError::Failed { tail, .. } => {
            assert_eq!(tail.len(), 2, "{tail:?}");
            assert_eq!(tail[0].chars().count(), 1001, "1,000 characters and …");
            assert_eq!(tail[1], "Error: password=tool-S3CRET");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn apply_gates_page_with_the_same_bounds() {
    let server = seeded();
    let id = server.inject(Fault::repeat_continue().on("/api/v1/pods"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let opts = kubectl_meshup::client::ConnectionOptions {
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            ..Default::default()
        };
        let targets = kubectl_meshup::client::connect(&opts).await.unwrap();
        kubectl_meshup::apply::gates::revision_unused(&targets[0].client, "1-22").await
    });
    let err = result.expect_err("a list that never ends fails the gate");
    let line = kubectl_meshup::client::brief(&err);
    eprintln!("{line}");
    assert!(
        line.contains("continue token it had already sent"),
        "{line}"
    );
    assert_eq!(server.fault_hits(id), 2, "two pages, not thousands");
}

#[test]
fn a_server_that_redirects_everything_is_named_not_misread_as_json() {
    let server = seeded();
    server.inject(
        Fault::raw(302, "text/html", "<html>Moved</html>")
            .header("Location", "https://sso.example/login")
            .on("*"),
    );
    let (code, _, out) = check(&server, &[]);
    assert_eq!(code, Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("the server answered 302 Found to https://sso.example/login (text/html) instead of JSON: \"<html>Moved</html>\"")
            && err.contains("check the server address in the kubeconfig"),
        "{err}"
    );
    assert!(!err.to_ascii_lowercase().contains("parse"), "{err}");
}
