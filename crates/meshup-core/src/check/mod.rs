//! `check`: judges a snapshot against the compatibility data. Pure: no IO, no clock, no environment;
//! the evaluation date for end-of-life rules is an input.
//!
//! Every finding carries a stable rule id. Tools may filter on these ids; they do not change meaning
//! between releases. The numbers each rule uses come from the compatibility data (`data/compat.json`
//! or `--compat FILE`), and each finding's `source` is the data row or rule it was judged by. The
//! table below is the registry [`rules::Rule`], row for row (a test holds them together).
//!
//! | rule id | severities | what it checks | source |
//! | --- | --- | --- | --- |
//! | `snapshot.unread` | warn | a fact observe could not read (forbidden, failed), and what it leaves unjudged | the snapshot |
//! | `snapshot.no-mesh` | info | the cluster runs no Istio, Gloo Mesh or Kmesh, so only the snapshot was read | the snapshot |
//! | `istio.version-read` | warn | istiod's version could be read from neither image tag nor chart labels | the snapshot |
//! | `istio.version-known` | warn | the istiod minor has a row in the data (else: newer than this build knows) | the data's date |
//! | `istio.k8s-support` | pass, warn, fail | Kubernetes minor in the Istio row's supported list (warn: only "tested") | Istio release row |
//! | `istio.eol` | pass, info, warn | Istio end of life as of the evaluation date (info: within 30 days) | Istio release row |
//! | `istio.proxy-ahead` | info, fail | a proxy newer than its control plane (fail on a newer minor, info on a newer patch) | `dataPlaneMaxLagMinors` |
//! | `istio.data-plane-skew` | pass, info, fail | proxies at most `dataPlaneMaxLagMinors` behind their control plane | `dataPlaneMaxLagMinors` |
//! | `istio.proxy-version-read` | warn | proxies whose version could not be read | the snapshot |
//! | `istio.proxy-control-plane` | warn | proxies whose revision matches no istiod | the snapshot |
//! | `istio.replicas-ready` | warn, fail | istiod (every revision), the gateways, ztunnel and istio-cni run: fail at 0 ready or 0 desired, warn when fewer ready than desired | the snapshot |
//! | `istio.ambient-components-skew` | pass, fail | ztunnel / istio-cni at most `ambientComponentsMaxLagMinors` behind, never ahead | `ambientComponentsMaxLagMinors` |
//! | `istio.ambient-ga` | pass, warn | ambient mode on an Istio older than `ambientGa` | `ambientGa` |
//! | `istio.flavor-mixed` | pass, info, warn, fail | DaoCloud `-mspider` builds mixed with other builds in one cluster | mspider `noMixedUpgrade` |
//! | `gloo-mesh.version-read` | warn | a Gloo Mesh component whose version could not be read | the snapshot |
//! | `gloo-mesh.version-known` | warn | the Gloo Mesh minor has a row in the data | the data's date |
//! | `gloo-mesh.k8s-support` | pass, warn, fail | Kubernetes in the Gloo Mesh row (list or minimum), and the installed Istio supports it (the row's footnote) | Gloo Mesh release row |
//! | `gloo-mesh.istio-support` | pass, fail | every Istio revision (local, or in a registered remote cluster) in the Gloo Mesh row | Gloo Mesh release row |
//! | `gloo-mesh.replicas-ready` | warn, fail | `discovery`, `networking` and the agent run: fail at 0 ready or 0 desired, warn when fewer ready than desired | the snapshot |
//! | `gloo-mesh.remote-skew` | pass, warn, fail | a remote cluster's agent at most `remoteMaxLagMinors` behind the management plane, never ahead | `remoteMaxLagMinors` |
//! | `gloo-mesh.remote-unobserved` | info, warn | a registered cluster absent from the snapshot, or present without an agent | the snapshot |
//! | `kmesh.version-read` | warn | the Kmesh DaemonSet's version could not be read | the snapshot |
//! | `kmesh.version-known` | warn | the Kmesh version and mode have a row in the data | the data's date |
//! | `kmesh.mode-known` | warn | the Kmesh mode is one this build knows | the snapshot |
//! | `kmesh.replicas-ready` | warn, fail | the Kmesh DaemonSet runs: fail at 0 ready or 0 desired, warn when fewer ready than desired | the snapshot |
//! | `kmesh.kernel` | pass, info, warn, fail | every Linux node's kernel at least `kernelMin` (info: Windows nodes skipped; warn: unreadable) | `kernelMin` |
//! | `kmesh.istio-support` | pass, warn, fail | every istiod minor in the Kmesh row (warn: Kernel-Native below the row, "theoretically compatible") | Kmesh release row |
//! | `kmesh.k8s-support` | pass, fail | the Kubernetes minor in the Kmesh row | Kmesh release row |
//! | `kmesh.dual-engine-ambient` | pass, fail | Dual-Engine has an istiod with `PILOT_ENABLE_AMBIENT` at `dualEngineMinIstio` or newer | `dualEngineMinIstio` |
//! | `kmesh.kernel-native-l7` | pass, warn | Kernel-Native L7 on an OS image outside `kernelNativeL7NativeOs` needs kernel patches | `kernelNativeL7NativeOs` |

#[cfg(test)]
mod examples_tests;
mod gloo_mesh;
mod istio;
mod kmesh;
pub mod render;
mod replicas;
pub mod rules;
#[cfg(test)]
pub(crate) mod testkit;

pub use render::render_table;

pub use rules::Rule;

use crate::compat::CompatData;
use crate::report::{CheckReport, Finding, Severity};
use crate::snapshot::{Cluster, ClusterSnapshot, Unread};
use crate::version::Minor;

/// Judges every cluster in `snapshot`, and the relations between them, as of `today` (`YYYY-MM-DD`).
pub fn check(snapshot: &ClusterSnapshot, compat: &CompatData, today: &str) -> CheckReport {
    let mut out = Findings::default();
    for cluster in &snapshot.clusters {
        unread(cluster, &mut out);
        if cluster.istio.is_none() && cluster.gloo_mesh.is_none() && cluster.kmesh.is_none() {
            out.push(
                &cluster.name,
                Rule::SnapshotNoMesh,
                Severity::Info,
                "meshes",
                "no Istio, Gloo Mesh or Kmesh was found, so only Kubernetes was read; nothing to judge"
                    .to_string(),
                "the snapshot",
            );
        }
        istio::check(cluster, compat, today, &mut out);
        kmesh::check(cluster, compat, &mut out);
    }
    gloo_mesh::check(snapshot, compat, &mut out);
    CheckReport::new(
        today.to_string(),
        compat.date.clone(),
        snapshot.clusters.iter().map(|c| c.name.clone()).collect(),
        out.0,
    )
}

fn unread(cluster: &Cluster, out: &mut Findings) {
    for Unread {
        what,
        reason,
        leaves_unjudged,
    } in &cluster.unread
    {
        // A 403 needs access; anything else that answered (a redirect, a login page) is not the API.
        let fix = if reason.starts_with("forbidden") {
            "grant read access and check again"
        } else {
            "check what answers at the server's address and check again"
        };
        out.push(
            &cluster.name,
            Rule::SnapshotUnread,
            Severity::Warn,
            what,
            format!("could not read {what} ({reason}); {leaves_unjudged} left unjudged — {fix}"),
            "the snapshot",
        );
    }
}

/// The findings gathered so far.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn push(
        &mut self,
        cluster: &str,
        rule: Rule,
        severity: Severity,
        subject: &str,
        message: String,
        source: &str,
    ) {
        self.0.push(Finding {
            rule: rule.id().to_string(),
            severity,
            cluster: cluster.to_string(),
            subject: subject.to_string(),
            message,
            source: source.to_string(),
        });
    }
}

/// `1.17–1.20` for a contiguous run of minors, `1.22, 1.24` otherwise, `none` when empty.
fn fmt_minors(minors: &[Minor]) -> String {
    let mut sorted = minors.to_vec();
    sorted.sort();
    sorted.dedup();
    match sorted.as_slice() {
        [] => "none".to_string(),
        [one] => one.to_string(),
        [first, .., last] if sorted.windows(2).all(|w| w[0].minors_to(w[1]) == 1) => {
            format!("{first}–{last}")
        }
        all => all
            .iter()
            .map(Minor::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `a, b, c and 4 more`: at most `limit` names.
fn fmt_list(items: &[String], limit: usize) -> String {
    if items.len() <= limit {
        return items.join(", ");
    }
    format!(
        "{} and {} more",
        items[..limit].join(", "),
        items.len() - limit
    )
}

/// `1 pod`, `3 pods`.
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The verb form that agrees with a count: `agree(1, "runs", "run")`.
fn agree(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn minor_lists_read_as_ranges_when_contiguous() {
        let m = |s: &str| Minor::parse(s).unwrap();
        assert_eq!(
            fmt_minors(&[m("1.20"), m("1.17"), m("1.18"), m("1.19")]),
            "1.17–1.20"
        );
        assert_eq!(fmt_minors(&[m("1.22"), m("1.24")]), "1.22, 1.24");
        assert_eq!(fmt_minors(&[m("1.22")]), "1.22");
        assert_eq!(fmt_minors(&[]), "none");
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let items: Vec<String> = (1..=7).map(|i| format!("n{i}")).collect();
        assert_eq!(fmt_list(&items, 3), "n1, n2, n3 and 4 more");
        assert_eq!(fmt_list(&items[..2], 3), "n1, n2");
    }

    #[test]
    fn each_unread_fact_is_a_warning_naming_what_is_left_unjudged() {
        let mut c = cluster("prod", "v1.29.6-eks-db838b0");
        c.unread.push(Unread {
            what: "pods in all namespaces".into(),
            reason: "forbidden: list pods at the cluster scope".into(),
            leaves_unjudged: "the Istio data plane (proxy versions)".into(),
        });
        let report = run(vec![c]);
        let f = only(&report, "snapshot.unread");
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.contains("pods in all namespaces"),
            "{}",
            f.message
        );
        assert!(f.message.contains("forbidden"), "{}", f.message);
        assert!(f.message.contains("the Istio data plane"), "{}", f.message);
    }

    #[test]
    fn a_cluster_without_any_mesh_says_so() {
        let report = run(vec![cluster("bare", "v1.31.2")]);
        assert_eq!(only(&report, "snapshot.no-mesh").severity, Severity::Info);
        assert_eq!(report.findings.len(), 1);
    }

    #[test]
    fn every_rule_id_in_the_code_is_documented_in_the_table() {
        let doc = include_str!("mod.rs");
        let sources = [
            include_str!("istio.rs"),
            include_str!("gloo_mesh.rs"),
            include_str!("kmesh.rs"),
            doc,
        ];
        let mut seen = 0;
        for text in sources {
            for (i, _) in text.match_indices('"') {
                let rest = &text[i + 1..];
                let id: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '.' || *c == '-')
                    .collect();
                let is_rule = ["snapshot.", "istio.", "gloo-mesh.", "kmesh."]
                    .iter()
                    .any(|area| id.starts_with(area) && id.len() > area.len())
                    && !id.ends_with(".rs")
                    && rest[id.len()..].starts_with('"');
                if is_rule {
                    seen += 1;
                    assert!(
                        doc.contains(&format!("//! | `{id}` |")),
                        "rule {id} is not in the table at the top of src/check/mod.rs"
                    );
                }
            }
        }
        assert!(seen > 20, "found only {seen} rule ids");
    }

    #[test]
    fn every_rule_id_emitted_is_documented_in_the_table() {
        let doc = include_str!("mod.rs");
        for report in example_reports() {
            for f in &report.findings {
                assert!(
                    doc.contains(&format!("//! | `{}` |", f.rule)),
                    "rule {} is not in the table at the top of src/check/mod.rs",
                    f.rule
                );
            }
        }
    }
}
