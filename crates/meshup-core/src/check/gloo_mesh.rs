//! Gloo Mesh Open Source rules: the management plane against Kubernetes and Istio (its own cluster's and
//! its registered remote clusters' when they are in the snapshot), and the management/remote skew.

use super::Rule;
use std::collections::BTreeSet;

use super::istio::judge_istio_on_k8s;
use super::{Findings, fmt_minors, plural, replicas};
use crate::compat::{CompatData, GlooMeshRelease};
use crate::report::Severity;
use crate::snapshot::{Cluster, ClusterSnapshot, Workload};
use crate::verdict::{K8sRange, k8s_range};
use crate::version::{Minor, Version};

/// The Gloo Mesh version that governs a cluster, and where it runs.
struct Governing<'a> {
    version: Version,
    /// `None` when the cluster runs its own management plane (or only an agent, judged alone).
    management: Option<&'a str>,
}

pub(super) fn check(snapshot: &ClusterSnapshot, compat: &CompatData, out: &mut Findings) {
    for cluster in &snapshot.clusters {
        replicas_ready(cluster, out);
    }
    let mut judged: BTreeSet<&str> = BTreeSet::new();
    let managements = snapshot
        .clusters
        .iter()
        .filter(|c| c.gloo_mesh.as_ref().is_some_and(|g| g.is_management()));
    for mgmt in managements {
        let Some(gm) = &mgmt.gloo_mesh else { continue };
        judged.insert(&mgmt.name);
        let Some(version) = management_version(mgmt, out) else {
            continue;
        };
        let governing = Governing {
            version,
            management: None,
        };
        judge_cluster(mgmt, &governing, compat, out);
        for registered in &gm.registered_clusters {
            if registered.name == mgmt.name {
                continue;
            }
            let Some(remote) = snapshot.clusters.iter().find(|c| c.name == registered.name) else {
                out.push(
                    &mgmt.name,
                    Rule::GlooMeshRemoteUnobserved,
                    Severity::Info,
                    &format!("remote cluster {}", registered.name),
                    format!(
                        "{} is registered to this management plane (KubernetesCluster {}/{}) but is not in the snapshot; \
                         its Kubernetes, Istio and agent are unjudged — add its context with --context",
                        registered.name, registered.namespace, registered.name
                    ),
                    "the snapshot",
                );
                continue;
            };
            if !judged.insert(&remote.name) {
                continue;
            }
            let governing = Governing {
                version,
                management: Some(&mgmt.name),
            };
            judge_cluster(remote, &governing, compat, out);
            remote_skew(mgmt, version, remote, compat, out);
        }
    }
    // Agents whose management cluster is not in the snapshot: judged by their own version.
    for cluster in &snapshot.clusters {
        if judged.contains(cluster.name.as_str()) {
            continue;
        }
        let Some(agent) = cluster.gloo_mesh.as_ref().and_then(|g| g.agent.as_ref()) else {
            continue;
        };
        let Some(version) = read_version(cluster, agent, out) else {
            continue;
        };
        let governing = Governing {
            version,
            management: None,
        };
        judge_cluster(cluster, &governing, compat, out);
    }
}

/// `discovery`, `networking` and the agent run (see [`replicas::judge`]).
fn replicas_ready(cluster: &Cluster, out: &mut Findings) {
    let Some(gm) = &cluster.gloo_mesh else {
        return;
    };
    let parts = [
        ("Gloo Mesh discovery", &gm.discovery),
        ("Gloo Mesh networking", &gm.networking),
        ("the Gloo Mesh agent", &gm.agent),
    ];
    for (role, w) in parts {
        if let Some(w) = w {
            let subject = format!("Gloo Mesh {}", w.name);
            replicas::judge(cluster, Rule::GlooMeshReplicasReady, &subject, role, w, out);
        }
    }
}

fn management_version(cluster: &Cluster, out: &mut Findings) -> Option<Version> {
    let gm = cluster.gloo_mesh.as_ref()?;
    let components: Vec<&Workload> = [&gm.discovery, &gm.networking]
        .into_iter()
        .flatten()
        .collect();
    if let Some(v) = components.iter().find_map(|w| w.version.version) {
        return Some(v);
    }
    let first = components.first()?;
    read_version(cluster, first, out)
}

fn read_version(cluster: &Cluster, w: &Workload, out: &mut Findings) -> Option<Version> {
    if w.version.version.is_none() {
        out.push(
            &cluster.name,
            Rule::GlooMeshVersionRead,
            Severity::Warn,
            &format!("Gloo Mesh {}", w.name),
            format!(
                "the Gloo Mesh version of {}/{} could not be read ({}); its Kubernetes and Istio support are unjudged",
                w.namespace, w.name, w.version.image
            ),
            "the snapshot",
        );
    }
    w.version.version
}

fn subject(governing: &Governing) -> String {
    match governing.management {
        None => format!("Gloo Mesh {}", governing.version),
        Some(mgmt) => format!("Gloo Mesh {} (from {mgmt})", governing.version),
    }
}

fn judge_cluster(
    cluster: &Cluster,
    governing: &Governing,
    compat: &CompatData,
    out: &mut Findings,
) {
    let version = governing.version;
    let Some(row) = compat.gloo_mesh_release(version.minor_line()) else {
        let known: Vec<Minor> = compat.gloo_mesh.releases.iter().map(|r| r.minor).collect();
        let newer = known.iter().all(|k| *k < version.minor_line());
        let why = if newer {
            "newer than this build knows — update kubectl-meshup or pass --compat FILE with newer data"
        } else {
            "the data has no row for it"
        };
        out.push(
            &cluster.name,
            Rule::GlooMeshVersionKnown,
            Severity::Warn,
            &subject(governing),
            format!(
                "Gloo Mesh {} is not in the compatibility data (data dated {}, covers {}); {why}. \
                 Its Kubernetes and Istio support are unjudged",
                version.minor_line(),
                compat.date,
                fmt_minors(&known)
            ),
            &format!("compatibility data dated {}", compat.date),
        );
        return;
    };
    k8s_support(cluster, governing, row, out);
    istio_follows_k8s(cluster, governing, row, compat, out);
    istio_support(cluster, governing, row, out);
}

fn k8s_support(
    cluster: &Cluster,
    governing: &Governing,
    row: &GlooMeshRelease,
    out: &mut Findings,
) {
    let gm = governing.version.minor_line();
    let k8s = cluster.kubernetes.minor();
    let (severity, message) = match k8s_range(&row.k8s, row.k8s_min, k8s) {
        K8sRange::Listed => (
            Severity::Pass,
            format!("Gloo Mesh {gm} supports Kubernetes {k8s}"),
        ),
        K8sRange::NotListed => (
            Severity::Fail,
            format!(
                "Gloo Mesh {gm} does not support Kubernetes {k8s} (supported: {})",
                fmt_minors(&row.k8s)
            ),
        ),
        K8sRange::AtLeastMinimum(min) => (
            Severity::Pass,
            format!(
                "Gloo Mesh {gm} needs Kubernetes {min} or newer; {k8s} qualifies (the data has only a minimum)"
            ),
        ),
        K8sRange::BelowMinimum(min) => (
            Severity::Fail,
            format!("Gloo Mesh {gm} needs Kubernetes {min} or newer, and this cluster runs {k8s}"),
        ),
        K8sRange::NoData => (
            Severity::Warn,
            format!(
                "the data lists no supported Kubernetes for Gloo Mesh {gm}; Kubernetes {k8s} is unjudged"
            ),
        ),
    };
    out.push(
        &cluster.name,
        Rule::GlooMeshK8sSupport,
        severity,
        &subject(governing),
        message,
        &row.source,
    );
}

/// The row's footnote: supported Kubernetes versions follow the installed Istio.
fn istio_follows_k8s(
    cluster: &Cluster,
    governing: &Governing,
    row: &GlooMeshRelease,
    compat: &CompatData,
    out: &mut Findings,
) {
    let gm = governing.version.minor_line();
    let k8s = cluster.kubernetes.minor();
    for cp in cluster.istio_control_planes() {
        let Some(istio) = cp.istiod.version.version.map(|v| v.minor_line()) else {
            continue;
        };
        let (severity, verdict) = judge_istio_on_k8s(compat, istio, k8s);
        let message = match severity {
            Severity::Pass => {
                format!("Gloo Mesh {gm} with Istio {istio} on Kubernetes {k8s}: {verdict}")
            }
            _ => format!(
                "Gloo Mesh {gm} with Istio {istio} on Kubernetes {k8s}: {verdict}. Gloo Mesh's supported Kubernetes \
                 follows the installed Istio"
            ),
        };
        out.push(
            &cluster.name,
            Rule::GlooMeshK8sSupport,
            severity,
            &format!("{} / istiod {}", subject(governing), cp.revision),
            message,
            &row.source,
        );
    }
}

fn istio_support(
    cluster: &Cluster,
    governing: &Governing,
    row: &GlooMeshRelease,
    out: &mut Findings,
) {
    let gm = governing.version.minor_line();
    for cp in cluster.istio_control_planes() {
        let Some(istio) = cp.istiod.version.version.map(|v| v.minor_line()) else {
            continue;
        };
        let (severity, message) = if row.istio.contains(&istio) {
            (
                Severity::Pass,
                format!("Gloo Mesh {gm} supports Istio {istio}"),
            )
        } else {
            (
                Severity::Fail,
                format!(
                    "Gloo Mesh {gm} does not support Istio {istio} (supported: {}); move Istio or Gloo Mesh into the matrix",
                    fmt_minors(&row.istio)
                ),
            )
        };
        out.push(
            &cluster.name,
            Rule::GlooMeshIstioSupport,
            severity,
            &format!("{} / istiod {}", subject(governing), cp.revision),
            message,
            &row.source,
        );
    }
}

/// Releases between two Gloo Mesh versions, counted along the data's release list (so 0.12 -> 1.0 is
/// one step), falling back to minor arithmetic for versions the data does not know.
fn releases_between(compat: &CompatData, from: Minor, to: Minor) -> i64 {
    let mut known: Vec<Minor> = compat.gloo_mesh.releases.iter().map(|r| r.minor).collect();
    known.sort();
    let index = |m: Minor| known.iter().position(|k| *k == m);
    match (index(from), index(to)) {
        (Some(a), Some(b)) => b as i64 - a as i64,
        _ => from.minors_to(to),
    }
}

fn remote_skew(
    mgmt: &Cluster,
    mgmt_version: Version,
    remote: &Cluster,
    compat: &CompatData,
    out: &mut Findings,
) {
    let rule = &compat.gloo_mesh.remote_max_lag_minors;
    let subject = format!(
        "gloo mesh agent (management {mgmt_version} in {})",
        mgmt.name
    );
    let Some(agent) = remote.gloo_mesh.as_ref().and_then(|g| g.agent.as_ref()) else {
        out.push(
            &remote.name,
            Rule::GlooMeshRemoteUnobserved,
            Severity::Warn,
            &subject,
            format!(
                "this cluster is registered to the Gloo Mesh management plane in {} but no Gloo Mesh agent was found; \
                 re-register it (meshctl cluster register) with the same cluster name",
                mgmt.name
            ),
            "the snapshot",
        );
        return;
    };
    let Some(agent_version) = read_version(remote, agent, out) else {
        return;
    };
    let behind = releases_between(
        compat,
        agent_version.minor_line(),
        mgmt_version.minor_line(),
    );
    let (severity, message) = if behind < 0 {
        (
            Severity::Fail,
            format!(
                "the agent runs Gloo Mesh {agent_version}, newer than the management plane ({mgmt_version}); remote clusters \
                 may only run behind — upgrade the management plane first"
            ),
        )
    } else if behind == 0 {
        (
            Severity::Pass,
            format!(
                "the agent runs Gloo Mesh {agent_version}, the same release as the management plane ({mgmt_version})"
            ),
        )
    } else if behind as u64 <= rule.value {
        (
            Severity::Warn,
            format!(
                "the agent runs Gloo Mesh {agent_version}, {} behind the management plane ({mgmt_version}); allowed \
                 only while upgrading — finish the upgrade by re-registering this cluster",
                plural(behind as u64, "version", "versions")
            ),
        )
    } else {
        (
            Severity::Fail,
            format!(
                "the agent runs Gloo Mesh {agent_version}, {} behind the management plane ({mgmt_version}); remote \
                 clusters may run at most {} behind — re-register this cluster to upgrade its agent",
                plural(behind as u64, "version", "versions"),
                plural(rule.value, "version", "versions")
            ),
        )
    };
    out.push(
        &remote.name,
        Rule::GlooMeshRemoteSkew,
        severity,
        &subject,
        message,
        &rule.source,
    );
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::report::Severity;
    use crate::snapshot::Cluster;

    fn remote(name: &str, k8s: &str, pilot_tag: &str, agent_tag: Option<&str>) -> Cluster {
        let mut c = cluster(name, k8s);
        c.istio = Some(istio(vec![istiod(
            "default",
            &format!("docker.io/istio/pilot:{pilot_tag}"),
        )]));
        c.gloo_mesh = agent_tag.map(gloo_agent);
        c
    }

    fn mgmt(tag: &str, registered: &[&str]) -> Cluster {
        let mut c = cluster("mgmt", "v1.21.14-gke.18800");
        c.gloo_mesh = Some(gloo_management(tag, registered));
        c
    }

    #[test]
    fn the_seeds_example_istio_1_9_on_kubernetes_1_22_fails_naming_both() {
        let mut c = remote("solo", "v1.22.17", "1.9.9", None);
        c.gloo_mesh = Some(gloo_management("1.1.2", &[]));
        let report = run(vec![c]);
        let fs = of(&report, "gloo-mesh.k8s-support");
        let follows = fs.iter().find(|f| f.subject.contains("istiod")).unwrap();
        assert_eq!(follows.severity, Severity::Fail);
        assert!(
            follows
                .message
                .contains("Istio 1.9 does not support Kubernetes 1.22"),
            "{}",
            follows.message
        );
        assert!(
            follows.message.contains("follows the installed Istio"),
            "{}",
            follows.message
        );
        assert!(follows.source.contains("seed"), "{}", follows.source);
        let own = fs.iter().find(|f| !f.subject.contains("istiod")).unwrap();
        assert_eq!(own.severity, Severity::Fail);
        assert!(
            own.message
                .contains("Gloo Mesh 1.1 does not support Kubernetes 1.22 (supported: 1.16–1.21)"),
            "{}",
            own.message
        );
    }

    #[test]
    fn istio_outside_the_row_fails_and_inside_passes() {
        let mut c = remote("solo", "v1.21.14", "1.11.8", None);
        c.gloo_mesh = Some(gloo_management("1.1.2", &[]));
        let report = run(vec![c]);
        let f = only(&report, "gloo-mesh.istio-support");
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message
                .contains("Gloo Mesh 1.1 does not support Istio 1.11 (supported: 1.7–1.10)"),
            "{}",
            f.message
        );

        let mut c = remote("solo", "v1.21.14", "1.10.6", None);
        c.gloo_mesh = Some(gloo_management("1.1.2", &[]));
        assert_eq!(
            only(&run(vec![c]), "gloo-mesh.istio-support").severity,
            Severity::Pass
        );
    }

    #[test]
    fn pre_1_0_releases_are_judged_by_their_kubernetes_minimum() {
        let mut c = remote("old", "v1.18.20", "1.8.6", None);
        c.gloo_mesh = Some(gloo_management("0.12.4", &[]));
        let report = run(vec![c]);
        let own = of(&report, "gloo-mesh.k8s-support")
            .into_iter()
            .find(|f| !f.subject.contains("istiod"))
            .unwrap();
        assert_eq!(own.severity, Severity::Pass);
        assert!(
            own.message.contains("needs Kubernetes 1.13 or newer"),
            "{}",
            own.message
        );
    }

    #[test]
    fn a_management_plane_judges_its_registered_remotes_istio() {
        let report = run(vec![
            mgmt("1.1.2", &["east", "gone"]),
            remote("east", "v1.21.14", "1.11.8", Some("1.1.2")),
        ]);
        let f = only(&report, "gloo-mesh.istio-support");
        assert_eq!(f.cluster, "east");
        assert_eq!(f.severity, Severity::Fail);
        assert!(f.subject.contains("(from mgmt)"), "{}", f.subject);
        let missing = only(&report, "gloo-mesh.remote-unobserved");
        assert_eq!(missing.severity, Severity::Info);
        assert!(
            missing.message.contains("gone is registered"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn remote_agents_may_lag_one_release_and_never_lead() {
        let skew = |mgmt_tag: &str, agent_tag: &str| {
            let report = run(vec![
                mgmt(mgmt_tag, &["east"]),
                remote("east", "v1.21.14", "1.10.6", Some(agent_tag)),
            ]);
            let f = only(&report, "gloo-mesh.remote-skew").clone();
            (f.severity, f.message)
        };
        assert_eq!(skew("1.1.2", "1.1.0").0, Severity::Pass);
        let (sev, msg) = skew("1.1.2", "1.0.11");
        assert_eq!(sev, Severity::Warn);
        assert!(msg.contains("finish the upgrade"), "{msg}");
        // 0.12 is the release before 1.0 in the data: one step, not "a major apart".
        assert_eq!(skew("1.0.11", "0.12.4").0, Severity::Warn);
        let (sev, msg) = skew("1.1.2", "0.12.4");
        assert_eq!(sev, Severity::Fail);
        assert!(msg.contains("2 versions behind"), "{msg}");
        let (sev, msg) = skew("1.0.11", "1.1.2");
        assert_eq!(sev, Severity::Fail);
        assert!(msg.contains("newer than the management plane"), "{msg}");
    }

    #[test]
    fn a_registered_remote_without_an_agent_warns() {
        let report = run(vec![
            mgmt("1.1.2", &["east"]),
            remote("east", "v1.21.14", "1.10.6", None),
        ]);
        let f = only(&report, "gloo-mesh.remote-unobserved");
        assert_eq!(f.severity, Severity::Warn);
        assert_eq!(f.cluster, "east");
    }

    #[test]
    fn an_unknown_gloo_mesh_version_warns() {
        let mut c = remote("solo", "v1.21.14", "1.10.6", None);
        c.gloo_mesh = Some(gloo_management("2.0.0", &[]));
        let report = run(vec![c]);
        let f = only(&report, "gloo-mesh.version-known");
        assert!(
            f.message.contains("newer than this build knows"),
            "{}",
            f.message
        );
        assert!(of(&report, "gloo-mesh.k8s-support").is_empty());
    }

    #[test]
    fn an_agent_alone_is_judged_by_its_own_version() {
        let report = run(vec![remote("east", "v1.22.17", "1.10.6", Some("1.1.2"))]);
        assert!(
            of(&report, "gloo-mesh.k8s-support")
                .iter()
                .any(|f| f.severity == Severity::Fail)
        );
        assert!(of(&report, "gloo-mesh.remote-skew").is_empty());
    }

    #[test]
    fn gloo_mesh_discovery_and_networking_at_zero_fail_and_two_of_three_warn() {
        let mut mgmt = cluster("mgmt", "v1.21.14");
        let mut gm = gloo_management("1.1.6", &[]);
        if let Some(d) = gm.discovery.as_mut() {
            d.desired = 0;
            d.ready = 0;
        }
        if let Some(n) = gm.networking.as_mut() {
            n.desired = 3;
            n.ready = 0;
        }
        mgmt.gloo_mesh = Some(gm);
        let report = run(vec![mgmt]);
        let found: Vec<(&str, Severity)> = of(&report, "gloo-mesh.replicas-ready")
            .iter()
            .map(|f| (f.subject.as_str(), f.severity))
            .collect();
        assert_eq!(
            found,
            vec![
                ("Gloo Mesh discovery", Severity::Fail),
                ("Gloo Mesh networking", Severity::Fail)
            ]
        );
        let discovery = of(&report, "gloo-mesh.replicas-ready")[0];
        assert_eq!(
            discovery.message,
            "Deployment gloo-mesh/discovery (Gloo Mesh discovery) is scaled to 0 replicas, so it is down; \
             scale it back to the replicas it usually runs (at least 1): kubectl -n gloo-mesh scale deployment \
             discovery --replicas=1"
        );
        assert!(report.has_failures());

        let mut mgmt = cluster("mgmt", "v1.21.14");
        let mut gm = gloo_management("1.1.6", &[]);
        if let Some(d) = gm.discovery.as_mut() {
            d.desired = 3;
            d.ready = 2;
        }
        mgmt.gloo_mesh = Some(gm);
        let report = run(vec![mgmt]);
        let f = only(&report, "gloo-mesh.replicas-ready");
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.contains(
                "Deployment gloo-mesh/discovery (Gloo Mesh discovery) has 2 of 3 replicas ready"
            ),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_remote_agent_at_zero_ready_fails() {
        let mut c = remote("remote1", "v1.21.14", "1.10.4", Some("1.1.6"));
        if let Some(a) = c.gloo_mesh.as_mut().and_then(|g| g.agent.as_mut()) {
            a.ready = 0;
        }
        let report = run(vec![c]);
        let f = only(&report, "gloo-mesh.replicas-ready");
        assert_eq!(
            (f.cluster.as_str(), f.subject.as_str(), f.severity),
            ("remote1", "Gloo Mesh cert-agent", Severity::Fail)
        );
    }
}
