//! Istio rules: Kubernetes support and end of life per control-plane revision, the data plane against
//! its control plane, the ambient components, ambient maturity and build flavors.

use super::Rule;
use std::collections::{BTreeMap, BTreeSet};

use super::{Findings, agree, fmt_list, fmt_minors, plural, replicas};
use crate::compat::{CompatData, IstioRelease, Support};
use crate::report::Severity;
use crate::snapshot::{
    Cluster, Istio, IstioControlPlane, ObservedVersion, ProxyGroup, VersionSource, Workload,
};
use crate::version::{Minor, Version};

/// End of life this close (in days) is reported as info, so the upgrade gets planned.
const EOL_SOON_DAYS: i64 = 30;
/// Workloads named in one data-plane finding before "and N more".
const WORKLOADS_NAMED: usize = 5;

pub(super) fn check(cluster: &Cluster, compat: &CompatData, today: &str, out: &mut Findings) {
    let Some(istio) = &cluster.istio else {
        return;
    };
    let k8s = cluster.kubernetes.minor();
    replicas_ready(cluster, istio, out);
    for cp in &istio.control_planes {
        let subject = control_plane_subject(cp);
        let Some(release) = known_release(cluster, cp, compat, &subject, out) else {
            continue;
        };
        let (severity, message) = judge_istio_on_k8s(compat, release.minor, k8s);
        out.push(
            &cluster.name,
            Rule::IstioK8sSupport,
            severity,
            &subject,
            message,
            &release.source,
        );
        end_of_life(cluster, release, compat, today, &subject, out);
        ambient_ga(cluster, istio, cp, release.minor, compat, &subject, out);
    }
    data_plane(cluster, istio, compat, out);
    ambient_components(cluster, istio, compat, out);
    flavors(cluster, istio, compat, out);
}

/// Every istiod revision, gateway, ztunnel and istio-cni runs (see [`replicas::judge`]).
fn replicas_ready(cluster: &Cluster, istio: &Istio, out: &mut Findings) {
    const RULE: Rule = Rule::IstioReplicasReady;
    for cp in &istio.control_planes {
        let role = format!("the Istio control plane of revision {}", cp.revision);
        let subject = control_plane_subject(cp);
        replicas::judge(cluster, RULE, &subject, &role, &cp.istiod, out);
    }
    for gw in &istio.gateways {
        let w = &gw.workload;
        let subject = format!("gateway {}/{}", w.namespace, w.name);
        replicas::judge(cluster, RULE, &subject, "an Istio gateway", w, out);
    }
    let ambient = [
        ("ztunnel", "the ambient node proxy", &istio.ztunnel),
        ("istio-cni", "the Istio CNI node agent", &istio.cni),
    ];
    for (subject, role, w) in ambient {
        if let Some(w) = w {
            replicas::judge(cluster, RULE, subject, role, w, out);
        }
    }
}

/// `istiod revision 1-20-3`.
pub(super) fn control_plane_subject(cp: &IstioControlPlane) -> String {
    format!("istiod revision {}", cp.revision)
}

/// The data's row for this control plane, or a warning saying why there is none.
fn known_release<'a>(
    cluster: &Cluster,
    cp: &IstioControlPlane,
    compat: &'a CompatData,
    subject: &str,
    out: &mut Findings,
) -> Option<&'a IstioRelease> {
    let Some(version) = cp.istiod.version.version else {
        out.push(
            &cluster.name,
            Rule::IstioVersionRead,
            Severity::Warn,
            subject,
            format!(
                "the Istio version of {}/{} could be read from neither its image ({}) nor chart labels; \
                 Kubernetes support, end of life and data-plane skew for this revision are unjudged",
                cp.istiod.namespace, cp.istiod.name, cp.istiod.version.image
            ),
            "the snapshot",
        );
        return None;
    };
    match compat.istio_release(version.minor_line()) {
        Some(release) => Some(release),
        None => {
            out.push(
                &cluster.name,
                Rule::IstioVersionKnown,
                Severity::Warn,
                subject,
                not_in_data_message(compat, version),
                &format!("compatibility data dated {}", compat.date),
            );
            None
        }
    }
}

fn not_in_data_message(compat: &CompatData, version: Version) -> String {
    let known: Vec<Minor> = compat.istio.releases.iter().map(|r| r.minor).collect();
    let newest = known.iter().max();
    let why = match newest {
        Some(newest) if version.minor_line() > *newest => format!(
            "newer than this build knows (newest: {newest}) — update kubectl-meshup or pass --compat FILE with newer data"
        ),
        _ => format!(
            "the data covers {}; this release was never in Istio's support table",
            fmt_minors(&known)
        ),
    };
    format!(
        "Istio {} is not in the compatibility data (data dated {}); {why}. Its Kubernetes support and end of life are unjudged",
        version.minor_line(),
        compat.date
    )
}

/// Istio `istio` on Kubernetes `k8s`, as a severity and a message naming both versions. Shared with
/// the Gloo Mesh rule whose supported Kubernetes follows the installed Istio.
pub(super) fn judge_istio_on_k8s(
    compat: &CompatData,
    istio: Minor,
    k8s: Minor,
) -> (Severity, String) {
    let Some(release) = compat.istio_release(istio) else {
        return (
            Severity::Warn,
            format!(
                "Istio {istio} is not in the compatibility data (data dated {}); its support of Kubernetes {k8s} is unjudged",
                compat.date
            ),
        );
    };
    let supported = fmt_minors(&release.supported_k8s);
    match compat.istio_on_k8s(istio, k8s) {
        Support::Supported => (
            Severity::Pass,
            format!("Istio {istio} supports Kubernetes {k8s}"),
        ),
        Support::TestedOnly => (
            Severity::Warn,
            format!(
                "Istio {istio} is tested but not supported on Kubernetes {k8s} (supported: {supported}); \
                 move Kubernetes into the supported range"
            ),
        ),
        Support::Unsupported | Support::NotInData => {
            let istios: Vec<Minor> = compat
                .istio
                .releases
                .iter()
                .filter(|r| r.supported_k8s.contains(&k8s))
                .map(|r| r.minor)
                .collect();
            let newest_supported = release.supported_k8s.iter().max();
            let advice = match newest_supported {
                Some(max) if k8s > *max && !istios.is_empty() => format!(
                    "upgrade Istio to a release that supports Kubernetes {k8s} ({})",
                    fmt_minors(&istios)
                ),
                Some(max) if k8s > *max => format!(
                    "no Istio release in the data supports Kubernetes {k8s} yet; keep Kubernetes at {max} or older"
                ),
                _ => format!("upgrade Kubernetes to {supported}"),
            };
            (
                Severity::Fail,
                format!(
                    "Istio {istio} does not support Kubernetes {k8s} (supported: {supported}); {advice}"
                ),
            )
        }
    }
}

fn end_of_life(
    cluster: &Cluster,
    release: &IstioRelease,
    compat: &CompatData,
    today: &str,
    subject: &str,
    out: &mut Findings,
) {
    let minor = release.minor;
    let newest = compat
        .newest_istio()
        .map(|r| r.minor.to_string())
        .unwrap_or_else(|| minor.to_string());
    let (severity, message) = match (&release.eol, crate::dates::day_number(today)) {
        (_, None) => (
            Severity::Warn,
            format!(
                "the evaluation date `{today}` is not YYYY-MM-DD; end of life of Istio {minor} is unjudged"
            ),
        ),
        (None, Some(_)) => (
            Severity::Info,
            format!(
                "no end-of-life date for Istio {minor} in the data (status: {}); check istio.io before planning around it",
                release.eol_status
            ),
        ),
        (Some(eol), Some(today_n)) => match crate::dates::day_number(eol) {
            None => (
                Severity::Warn,
                format!(
                    "the data's end-of-life date `{eol}` for Istio {minor} is not YYYY-MM-DD; end of life is unjudged"
                ),
            ),
            Some(eol_n) => {
                let planned = if release.eol_status == "final" {
                    String::new()
                } else {
                    format!(" ({})", release.eol_status)
                };
                if eol_n <= today_n {
                    (
                        Severity::Warn,
                        format!(
                            "Istio {minor} is past end of life on {eol}{planned}; upgrade to a supported release (newest known: {newest})"
                        ),
                    )
                } else if eol_n - today_n <= EOL_SOON_DAYS {
                    (
                        Severity::Info,
                        format!(
                            "Istio {minor} reaches end of life on {eol}{planned}, in {}; plan the upgrade",
                            plural((eol_n - today_n) as u64, "day", "days")
                        ),
                    )
                } else {
                    (
                        Severity::Pass,
                        format!("Istio {minor} is supported until {eol}{planned}"),
                    )
                }
            }
        },
    };
    out.push(
        &cluster.name,
        Rule::IstioEol,
        severity,
        subject,
        message,
        &release.source,
    );
}

/// True when this cluster runs ambient mode: ztunnel, or namespaces enrolled in it.
fn ambient_in_use(istio: &Istio) -> bool {
    istio.ztunnel.is_some()
        || istio
            .namespaces
            .iter()
            .any(|n| n.label == "istio.io/dataplane-mode" && n.value == "ambient")
}

fn ambient_ga(
    cluster: &Cluster,
    istio: &Istio,
    cp: &IstioControlPlane,
    minor: Minor,
    compat: &CompatData,
    subject: &str,
    out: &mut Findings,
) {
    if !(cp.ambient_enabled || ambient_in_use(istio)) {
        return;
    }
    let ga = &compat.istio.ambient_ga;
    let (severity, message) = if minor < ga.value {
        (
            Severity::Warn,
            format!(
                "ambient mode runs on Istio {minor}, where it is not GA (GA from {}); upgrade to {} or newer before relying on it in production",
                ga.value, ga.value
            ),
        )
    } else {
        (
            Severity::Pass,
            format!("ambient mode is GA in Istio {minor} (GA from {})", ga.value),
        )
    };
    out.push(
        &cluster.name,
        Rule::IstioAmbientGa,
        severity,
        subject,
        message,
        &ga.source,
    );
}

/// The control plane that serves proxies injected by `revision`: the revision itself, a revision tag
/// pointing at one, the `default` revision, or the only control plane there is.
fn control_plane_for<'a>(istio: &'a Istio, revision: &str) -> Option<&'a IstioControlPlane> {
    let by_revision = |r: &str| istio.control_planes.iter().find(|cp| cp.revision == r);
    by_revision(revision)
        .or_else(|| {
            istio
                .revision_tags
                .get(revision)
                .and_then(|r| by_revision(r))
        })
        .or_else(|| {
            istio
                .revision_tags
                .get("default")
                .and_then(|r| by_revision(r))
        })
        .or_else(|| by_revision("default"))
        .or(match istio.control_planes.as_slice() {
            [only] => Some(only),
            _ => None,
        })
}

/// Proxies and the gateways not already counted among them.
fn data_plane_groups(istio: &Istio) -> Vec<ProxyGroup> {
    let mut groups = istio.proxies.clone();
    for gw in &istio.gateways {
        let owner = format!("{}/{}", gw.workload.kind, gw.workload.name);
        let counted = groups
            .iter()
            .any(|p| p.namespace == gw.workload.namespace && p.owner == owner);
        if !counted {
            groups.push(ProxyGroup {
                namespace: gw.workload.namespace.clone(),
                owner,
                revision: gw.revision.clone().unwrap_or_else(|| "default".to_string()),
                version: gw.workload.version.clone(),
                pods: u64::from(gw.workload.desired),
            });
        }
    }
    groups
}

/// `3 pods in 2 workloads (shop/Deployment/cart: 2, shop/Deployment/web: 1)`, and the pod count.
fn describe_workloads(groups: &[&ProxyGroup]) -> (String, u64) {
    let mut per_workload: BTreeMap<String, u64> = BTreeMap::new();
    for g in groups {
        *per_workload
            .entry(format!("{}/{}", g.namespace, g.owner))
            .or_default() += g.pods;
    }
    let pods: u64 = per_workload.values().sum();
    let mut ranked: Vec<(String, u64)> = per_workload.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let names: Vec<String> = ranked.iter().map(|(w, n)| format!("{w}: {n}")).collect();
    let text = format!(
        "{} in {} ({})",
        plural(pods, "pod", "pods"),
        plural(ranked.len() as u64, "workload", "workloads"),
        fmt_list(&names, WORKLOADS_NAMED)
    );
    (text, pods)
}

fn data_plane(cluster: &Cluster, istio: &Istio, compat: &CompatData, out: &mut Findings) {
    let groups = data_plane_groups(istio);
    // One finding per (control plane, proxy version); proxies whose revision no istiod serves are
    // grouped per revision.
    let mut judged: BTreeMap<(String, Option<Version>), Vec<&ProxyGroup>> = BTreeMap::new();
    let mut orphaned: BTreeMap<&str, Vec<&ProxyGroup>> = BTreeMap::new();
    for g in &groups {
        match control_plane_for(istio, &g.revision) {
            Some(cp) => judged
                .entry((cp.revision.clone(), g.version.version))
                .or_default()
                .push(g),
            None => orphaned.entry(g.revision.as_str()).or_default().push(g),
        }
    }
    for (revision, gs) in orphaned {
        let (who, pods) = describe_workloads(&gs);
        out.push(
            &cluster.name,
            Rule::IstioProxyControlPlane,
            Severity::Warn,
            &format!("proxies of revision {revision}"),
            format!(
                "{who} {} injected by revision {revision}, which no istiod serves; their skew is unjudged — \
                 point their namespaces at a running revision and restart them",
                agree(pods, "was", "were")
            ),
            "the snapshot",
        );
    }
    let lag_rule = &compat.istio.data_plane_max_lag_minors;
    for ((cp_revision, version), gs) in judged {
        let (who, pods) = describe_workloads(&gs);
        let run = agree(pods, "runs", "run");
        let Some(cp) = istio
            .control_planes
            .iter()
            .find(|cp| cp.revision == cp_revision)
        else {
            continue;
        };
        let Some(cp_version) = cp.istiod.version.version else {
            continue; // istio.version-read already says this revision is unjudged.
        };
        let Some(version) = version else {
            let images: BTreeSet<&str> = gs.iter().map(|g| g.version.image.as_str()).collect();
            out.push(
                &cluster.name,
                Rule::IstioProxyVersionRead,
                Severity::Warn,
                &format!("proxies of istiod {} (version unread)", cp.revision),
                format!(
                    "{who} {run} an istio-proxy whose version could not be read ({}); their skew against istiod {} is unjudged",
                    fmt_list(&images.into_iter().map(str::to_string).collect::<Vec<_>>(), 3),
                    cp.revision
                ),
                "the snapshot",
            );
            continue;
        };
        let subject = format!("proxies {version} → istiod {}", cp.revision);
        let against = format!("istiod {} ({cp_version})", cp.revision);
        let behind = version.minor_line().minors_to(cp_version.minor_line());
        let (rule, severity, message) = if behind < 0 {
            (
                Rule::IstioProxyAhead,
                Severity::Fail,
                format!(
                    "{who} {run} proxy {version}, newer than {against}; the data plane may never be ahead of the control plane — \
                     upgrade istiod first, or restart them so {against} injects its own proxy"
                ),
            )
        } else if behind == 0 && version > cp_version {
            (
                Rule::IstioProxyAhead,
                Severity::Info,
                format!(
                    "{who} {run} proxy {version}, a newer patch than {against}; upgrade istiod to {version} to match"
                ),
            )
        } else if behind as u64 > lag_rule.value {
            (
                Rule::IstioDataPlaneSkew,
                Severity::Fail,
                format!(
                    "{who} {run} proxy {version}, {} behind {against}; the control plane may lead the data plane by at most {} — \
                     restart them to pick up the {} proxy",
                    plural(behind as u64, "minor", "minors"),
                    plural(lag_rule.value, "minor", "minors"),
                    cp_version.minor_line()
                ),
            )
        } else if version < cp_version {
            (
                Rule::IstioDataPlaneSkew,
                Severity::Info,
                format!(
                    "{who} {run} proxy {version}, behind {against} but within the allowed {} lag; restart them to pick up the new proxy",
                    plural(lag_rule.value, "minor", "minors")
                ),
            )
        } else {
            (
                Rule::IstioDataPlaneSkew,
                Severity::Pass,
                format!("{who} {run} proxy {version}, matching {against}"),
            )
        };
        out.push(
            &cluster.name,
            rule,
            severity,
            &subject,
            message,
            &lag_rule.source,
        );
    }
}

/// ztunnel and istio-cni: no canary, so each must work with every control plane in the cluster.
fn ambient_components(cluster: &Cluster, istio: &Istio, compat: &CompatData, out: &mut Findings) {
    let rule = &compat.istio.ambient_components_max_lag_minors;
    for (name, component) in [("ztunnel", &istio.ztunnel), ("istio-cni", &istio.cni)] {
        let Some(component) = component else {
            continue;
        };
        let Some(version) = component.version.version else {
            out.push(
                &cluster.name,
                Rule::IstioAmbientComponentsSkew,
                Severity::Warn,
                name,
                format!(
                    "the version of {}/{} could not be read ({}); its skew against istiod is unjudged",
                    component.namespace, component.name, component.version.image
                ),
                "the snapshot",
            );
            continue;
        };
        let mut problems = Vec::new();
        let mut fine = Vec::new();
        for cp in &istio.control_planes {
            let Some(cp_version) = cp.istiod.version.version else {
                continue;
            };
            let against = format!("istiod {} ({cp_version})", cp.revision);
            let lag = version.minor_line().minors_to(cp_version.minor_line());
            if lag < 0 {
                problems.push(format!("it is newer than {against}"));
            } else if lag as u64 > rule.value {
                problems.push(format!(
                    "it is {} behind {against}",
                    plural(lag as u64, "minor", "minors")
                ));
            } else {
                fine.push(against);
            }
        }
        let subject = format!("{name} {version}");
        if !problems.is_empty() {
            out.push(
                &cluster.name,
                Rule::IstioAmbientComponentsSkew,
                Severity::Fail,
                &subject,
                format!(
                    "{name} {version} must be no newer than the control plane and at most {} behind, but {}; \
                     {name} has no canary upgrade, so upgrade the control plane first and then {name} in place",
                    plural(rule.value, "minor", "minors"),
                    problems.join(" and ")
                ),
                &rule.source,
            );
        } else if !fine.is_empty() {
            out.push(
                &cluster.name,
                Rule::IstioAmbientComponentsSkew,
                Severity::Pass,
                &subject,
                format!("{name} {version} works with {}", fine.join(", ")),
                &rule.source,
            );
        }
    }
}

/// Every Istio build in the cluster, named, with its flavor family (only where an image tag says it).
fn builds(istio: &Istio) -> Vec<(String, String, bool)> {
    let mut found = Vec::new();
    let mut add = |what: String, v: &ObservedVersion, control_plane: bool| {
        if v.source == VersionSource::ImageTag {
            found.push((what, v.flavor.family().to_string(), control_plane));
        }
    };
    for cp in &istio.control_planes {
        add(control_plane_subject(cp), &cp.istiod.version, true);
    }
    let workload = |w: &Workload| format!("{}/{}", w.namespace, w.name);
    for w in [&istio.ztunnel, &istio.cni].into_iter().flatten() {
        add(workload(w), &w.version, false);
    }
    for g in data_plane_groups(istio) {
        add(format!("{}/{}", g.namespace, g.owner), &g.version, false);
    }
    found
}

const MSPIDER: &str = "mspider";

fn flavors(cluster: &Cluster, istio: &Istio, compat: &CompatData, out: &mut Findings) {
    let rule = &compat.mspider.no_mixed_upgrade;
    let builds = builds(istio);
    let families: BTreeSet<&str> = builds.iter().map(|(_, f, _)| f.as_str()).collect();
    let subject = "Istio build flavors";
    if families.len() <= 1 {
        if let Some(family) = families.first() {
            out.push(
                &cluster.name,
                Rule::IstioFlavorMixed,
                Severity::Pass,
                subject,
                format!(
                    "every Istio component with a tagged image is a build of the {family} family"
                ),
                &rule.source,
            );
        }
        return;
    }
    let list = |control_plane: bool| -> Vec<String> {
        builds
            .iter()
            .filter(|(_, _, cp)| *cp == control_plane)
            .map(|(what, family, _)| format!("{what} ({family})"))
            .collect()
    };
    let cp_families: BTreeSet<&str> = builds
        .iter()
        .filter(|(_, _, cp)| *cp)
        .map(|(_, f, _)| f.as_str())
        .collect();
    let families_text = families.iter().copied().collect::<Vec<_>>().join(", ");
    if !families.contains(MSPIDER) || !rule.value {
        out.push(
            &cluster.name,
            Rule::IstioFlavorMixed,
            Severity::Info,
            subject,
            format!("Istio builds of several families run here ({families_text}); no rule in the data forbids mixing them"),
            &rule.source,
        );
    } else if cp_families.len() > 1 {
        out.push(
            &cluster.name,
            Rule::IstioFlavorMixed,
            Severity::Fail,
            subject,
            format!(
                "control planes of different build families run side by side ({}); DaoCloud does not support mixed \
                 upgrades between -mspider and community builds — keep every revision on one family",
                fmt_list(&list(true), WORKLOADS_NAMED)
            ),
            &rule.source,
        );
    } else {
        let cp_family = cp_families.first().copied().unwrap_or("unknown");
        let others: Vec<String> = builds
            .iter()
            .filter(|(_, f, cp)| !*cp && f != cp_family)
            .map(|(what, family, _)| format!("{what} ({family})"))
            .collect();
        out.push(
            &cluster.name,
            Rule::IstioFlavorMixed,
            Severity::Warn,
            subject,
            format!(
                "the control plane is a {cp_family} build but other components are not: {}; DaoCloud does not support \
                 mixed -mspider and community builds — restart or reinstall them from the {cp_family} control plane",
                fmt_list(&others, WORKLOADS_NAMED)
            ),
            &rule.source,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::report::Severity;
    use crate::snapshot::{Cluster, Istio, IstioGateway, MeshNamespace};

    fn with_istio(k8s: &str, istio: Istio) -> Cluster {
        let mut c = cluster("c1", k8s);
        c.istio = Some(istio);
        c
    }

    fn one_cp(k8s: &str, pilot_tag: &str) -> Cluster {
        with_istio(
            k8s,
            istio(vec![istiod(
                "default",
                &format!("docker.io/istio/pilot:{pilot_tag}"),
            )]),
        )
    }

    #[test]
    fn kubernetes_in_the_supported_list_passes() {
        let report = run(vec![one_cp("v1.29.6-eks-db838b0", "1.20.3")]);
        let f = only(&report, "istio.k8s-support");
        assert_eq!(f.severity, Severity::Pass);
        assert_eq!(f.message, "Istio 1.20 supports Kubernetes 1.29");
        assert!(f.source.contains("istio/istio.io"), "{}", f.source);
    }

    #[test]
    fn kubernetes_only_tested_warns() {
        let report = run(vec![one_cp("v1.26.15", "1.22.3")]);
        let f = only(&report, "istio.k8s-support");
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message
                .contains("tested but not supported on Kubernetes 1.26"),
            "{}",
            f.message
        );
        assert!(f.message.contains("supported: 1.27–1.30"), "{}", f.message);
    }

    #[test]
    fn kubernetes_outside_both_lists_fails_naming_both_versions_and_the_way_out() {
        let report = run(vec![one_cp("v1.22.17", "1.9.9")]);
        let f = only(&report, "istio.k8s-support");
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message
                .starts_with("Istio 1.9 does not support Kubernetes 1.22 (supported: 1.17–1.20)"),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains("upgrade Istio to a release that supports Kubernetes 1.22 (1.11–1.16)"),
            "{}",
            f.message
        );
        // Too old a Kubernetes asks for a Kubernetes upgrade instead.
        let report = run(vec![one_cp("v1.22.17", "1.22.3")]);
        let f = only(&report, "istio.k8s-support");
        assert!(
            f.message.contains("upgrade Kubernetes to 1.27–1.30"),
            "{}",
            f.message
        );
    }

    #[test]
    fn an_istio_newer_than_the_data_is_a_warning_never_a_pass() {
        let report = run(vec![one_cp("v1.35.0", "1.40.1")]);
        let f = only(&report, "istio.version-known");
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message
                .contains("not in the compatibility data (data dated 2026-09-09)"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("update kubectl-meshup or pass --compat"),
            "{}",
            f.message
        );
        assert!(of(&report, "istio.k8s-support").is_empty());
        assert!(of(&report, "istio.eol").is_empty());
    }

    #[test]
    fn an_unreadable_istiod_version_is_a_warning() {
        let report = run(vec![one_cp("v1.29.6", "latest")]);
        let f = only(&report, "istio.version-read");
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.contains("docker.io/istio/pilot:latest"),
            "{}",
            f.message
        );
    }

    #[test]
    fn end_of_life_is_judged_at_the_given_date() {
        let c = one_cp("v1.32.1", "1.28.2"); // 1.28 ends 2026-07-01.
        let compat = crate::compat::CompatData::embedded();
        let snap = crate::snapshot::ClusterSnapshot::new(vec![c]);
        let at = |today| {
            let report = super::super::check(&snap, &compat, today);
            let f = only(&report, "istio.eol").clone();
            (f.severity, f.message)
        };
        let (sev, msg) = at("2026-11-21");
        assert_eq!(sev, Severity::Warn);
        assert!(
            msg.contains("past end of life on 2026-07-01; upgrade to a supported release"),
            "{msg}"
        );
        let (sev, msg) = at("2026-06-21");
        assert_eq!(sev, Severity::Info);
        assert!(msg.contains("in 10 days"), "{msg}");
        let (sev, msg) = at("2026-01-01");
        assert_eq!(sev, Severity::Pass);
        assert!(msg.contains("supported until 2026-07-01"), "{msg}");
        let (sev, msg) = at("21/11/2026");
        assert_eq!(sev, Severity::Warn);
        assert!(msg.contains("not YYYY-MM-DD"), "{msg}");
    }

    #[test]
    fn an_unknown_end_of_life_is_info() {
        let report = run(vec![one_cp("v1.33.1", "1.31.0")]);
        assert_eq!(only(&report, "istio.eol").severity, Severity::Info);
    }

    fn data_plane_case(proxy_tags: &[(&str, &str, u64)]) -> Cluster {
        let mut i = istio(vec![istiod("1-24", "docker.io/istio/pilot:1.24.3")]);
        for (owner, tag, pods) in proxy_tags {
            i.proxies.push(proxies(
                "shop",
                owner,
                "1-24",
                &format!("docker.io/istio/proxyv2:{tag}"),
                *pods,
            ));
        }
        with_istio("v1.30.2", i)
    }

    #[test]
    fn a_proxy_newer_than_its_control_plane_fails() {
        let report = run(vec![data_plane_case(&[("Deployment/web", "1.25.0", 3)])]);
        let f = only(&report, "istio.proxy-ahead");
        assert_eq!(f.severity, Severity::Fail);
        assert!(f.message.contains("3 pods in 1 workload (shop/Deployment/web: 3) run proxy 1.25.0, newer than istiod 1-24 (1.24.3)"), "{}", f.message);
        let report = run(vec![data_plane_case(&[("Deployment/web", "1.24.5", 1)])]);
        assert_eq!(only(&report, "istio.proxy-ahead").severity, Severity::Info);
    }

    #[test]
    fn proxies_beyond_the_allowed_lag_fail_as_one_finding_naming_workloads() {
        let owners: Vec<String> = (1..=7).map(|i| format!("Deployment/svc-{i}")).collect();
        let cases: Vec<(&str, &str, u64)> =
            owners.iter().map(|o| (o.as_str(), "1.22.1", 2)).collect();
        let report = run(vec![data_plane_case(&cases)]);
        let f = only(&report, "istio.data-plane-skew");
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message.starts_with("14 pods in 7 workloads ("),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains("and 2 more) run proxy 1.22.1, 2 minors behind istiod 1-24 (1.24.3)"),
            "{}",
            f.message
        );
        assert!(f.message.contains("at most 1 minor"), "{}", f.message);
        assert!(
            f.source.contains("control-planedata-plane-skew"),
            "{}",
            f.source
        );
    }

    #[test]
    fn proxies_within_the_lag_are_info_and_matching_ones_pass() {
        let report = run(vec![data_plane_case(&[
            ("Deployment/a", "1.23.4", 1),
            ("Deployment/b", "1.24.3", 2),
        ])]);
        let fs = of(&report, "istio.data-plane-skew");
        assert_eq!(fs.len(), 2);
        let info = fs.iter().find(|f| f.severity == Severity::Info).unwrap();
        assert!(
            info.message
                .contains("restart them to pick up the new proxy"),
            "{}",
            info.message
        );
        let pass = fs.iter().find(|f| f.severity == Severity::Pass).unwrap();
        assert!(
            pass.message.contains("matching istiod 1-24 (1.24.3)"),
            "{}",
            pass.message
        );
    }

    #[test]
    fn unreadable_proxy_versions_warn() {
        let report = run(vec![data_plane_case(&[("Deployment/a", "latest", 4)])]);
        let f = only(&report, "istio.proxy-version-read");
        assert_eq!(f.severity, Severity::Warn);
        assert!(f.message.contains("4 pods in 1 workload"), "{}", f.message);
    }

    #[test]
    fn proxies_find_their_control_plane_through_revision_tags_and_default() {
        let mut i = istio(vec![
            istiod("1-23", "docker.io/istio/pilot:1.23.2"),
            istiod("1-24", "docker.io/istio/pilot:1.24.3"),
        ]);
        i.revision_tags.insert("stable".into(), "1-24".into());
        i.revision_tags.insert("default".into(), "1-23".into());
        i.proxies.push(proxies(
            "a",
            "Deployment/x",
            "stable",
            "docker.io/istio/proxyv2:1.24.3",
            1,
        ));
        i.proxies.push(proxies(
            "b",
            "Deployment/y",
            "default",
            "docker.io/istio/proxyv2:1.23.2",
            1,
        ));
        let report = run(vec![with_istio("v1.30.2", i)]);
        let subjects: Vec<&str> = of(&report, "istio.data-plane-skew")
            .iter()
            .map(|f| f.subject.as_str())
            .collect();
        assert!(
            subjects.contains(&"proxies 1.24.3 → istiod 1-24"),
            "{subjects:?}"
        );
        assert!(
            subjects.contains(&"proxies 1.23.2 → istiod 1-23"),
            "{subjects:?}"
        );
        assert!(
            of(&report, "istio.data-plane-skew")
                .iter()
                .all(|f| f.severity == Severity::Pass)
        );
    }

    #[test]
    fn proxies_of_a_revision_nobody_serves_warn() {
        let mut i = istio(vec![
            istiod("1-23", "docker.io/istio/pilot:1.23.2"),
            istiod("1-24", "docker.io/istio/pilot:1.24.3"),
        ]);
        i.proxies.push(proxies(
            "a",
            "Deployment/x",
            "1-21",
            "docker.io/istio/proxyv2:1.21.0",
            2,
        ));
        let report = run(vec![with_istio("v1.30.2", i)]);
        let f = only(&report, "istio.proxy-control-plane");
        assert!(
            f.message.contains("revision 1-21, which no istiod serves"),
            "{}",
            f.message
        );
    }

    #[test]
    fn gateways_are_judged_once_whether_or_not_they_are_among_the_proxies() {
        let mut i = istio(vec![istiod("default", "docker.io/istio/pilot:1.24.3")]);
        i.gateways.push(IstioGateway {
            workload: workload(
                "istio-ingress",
                "istio-ingressgateway",
                "Deployment",
                "docker.io/istio/proxyv2:1.22.0",
            ),
            revision: None,
        });
        let report = run(vec![with_istio("v1.30.2", i.clone())]);
        let f = only(&report, "istio.data-plane-skew");
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message
                .contains("istio-ingress/Deployment/istio-ingressgateway"),
            "{}",
            f.message
        );
        i.proxies.push(proxies(
            "istio-ingress",
            "Deployment/istio-ingressgateway",
            "default",
            "docker.io/istio/proxyv2:1.22.0",
            1,
        ));
        let report = run(vec![with_istio("v1.30.2", i)]);
        assert_eq!(of(&report, "istio.data-plane-skew").len(), 1);
    }

    #[test]
    fn ambient_components_may_lag_by_the_rule_but_never_lead() {
        let mut i = istio(vec![istiod("default", "docker.io/istio/pilot:1.24.3")]);
        i.ztunnel = Some(workload(
            "istio-system",
            "ztunnel",
            "DaemonSet",
            "docker.io/istio/ztunnel:1.23.1",
        ));
        i.cni = Some(workload(
            "istio-system",
            "istio-cni-node",
            "DaemonSet",
            "docker.io/istio/install-cni:1.25.0",
        ));
        let report = run(vec![with_istio("v1.30.2", i.clone())]);
        let fs = of(&report, "istio.ambient-components-skew");
        let zt = fs
            .iter()
            .find(|f| f.subject.starts_with("ztunnel"))
            .unwrap();
        assert_eq!(zt.severity, Severity::Pass);
        let cni = fs
            .iter()
            .find(|f| f.subject.starts_with("istio-cni"))
            .unwrap();
        assert_eq!(cni.severity, Severity::Fail);
        assert!(
            cni.message.contains("newer than istiod default (1.24.3)"),
            "{}",
            cni.message
        );

        i.ztunnel = Some(workload(
            "istio-system",
            "ztunnel",
            "DaemonSet",
            "docker.io/istio/ztunnel:1.22.4",
        ));
        let report = run(vec![with_istio("v1.30.2", i)]);
        let zt = of(&report, "istio.ambient-components-skew")
            .into_iter()
            .find(|f| f.subject.starts_with("ztunnel"))
            .unwrap();
        assert_eq!(zt.severity, Severity::Fail);
        assert!(
            zt.message.contains("2 minors behind istiod default"),
            "{}",
            zt.message
        );
    }

    #[test]
    fn ambient_before_ga_warns_and_after_passes() {
        let mut i = istio(vec![istiod("default", "docker.io/istio/pilot:1.23.2")]);
        i.namespaces.push(MeshNamespace {
            name: "demo".into(),
            label: "istio.io/dataplane-mode".into(),
            value: "ambient".into(),
        });
        let report = run(vec![with_istio("v1.30.2", i)]);
        let f = only(&report, "istio.ambient-ga");
        assert_eq!(f.severity, Severity::Warn);
        assert!(f.message.contains("not GA (GA from 1.24)"), "{}", f.message);

        let mut cp = istiod("default", "docker.io/istio/pilot:1.24.3");
        cp.ambient_enabled = true;
        let report = run(vec![with_istio("v1.30.2", istio(vec![cp]))]);
        assert_eq!(only(&report, "istio.ambient-ga").severity, Severity::Pass);
        // Sidecar-only meshes are not judged for ambient.
        let report = run(vec![one_cp("v1.30.2", "1.23.2")]);
        assert!(of(&report, "istio.ambient-ga").is_empty());
    }

    #[test]
    fn mspider_control_planes_beside_community_ones_fail() {
        let i = istio(vec![
            istiod("1-21", "release.daocloud.io/mspider/pilot:1.21.4-mspider"),
            istiod("1-22", "docker.io/istio/pilot:1.22.3"),
        ]);
        let report = run(vec![with_istio("v1.29.6", i)]);
        let f = only(&report, "istio.flavor-mixed");
        assert_eq!(f.severity, Severity::Fail);
        assert!(f.source.contains("daocloud"), "{}", f.source);
    }

    #[test]
    fn community_proxies_under_an_mspider_control_plane_warn() {
        let mut i = istio(vec![istiod(
            "default",
            "release.daocloud.io/mspider/pilot:1.22.4-mspider",
        )]);
        i.proxies.push(proxies(
            "a",
            "Deployment/x",
            "default",
            "docker.io/istio/proxyv2:1.22.4",
            1,
        ));
        let report = run(vec![with_istio("v1.29.6", i)]);
        let f = only(&report, "istio.flavor-mixed");
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.contains("a/Deployment/x (upstream)"),
            "{}",
            f.message
        );
    }

    #[test]
    fn distroless_and_plain_builds_are_one_family() {
        let mut i = istio(vec![istiod(
            "default",
            "docker.io/istio/pilot:1.22.3-distroless",
        )]);
        i.proxies.push(proxies(
            "a",
            "Deployment/x",
            "default",
            "docker.io/istio/proxyv2:1.22.3",
            1,
        ));
        let report = run(vec![with_istio("v1.29.6", i)]);
        assert_eq!(only(&report, "istio.flavor-mixed").severity, Severity::Pass);
    }

    #[test]
    fn istiod_at_zero_ready_is_a_failure_naming_the_object_and_the_fix() {
        let mut cp = istiod("1-22", "docker.io/istio/pilot:1.22.3");
        cp.istiod.ready = 0;
        let report = run(vec![with_istio("v1.29.6", istio(vec![cp]))]);
        let f = only(&report, "istio.replicas-ready");
        assert_eq!(f.severity, Severity::Fail);
        assert_eq!(f.subject, "istiod revision 1-22");
        assert_eq!(
            f.message,
            "Deployment istio-system/istiod-1-22 (the Istio control plane of revision 1-22) has 0 of 1 replica \
             ready, so it is down; look at its pods: kubectl -n istio-system describe deployment istiod-1-22"
        );
        assert!(report.has_failures());
    }

    #[test]
    fn istiod_scaled_to_zero_fails_with_the_scale_command_and_the_recorded_count() {
        let mut cp = istiod("default", "docker.io/istio/pilot:1.22.3");
        cp.istiod.desired = 0;
        cp.istiod.ready = 0;
        let report = run(vec![with_istio("v1.29.6", istio(vec![cp.clone()]))]);
        let f = only(&report, "istio.replicas-ready");
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message.ends_with(
                "is scaled to 0 replicas, so it is down; scale it back to the replicas it usually runs \
                 (at least 1): kubectl -n istio-system scale deployment istiod --replicas=1"
            ),
            "{}",
            f.message
        );
        cp.istiod.replicas_before = Some(3);
        let report = run(vec![with_istio("v1.29.6", istio(vec![cp]))]);
        let f = only(&report, "istio.replicas-ready");
        assert!(
            f.message.contains(
                "scaled it down from 3 (annotation meshup.dev/replicas-before): resume that apply, or scale \
                 it back: kubectl -n istio-system scale deployment istiod --replicas=3"
            ),
            "{}",
            f.message
        );
    }

    #[test]
    fn every_revision_and_ambient_component_is_judged_and_partial_readiness_warns() {
        let old = istiod("1-21", "docker.io/istio/pilot:1.21.2");
        let mut new = istiod("1-22", "docker.io/istio/pilot:1.22.3");
        new.istiod.desired = 3;
        new.istiod.ready = 2;
        let mut i = istio(vec![old, new]);
        let mut cni = workload(
            "istio-system",
            "istio-cni-node",
            "DaemonSet",
            "docker.io/istio/install-cni:1.22.3",
        );
        cni.desired = 0;
        cni.ready = 0;
        i.cni = Some(cni);
        let mut ztunnel = workload(
            "istio-system",
            "ztunnel",
            "DaemonSet",
            "docker.io/istio/ztunnel:1.22.3",
        );
        ztunnel.desired = 3;
        ztunnel.ready = 3;
        i.ztunnel = Some(ztunnel);
        let report = run(vec![with_istio("v1.29.6", i)]);
        let found: Vec<(&str, Severity)> = of(&report, "istio.replicas-ready")
            .iter()
            .map(|f| (f.subject.as_str(), f.severity))
            .collect();
        assert_eq!(
            found,
            vec![
                ("istio-cni", Severity::Fail),
                ("istiod revision 1-22", Severity::Warn)
            ]
        );
        let warn = &of(&report, "istio.replicas-ready")[1];
        assert!(
            warn.message.contains("has 2 of 3 replicas ready"),
            "{}",
            warn.message
        );
        let cni = &of(&report, "istio.replicas-ready")[0];
        assert!(
            cni.message.contains("is scheduled on no node (0 desired)"),
            "{}",
            cni.message
        );
    }

    #[test]
    fn a_gateway_with_no_ready_replica_fails() {
        let mut i = istio(vec![istiod("default", "docker.io/istio/pilot:1.22.3")]);
        let mut w = workload(
            "istio-ingress",
            "istio-ingressgateway",
            "Deployment",
            "docker.io/istio/proxyv2:1.22.3",
        );
        w.desired = 2;
        w.ready = 0;
        i.gateways.push(IstioGateway {
            workload: w,
            revision: None,
        });
        let report = run(vec![with_istio("v1.29.6", i)]);
        let f = only(&report, "istio.replicas-ready");
        assert_eq!(
            (f.subject.as_str(), f.severity),
            ("gateway istio-ingress/istio-ingressgateway", Severity::Fail)
        );
    }
}
