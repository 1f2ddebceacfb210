//! `CheckReport`: what `check` found, as a person and a CI job both read it.

use serde::{Deserialize, Serialize};

use crate::snapshot::API_VERSION;

pub const REPORT_KIND: &str = "CheckReport";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Pass,
    Info,
    Warn,
    Fail,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Pass => "pass",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Fail => "fail",
        }
    }
}

/// One judgement about one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable id, for example `istio.k8s-support` (every id: `check::Rule`); tools may filter on it.
    pub rule: String,
    pub severity: Severity,
    /// The cluster (kube context) it is about.
    pub cluster: String,
    /// What it is about: `istiod revision 1-20`, `node ip-10-0-1-5`, `kmesh`.
    pub subject: String,
    /// What is true and what to do about it, in one or two sentences.
    pub message: String,
    /// Where the rule comes from (the compatibility row's source, or the runbook).
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub info: usize,
    pub warn: usize,
    pub fail: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub api_version: String,
    pub kind: String,
    /// The date end-of-life rules were judged at (`YYYY-MM-DD`).
    pub evaluated_at: String,
    /// The compatibility data the rules used (its date).
    pub compat_data: String,
    /// Where that data came from: `built in`, the `compat update` file, or `--compat FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat_data_from: Option<String>,
    /// The data is old, or a cluster runs a version newer than it knows (each names the update command).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compat_data_warnings: Vec<String>,
    pub clusters: Vec<String>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

impl CheckReport {
    /// Builds the report, ordering findings by cluster, then failures first, then rule and subject.
    pub fn new(
        evaluated_at: String,
        compat_data: String,
        clusters: Vec<String>,
        mut findings: Vec<Finding>,
    ) -> Self {
        findings.sort_by(|a, b| {
            a.cluster
                .cmp(&b.cluster)
                .then(b.severity.cmp(&a.severity))
                .then(a.rule.cmp(&b.rule))
                .then(a.subject.cmp(&b.subject))
        });
        let mut summary = Summary::default();
        for f in &findings {
            match f.severity {
                Severity::Pass => summary.pass += 1,
                Severity::Info => summary.info += 1,
                Severity::Warn => summary.warn += 1,
                Severity::Fail => summary.fail += 1,
            }
        }
        Self {
            api_version: API_VERSION.to_string(),
            kind: REPORT_KIND.to_string(),
            evaluated_at,
            compat_data,
            compat_data_from: None,
            compat_data_warnings: Vec::new(),
            clusters,
            findings,
            summary,
        }
    }

    /// True when any finding blocks an upgrade (exit code 3).
    pub fn has_failures(&self) -> bool {
        self.summary.fail > 0
    }
}
