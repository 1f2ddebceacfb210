//! A check as Prometheus metrics: `check -o openmetrics` (for node-exporter's textfile collector) and
//! `check --push-metrics URL` (to a Pushgateway). The text is encoded by `prometheus-client`
//! ([`encode`], pure); [`push`] is the IO edge.
//!
//! Every series is a gauge, so the text is also valid Prometheus text format 0.0.4 (what the
//! Pushgateway parses; OpenMetrics' `# EOF` is a comment there):
//!
//! - `meshup_findings{cluster,severity,rule}`: how many findings of that rule and severity;
//! - `meshup_check_findings{cluster,severity}`: per severity, every severity present (0 included), so
//!   `meshup_check_findings{severity="fail"} > 0` alerts when a failure appears;
//! - `meshup_mesh_version_info{cluster,mesh,revision,version}` 1, and
//!   `meshup_kubernetes_version_info{cluster,version}` 1: the versions, as info metrics are written;
//! - `meshup_compat_data_info{date}` 1: the compatibility data the rules used;
//! - `meshup_last_success_timestamp_seconds`: when the check last ran to the end (a check that cannot
//!   read its cluster pushes nothing), so `time() - meshup_last_success_timestamp_seconds > 86400`
//!   alerts on "no successful check for a day".

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode as encode_text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::report::{CheckReport, Severity};
use crate::snapshot::ClusterSnapshot;

type Labels = Vec<(String, String)>;

/// The content type the Pushgateway is sent (Prometheus text 0.0.4, which the encoded text also is).
const PUSH_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where a URL without a grouping key pushes to: `/metrics/job/kubectl-meshup`.
pub const DEFAULT_JOB_PATH: &str = "/metrics/job/kubectl-meshup";

/// What is kept of a Pushgateway's error answer, for the message.
const MAX_ANSWER_BYTES: u64 = 4 * 1024;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The metrics of a check, in OpenMetrics text. `unix_seconds`: when the check ended.
pub fn encode(
    report: &CheckReport,
    snapshot: &ClusterSnapshot,
    unix_seconds: f64,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("meshup");

    let findings = Family::<Labels, Gauge>::default();
    let mut counts: BTreeMap<(&str, Severity, &str), i64> = BTreeMap::new();
    for f in &report.findings {
        *counts
            .entry((f.cluster.as_str(), f.severity, f.rule.as_str()))
            .or_default() += 1;
    }
    for ((cluster, severity, rule), n) in &counts {
        findings
            .get_or_create(&labels(&[
                ("cluster", cluster),
                ("severity", severity.as_str()),
                ("rule", rule),
            ]))
            .set(*n);
    }
    registry.register(
        "findings",
        "Findings of the last check, by cluster, severity and rule",
        findings,
    );

    let per_severity = Family::<Labels, Gauge>::default();
    for cluster in &report.clusters {
        for severity in [
            Severity::Fail,
            Severity::Warn,
            Severity::Info,
            Severity::Pass,
        ] {
            let n = counts
                .iter()
                .filter(|((c, s, _), _)| c == cluster && *s == severity)
                .map(|(_, n)| n)
                .sum();
            per_severity
                .get_or_create(&labels(&[
                    ("cluster", cluster),
                    ("severity", severity.as_str()),
                ]))
                .set(n);
        }
    }
    registry.register(
        "check_findings",
        "Findings of the last check, by cluster and severity (every severity, 0 included)",
        per_severity,
    );

    let meshes = Family::<Labels, Gauge>::default();
    let kubernetes = Family::<Labels, Gauge>::default();
    for cluster in &snapshot.clusters {
        for m in cluster.mesh_versions() {
            meshes
                .get_or_create(&labels(&[
                    ("cluster", &cluster.name),
                    ("mesh", m.mesh),
                    ("revision", &m.revision),
                    ("version", &m.version),
                ]))
                .set(1);
        }
        kubernetes
            .get_or_create(&labels(&[
                ("cluster", &cluster.name),
                ("version", &cluster.kubernetes.git_version),
            ]))
            .set(1);
    }
    registry.register(
        "mesh_version_info",
        "Installed mesh versions (one per istiod revision)",
        meshes,
    );
    registry.register(
        "kubernetes_version_info",
        "The API server's version",
        kubernetes,
    );

    let compat = Family::<Labels, Gauge>::default();
    compat
        .get_or_create(&labels(&[("date", &report.compat_data)]))
        .set(1);
    registry.register(
        "compat_data_info",
        "The compatibility data the rules used",
        compat,
    );

    let last = Gauge::<f64, AtomicU64>::default();
    last.set(unix_seconds);
    registry.register(
        "last_success_timestamp_seconds",
        "When the last check ran to the end (Unix time)",
        last,
    );

    let mut text = String::new();
    encode_text(&mut text, &registry)?;
    Ok(text)
}

/// The URL to PUT to: the one given when it names a grouping key (`…/metrics/job/NAME[/LABEL/VALUE…]`),
/// else the Pushgateway's base URL with [`DEFAULT_JOB_PATH`].
pub fn push_url(given: &str) -> Result<http::Uri, String> {
    let bad = |why: &str| {
        format!(
            "invalid Pushgateway URL `{}`: {why}; pass http(s)://HOST:PORT, optionally with /metrics/job/NAME",
            crate::redact::url(given)
        )
    };
    let uri: http::Uri = given.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("use http or https")),
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("it has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad(
            "credentials in the URL are not sent; put the Pushgateway behind a proxy that adds them",
        ));
    }
    if uri.query().is_some() {
        return Err(bad("it has a query"));
    }
    let path = uri.path().trim_end_matches('/');
    let path = if path.contains("/metrics/job/") {
        path.to_string()
    } else {
        format!("{path}{DEFAULT_JOB_PATH}")
    };
    http::Uri::builder()
        .scheme(uri.scheme_str().unwrap_or("http"))
        .authority(authority.as_str())
        .path_and_query(path)
        .build()
        .map_err(|_| bad("not a URL"))
}

/// Parses `--push-metrics`: a URL [`push_url`] accepts.
pub fn parse_push_url(text: &str) -> Result<String, String> {
    push_url(text).map(|_| text.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot push metrics to the Pushgateway at {url}: {reason}; check --push-metrics and that the Pushgateway is reachable"
)]
pub struct PushError {
    pub url: String,
    pub reason: String,
}

/// PUTs `text` to the Pushgateway (replacing the group's metrics, so findings that went away go
/// too), within `timeout`.
pub async fn push(given: &str, text: &str, timeout: Duration) -> Result<(), PushError> {
    let fail = |reason: String| PushError {
        url: crate::redact::url(given),
        reason,
    };
    let url = push_url(given).map_err(fail)?;
    let client = crate::web::client(Some(timeout)).map_err(|e| fail(root_cause(&e)))?;
    let failed = |e: reqwest::Error| {
        fail(if e.is_timeout() {
            format!("no answer in {}", crate::limits::duration(timeout))
        } else {
            root_cause(&e)
        })
    };
    let mut answer = client
        .put(url.to_string())
        .header(http::header::CONTENT_TYPE, PUSH_CONTENT_TYPE)
        .body(text.to_string())
        .send()
        .await
        .map_err(failed)?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let (body, _) = crate::web::read_at_most(&mut answer, MAX_ANSWER_BYTES)
        .await
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&body);
    let said = said.lines().next().unwrap_or_default().trim();
    Err(fail(format!(
        "it answered {status}{}",
        if said.is_empty() {
            String::new()
        } else {
            format!(": {}", crate::text::escape_control(said))
        }
    )))
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Finding;

    fn finding(severity: Severity, rule: &str) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            cluster: "prod".into(),
            subject: "s".into(),
            message: "m".into(),
            source: "src".into(),
        }
    }

    #[test]
    fn findings_count_per_rule_and_severity_and_every_severity_is_present() {
        let report = CheckReport::new(
            "2026-12-03".into(),
            "2026-11-01".into(),
            vec!["prod".into()],
            vec![
                finding(Severity::Fail, "istio.k8s-support"),
                finding(Severity::Fail, "istio.k8s-support"),
                finding(Severity::Warn, "istio.eol"),
            ],
        );
        let text = encode(&report, &ClusterSnapshot::new(vec![]), 1_764_740_000.0).expect("text");
        for line in [
            "meshup_findings{cluster=\"prod\",severity=\"fail\",rule=\"istio.k8s-support\"} 2",
            "meshup_findings{cluster=\"prod\",severity=\"warn\",rule=\"istio.eol\"} 1",
            "meshup_check_findings{cluster=\"prod\",severity=\"fail\"} 2",
            "meshup_check_findings{cluster=\"prod\",severity=\"info\"} 0",
            "meshup_compat_data_info{date=\"2026-11-01\"} 1",
            "meshup_last_success_timestamp_seconds 1764740000.0",
            "# TYPE meshup_findings gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_url_without_a_grouping_key_pushes_to_the_default_job() {
        assert_eq!(
            push_url("http://127.0.0.1:9091").unwrap().to_string(),
            "http://127.0.0.1:9091/metrics/job/kubectl-meshup"
        );
        assert_eq!(
            push_url("https://pgw.example/metrics/job/meshup/cluster/prod-eu/")
                .unwrap()
                .to_string(),
            "https://pgw.example/metrics/job/meshup/cluster/prod-eu"
        );
        for bad in [
            "ftp://x",
            "pgw:9091",
            "http://u:p@pgw:9091",
            "http://pgw/?a=b",
        ] {
            let err = push_url(bad).expect_err(bad);
            assert!(!err.contains("u:p"), "{err}");
        }
    }
}
