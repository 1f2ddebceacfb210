//! `check --publish-configmap`: the latest check of a cluster, kept in that cluster as the ConfigMap
//! [`NAME`] in the tool's namespace (the context's, or the pod's in-cluster), for `kubectl get` and
//! for `kubectl meshup fleet`, which reads it back with one GET.
//!
//! What the ConfigMap holds ([`contents`], pure): `report.json` (the cluster's `CheckReport`),
//! `snapshot.json` (the facts it was judged on, so the fleet view can plan a target from them without
//! reading the cluster again), the summary as labels (`kubectl get cm -L meshup.dev/fail`) and the
//! times as annotations. A ConfigMap holds at most 1 MiB: above [`MAX_DATA_BYTES`] the snapshot is
//! left out first, then pass and info findings, then the last findings; the summary keeps counting
//! everything and an annotation says what was left out.
//!
//! Written with optimistic concurrency ([`publish`]): read, then create or replace the version read;
//! a conflict (another writer came between) is retried by reading again.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::client::ConnectedCluster;
use crate::report::{CheckReport, Severity};
use crate::snapshot::ClusterSnapshot;

/// The ConfigMap's name (beside apply's `kubectl-meshup-journal`).
pub const NAME: &str = "kubectl-meshup-report";
pub const REPORT_KEY: &str = "report.json";
pub const SNAPSHOT_KEY: &str = "snapshot.json";

/// Labels, so `kubectl get configmap -L …` shows the summary (values are counts or a word).
pub const RESULT_LABEL: &str = "meshup.dev/result";
pub const FAIL_LABEL: &str = "meshup.dev/fail";
pub const WARN_LABEL: &str = "meshup.dev/warn";
/// When the check ran (RFC 3339, UTC).
pub const CHECKED_AT: &str = "meshup.dev/checked-at";
/// The date of the compatibility data the rules used.
pub const COMPAT_DATA: &str = "meshup.dev/compat-data";
/// The date end-of-life rules were judged at.
pub const EVALUATED_AT: &str = "meshup.dev/evaluated-at";
/// `2 fail, 1 warn, 0 info, 14 pass`.
pub const SUMMARY: &str = "meshup.dev/summary";
/// What was left out to stay under the size limit, when anything was.
pub const OMITTED: &str = "meshup.dev/omitted";

/// The data budget: a ConfigMap is capped at 1 MiB, object metadata included.
pub const MAX_DATA_BYTES: usize = 900 * 1024;

/// How many times a conflicting write is retried (re-read, then written again).
const MAX_ATTEMPTS: usize = 5;

/// What a published report ConfigMap holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
}

/// The report and snapshot of one cluster (`name`) out of a check of several.
pub fn for_cluster(
    report: &CheckReport,
    snapshot: &ClusterSnapshot,
    name: &str,
) -> (CheckReport, ClusterSnapshot) {
    let findings = report
        .findings
        .iter()
        .filter(|f| f.cluster == name)
        .cloned()
        .collect();
    let mut one = CheckReport::new(
        report.evaluated_at.clone(),
        report.compat_data.clone(),
        vec![name.to_string()],
        findings,
    );
    // Which data judged it, and what was said of that data, go with each cluster's report.
    one.compat_data_from = report.compat_data_from.clone();
    one.compat_data_warnings = report.compat_data_warnings.clone();
    let mut snap = ClusterSnapshot::new(
        snapshot
            .clusters
            .iter()
            .filter(|c| c.name == name)
            .cloned()
            .collect(),
    );
    snap.observed_at = snapshot.observed_at.clone();
    (one, snap)
}

/// The ConfigMap's labels, annotations and data for one cluster's report, within [`MAX_DATA_BYTES`]
/// (`max_bytes`, a parameter for tests).
pub fn contents(
    report: &CheckReport,
    snapshot: &ClusterSnapshot,
    checked_at: &str,
    max_bytes: usize,
) -> Result<Contents, serde_json::Error> {
    let s = &report.summary;
    let result = if s.fail > 0 {
        "fail"
    } else if s.warn > 0 {
        "warn"
    } else {
        "pass"
    };
    let labels = BTreeMap::from([
        (
            crate::apply::journal::MANAGED_BY_LABEL.to_string(),
            crate::apply::journal::MANAGED_BY.to_string(),
        ),
        (RESULT_LABEL.to_string(), result.to_string()),
        (FAIL_LABEL.to_string(), s.fail.to_string()),
        (WARN_LABEL.to_string(), s.warn.to_string()),
    ]);
    let mut annotations = BTreeMap::from([
        (CHECKED_AT.to_string(), checked_at.to_string()),
        (COMPAT_DATA.to_string(), report.compat_data.clone()),
        (EVALUATED_AT.to_string(), report.evaluated_at.clone()),
        (
            SUMMARY.to_string(),
            format!(
                "{} fail, {} warn, {} info, {} pass",
                s.fail, s.warn, s.info, s.pass
            ),
        ),
    ]);
    let mut omitted = Vec::new();
    let mut report_text = serde_json::to_string(report)?;
    let snapshot_text = serde_json::to_string(snapshot)?;
    let mut data = BTreeMap::new();
    if report_text.len() + snapshot_text.len() <= max_bytes {
        data.insert(SNAPSHOT_KEY.to_string(), snapshot_text);
    } else {
        omitted.push("the snapshot".to_string());
    }
    if report_text.len() > max_bytes {
        let mut trimmed = report.clone();
        let before = trimmed.findings.len();
        trimmed.findings.retain(|f| f.severity >= Severity::Warn);
        let mut text = serde_json::to_string(&trimmed)?;
        // Each finding costs its JSON and a comma; drop from the end (the order is failures first).
        let mut excess = text.len().saturating_sub(max_bytes);
        while excess > 0 {
            let Some(last) = trimmed.findings.pop() else {
                break;
            };
            excess = excess.saturating_sub(serde_json::to_string(&last)?.len() + 1);
        }
        text = serde_json::to_string(&trimmed)?;
        omitted.push(format!(
            "{} of {before} findings (pass and info first)",
            before - trimmed.findings.len()
        ));
        report_text = text;
    }
    data.insert(REPORT_KEY.to_string(), report_text);
    if !omitted.is_empty() {
        annotations.insert(
            OMITTED.to_string(),
            format!(
                "{} left out to stay under the ConfigMap size limit; the summary counts every finding",
                omitted.join(" and ")
            ),
        );
    }
    Ok(Contents {
        labels,
        annotations,
        data,
    })
}

/// A report read back from its ConfigMap.
#[derive(Debug, Clone)]
pub struct Published {
    pub report: CheckReport,
    /// Absent when it was left out for size (or written by a tool that did not keep it).
    pub snapshot: Option<ClusterSnapshot>,
    /// When the check ran, as written (RFC 3339).
    pub checked_at: Option<String>,
}

/// Reads a report ConfigMap's content; the reason when it holds none that parses.
pub fn read(cm: &ConfigMap) -> Result<Published, String> {
    let data = cm.data.as_ref();
    let text = data
        .and_then(|d| d.get(REPORT_KEY))
        .ok_or_else(|| format!("it has no `{REPORT_KEY}` key"))?;
    let report: CheckReport = serde_json::from_str(text)
        .map_err(|e| format!("its `{REPORT_KEY}` does not parse: {e}"))?;
    let snapshot = match data.and_then(|d| d.get(SNAPSHOT_KEY)) {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| format!("its `{SNAPSHOT_KEY}` does not parse: {e}"))?,
        ),
        None => None,
    };
    let checked_at = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHECKED_AT))
        .cloned();
    Ok(Published {
        report,
        snapshot,
        checked_at,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "cannot publish the report: writing ConfigMap {namespace}/{NAME} in context \"{context}\" is forbidden (403): {message}; grant get, create and update on configmaps in namespace {namespace} (see deploy/report-role.yaml)"
    )]
    Forbidden {
        context: String,
        namespace: String,
        message: String,
    },
    #[error(
        "cannot publish the report: namespace {namespace} does not exist in context \"{context}\"; create it (`kubectl apply -k deploy/` does) or pass -n NAMESPACE"
    )]
    NoNamespace { context: String, namespace: String },
    #[error(
        "cannot publish the report: ConfigMap {namespace}/{NAME} in context \"{context}\" changed under every one of {MAX_ATTEMPTS} writes; another writer keeps updating it: run again"
    )]
    Conflict { context: String, namespace: String },
    #[error(
        "cannot publish the report to ConfigMap {namespace}/{NAME} in context \"{context}\" at {server}: {reason}; retry, or run with -v for details"
    )]
    Api {
        context: String,
        server: String,
        namespace: String,
        reason: String,
    },
    #[error("cannot publish the report: it does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Writes `contents` to the report ConfigMap in the target's namespace; returns the namespace.
pub async fn publish(
    target: &ConnectedCluster,
    contents: &Contents,
) -> Result<String, PublishError> {
    let namespace = target.client.default_namespace().to_string();
    let api: Api<ConfigMap> = Api::namespaced(target.client.clone(), &namespace);
    let fail = |e: kube::Error| {
        if matches!(&e, kube::Error::Api(s) if s.code == 404) {
            // The only 404 a create can get: the namespace is not there.
            PublishError::NoNamespace {
                context: target.context.clone(),
                namespace: namespace.clone(),
            }
        } else if crate::client::is_forbidden(&e) {
            let message = match &e {
                kube::Error::Api(s) => s.message.clone(),
                _ => String::new(),
            };
            PublishError::Forbidden {
                context: target.context.clone(),
                namespace: namespace.clone(),
                message,
            }
        } else {
            PublishError::Api {
                context: target.context.clone(),
                server: target.address(),
                namespace: namespace.clone(),
                reason: crate::client::brief(&e),
            }
        }
    };
    let conflict = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 409);
    for attempt in 1..=MAX_ATTEMPTS {
        let current = api.get_opt(NAME).await.map_err(fail)?;
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(NAME.to_string()),
                namespace: Some(namespace.clone()),
                labels: Some(contents.labels.clone()),
                annotations: Some(contents.annotations.clone()),
                ..ObjectMeta::default()
            },
            data: Some(contents.data.clone()),
            ..ConfigMap::default()
        };
        let written = match current {
            Some(found) => {
                // Labels and annotations others put on it stay; ours are replaced.
                let mut labels = found.metadata.labels.unwrap_or_default();
                labels.extend(contents.labels.clone());
                let mut annotations = found.metadata.annotations.unwrap_or_default();
                annotations.remove(OMITTED);
                annotations.extend(contents.annotations.clone());
                cm.metadata.labels = Some(labels);
                cm.metadata.annotations = Some(annotations);
                cm.metadata.resource_version = found.metadata.resource_version;
                api.replace(NAME, &PostParams::default(), &cm).await
            }
            None => api.create(&PostParams::default(), &cm).await,
        };
        match written {
            Ok(_) => return Ok(namespace),
            // 409: replaced or created by someone else since the read; read again.
            Err(e) if conflict(&e) => {
                tracing::info!(
                    context = %target.context,
                    attempt,
                    "report ConfigMap changed since it was read; reading it again"
                );
            }
            Err(e) => return Err(fail(e)),
        }
    }
    Err(PublishError::Conflict {
        context: target.context.clone(),
        namespace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Finding;

    fn finding(severity: Severity, n: usize) -> Finding {
        Finding {
            rule: "istio.k8s-support".into(),
            severity,
            cluster: "prod".into(),
            subject: format!("istiod revision {n}"),
            message: "x".repeat(200),
            source: "s".into(),
        }
    }

    fn report(findings: Vec<Finding>) -> CheckReport {
        CheckReport::new(
            "2026-12-03".into(),
            "2026-11-01".into(),
            vec!["prod".into()],
            findings,
        )
    }

    #[test]
    fn the_summary_goes_into_labels_and_the_times_into_annotations() {
        let r = report(vec![
            finding(Severity::Fail, 1),
            finding(Severity::Warn, 2),
            finding(Severity::Pass, 3),
        ]);
        let c = contents(
            &r,
            &ClusterSnapshot::new(vec![]),
            "2026-12-03T05:17:00Z",
            MAX_DATA_BYTES,
        )
        .expect("contents");
        assert_eq!(c.labels[RESULT_LABEL], "fail");
        assert_eq!(c.labels[FAIL_LABEL], "1");
        assert_eq!(c.labels[WARN_LABEL], "1");
        assert_eq!(c.annotations[CHECKED_AT], "2026-12-03T05:17:00Z");
        assert_eq!(c.annotations[COMPAT_DATA], "2026-11-01");
        assert_eq!(c.annotations[SUMMARY], "1 fail, 1 warn, 0 info, 1 pass");
        assert!(!c.annotations.contains_key(OMITTED));
        let back: CheckReport = serde_json::from_str(&c.data[REPORT_KEY]).expect("parses");
        assert_eq!(back, r);
        assert!(c.data.contains_key(SNAPSHOT_KEY));
    }

    #[test]
    fn above_the_size_limit_the_snapshot_then_pass_findings_then_the_last_ones_go() {
        let mut findings: Vec<Finding> = (0..40).map(|n| finding(Severity::Pass, n)).collect();
        findings.extend((0..20).map(|n| finding(Severity::Fail, 100 + n)));
        let r = report(findings);
        let limit = 3_000;
        let c = contents(&r, &ClusterSnapshot::new(vec![]), "t", limit).expect("contents");
        assert!(!c.data.contains_key(SNAPSHOT_KEY));
        let text = &c.data[REPORT_KEY];
        assert!(text.len() <= limit, "{} > {limit}", text.len());
        let back: CheckReport = serde_json::from_str(text).expect("parses");
        assert!(!back.findings.is_empty());
        assert!(back.findings.iter().all(|f| f.severity == Severity::Fail));
        assert_eq!(back.summary.fail, 20, "the summary still counts everything");
        assert_eq!(back.summary.pass, 40);
        let omitted = &c.annotations[OMITTED];
        assert!(
            omitted.starts_with("the snapshot and ") && omitted.contains("of 60 findings"),
            "{omitted}"
        );
    }
}
