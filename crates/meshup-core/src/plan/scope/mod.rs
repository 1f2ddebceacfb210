//! Scope: a plan may only do what `kubectl meshup plan` could have written for the clusters it was made
//! for. Pure: the plan, its own fingerprint facts and (when `apply` has it) the re-observed snapshot in,
//! the steps that reach outside out.
//!
//! The integrity hash detects accidents (a truncated or hand-edited file), not attackers: anyone can
//! recompute a sha256. What stops a resealed hostile plan is this check. The allowed sets come from the
//! plan's fingerprint facts, which `apply` binds to the live cluster (the facts must hash to the
//! fingerprint value, and that value must match the cluster's), and from what the runbooks
//! (`runbooks/*`) emit:
//!
//! - objects: the namespaces and workloads of the meshes being upgraded (istiod's namespaces and
//!   revisions, gateways, ztunnel and istio-cni, the namespaces enrolled in the mesh and the workloads
//!   that carry sidecars there, the Gloo Mesh management workloads, served discovery groups and
//!   registered clusters, the Kmesh DaemonSet);
//! - `delete-collection` only of a Gloo Mesh discovery group the cluster serves, never core resources,
//!   Secrets or CRDs, and always marked irreversible;
//! - `apply-crds` only of the Gloo Mesh chart from its https repository;
//! - tools: per tool, the subcommands and flags the runbooks use, with their values checked
//!   (`--repo` only the vendors' repositories, `--namespace` only mesh namespaces, `--set` only the
//!   keys the runbooks set); anything else (`--post-renderer`, `--kubeconfig`, `--kube-context`, `-f`,
//!   an unknown flag) is refused;
//! - chart mirrors: where the operator approves one at apply time (`apply --allow-chart-repo URL`,
//!   passed in here, never read from the plan), helm `--repo` and `apply-crds` may use it in place of
//!   the vendor's repository; the plan file alone can never widen its scope;
//! - namespace labels: only the injection labels, only on enrolled namespaces;
//! - scale: only the Gloo Mesh management Deployments, and with a snapshot only ones it shows.
//!
//! Where: each action's own rule is its `scope` answer in `plan::action` (one file per kind); what
//! the rules check against (the scope of each cluster's part of the plan, read from its fingerprint
//! facts and hops) and the checks they share are here; a tool's arguments are checked in `tools.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod tools;

use super::action;
use super::fingerprint::digest;
use super::istio_install::{hub_of, revision_name};
use super::runbooks::gloo_mesh::{CHART as GLOO_CHART, CHART_REPO as GLOO_REPO};
use super::runbooks::kmesh::KMESH_CHART;
use super::runbooks::{INJECTION_LABEL, ISTIO_CHART_REPO, REV_LABEL};
use super::{Mesh, Step, Tool, UpgradePlan};
use crate::snapshot::ClusterSnapshot;
use crate::version::Version;

/// Namespace labels a plan may set or remove: the injection and data-plane labels, nothing else
/// (never `pod-security.kubernetes.io/*`).
pub const ALLOWED_LABELS: [&str; 3] = [INJECTION_LABEL, REV_LABEL, DATAPLANE_MODE_LABEL];
const DATAPLANE_MODE_LABEL: &str = "istio.io/dataplane-mode";

/// The charts of Istio's repository a plan may install or upgrade.
const ISTIO_CHARTS: [&str; 5] = ["base", "istiod", "cni", "ztunnel", "gateway"];
/// The Istio charts that render images from their own `hub`/`tag`/`variant` values.
const IMAGE_CHARTS: [&str; 3] = ["istiod", "cni", "ztunnel"];

/// One step (or its undo) outside the plan's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeViolation {
    /// The step id, with ` (undo)` when it is the step's undo.
    pub step: String,
    pub reason: String,
}

impl fmt::Display for ScopeViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}: {}", self.step, self.reason)
    }
}

/// The first step outside the plan's scope, if any. See [`scope_violations`].
pub fn check_scope(
    plan: &UpgradePlan,
    snapshot: Option<&ClusterSnapshot>,
    allowed_chart_repos: &[String],
) -> Result<(), ScopeViolation> {
    match scope_violations(plan, snapshot, allowed_chart_repos)
        .into_iter()
        .next()
    {
        Some(v) => Err(v),
        None => Ok(()),
    }
}

/// Every step (and undo) outside the plan's scope, in plan order. `snapshot`: the cluster as observed
/// now (`apply`), which also checks that scale targets exist and image hubs are the installed ones.
/// `allowed_chart_repos`: chart repositories the operator approved (`apply --allow-chart-repo`) in
/// place of the vendors' ones; empty for `plan show`.
pub fn scope_violations(
    plan: &UpgradePlan,
    snapshot: Option<&ClusterSnapshot>,
    allowed_chart_repos: &[String],
) -> Vec<ScopeViolation> {
    let mut out = Vec::new();
    if digest(&plan.fingerprint.facts) != plan.fingerprint.value {
        out.push(ScopeViolation {
            step: "(fingerprint)".to_string(),
            reason: "the fingerprint's facts do not hash to its value, so the plan's scope cannot be trusted".to_string(),
        });
    }
    let scopes: BTreeMap<&str, ClusterScope> = plan
        .clusters
        .iter()
        .map(|c| (c.as_str(), ClusterScope::read(plan, c, snapshot)))
        .collect();
    for step in &plan.steps {
        let Some(scope) = scopes.get(step.cluster.as_str()) else {
            out.push(ScopeViolation {
                step: step.id.clone(),
                reason: format!("cluster {} is not one of the plan's clusters", step.cluster),
            });
            continue;
        };
        let cx = Cx {
            plan,
            step,
            scope,
            mirrors: allowed_chart_repos,
        };
        if let Err(reason) = action::of(&step.action).scope(&cx, false) {
            out.push(ScopeViolation {
                step: step.id.clone(),
                reason,
            });
        }
        if let Some(undo) = &step.undo
            && let Err(reason) = action::of(undo).scope(&cx, true)
        {
            out.push(ScopeViolation {
                step: format!("{} (undo)", step.id),
                reason,
            });
        }
    }
    out
}

/// What one cluster's part of a plan may touch.
#[derive(Debug, Default)]
pub(super) struct ClusterScope {
    meshes: BTreeSet<Mesh>,
    /// istiod, gateways, ztunnel, istio-cni, Gloo Mesh, Kmesh namespaces.
    mesh_namespaces: BTreeSet<String>,
    /// Namespaces enrolled in the mesh (labelled) or carrying sidecars.
    pub(super) enrolled: BTreeSet<String>,
    /// Namespace -> `Kind/name` of workloads a restart may touch.
    pub(super) workloads: BTreeMap<String, BTreeSet<String>>,
    /// Namespace -> gateway names.
    pub(super) gateways: BTreeMap<String, BTreeSet<String>>,
    /// Existing revisions and those the plan installs.
    revisions: BTreeSet<String>,
    tags: BTreeSet<String>,
    /// `Kind/namespace/name` of the Gloo Mesh management workloads -> their replicas as observed.
    pub(super) gloo_workloads: BTreeMap<String, u32>,
    /// Discovery group -> (version, resources).
    pub(super) gloo_groups: BTreeMap<String, (String, BTreeSet<String>)>,
    registered: BTreeSet<String>,
    /// Names of the Helm releases of Istio's charts the cluster has (fingerprint facts).
    helm_releases: BTreeSet<String>,
    /// Versions per mesh the plan moves between.
    versions: BTreeMap<Mesh, BTreeSet<Version>>,
    /// Image hubs of the installed istiod (with a snapshot only).
    hubs: Option<BTreeSet<String>>,
    /// `Kind/namespace/name` of workloads the snapshot shows (with a snapshot only).
    pub(super) observed: Option<BTreeSet<String>>,
}

impl ClusterScope {
    fn read(plan: &UpgradePlan, cluster: &str, snapshot: Option<&ClusterSnapshot>) -> Self {
        let mut s = ClusterScope {
            meshes: plan.targets.iter().map(|t| t.mesh).collect(),
            ..ClusterScope::default()
        };
        let prefix = format!("{cluster}/");
        for (key, value) in &plan.fingerprint.facts {
            let Some(fact) = key.strip_prefix(&prefix) else {
                continue;
            };
            let parts: Vec<&str> = fact.split('/').collect();
            match parts.as_slice() {
                ["istio", "revision", rev, "istiod"] => {
                    s.revisions.insert(rev.to_string());
                    s.mesh_ns(value);
                }
                ["istio", "revision", _, "version"] => s.version(Mesh::Istio, value),
                ["istio", "tag", tag] => {
                    s.tags.insert(tag.to_string());
                }
                ["istio", "helm", ns, name] => {
                    s.mesh_ns(&format!("HelmRelease/{ns}/{name}"));
                    s.helm_releases.insert(name.to_string());
                }
                ["istio", "namespace", ns] => {
                    s.enrolled.insert(ns.to_string());
                }
                ["istio", "sidecars", ns] => {
                    s.enrolled.insert(ns.to_string());
                    s.workloads
                        .entry(ns.to_string())
                        .or_default()
                        .extend(value.split(',').map(str::to_string));
                }
                ["istio", "gateway", ns, name] => {
                    s.mesh_namespaces.insert(ns.to_string());
                    s.gateways
                        .entry(ns.to_string())
                        .or_default()
                        .insert(name.to_string());
                }
                ["istio", "ztunnel" | "istio-cni"] | ["kmesh", "daemonset"] => s.mesh_ns(value),
                ["gloo-mesh", "discovery" | "networking" | "agent"] => {
                    s.mesh_ns(value);
                    let mut words = value.split(' ');
                    let id = words.next().unwrap_or_default().to_string();
                    let replicas = words
                        .find_map(|w| w.strip_prefix("replicas="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1);
                    s.gloo_workloads.insert(id, replicas);
                }
                ["gloo-mesh", "group", group] => {
                    let mut words = value.split(' ');
                    let version = words.next().unwrap_or_default().to_string();
                    let resources = words
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(str::to_string)
                        .collect();
                    s.gloo_groups
                        .insert(group.to_string(), (version, resources));
                }
                ["gloo-mesh", "registered", name] => {
                    s.registered.insert(name.to_string());
                }
                _ => {}
            }
        }
        for hop in plan.hops.iter().filter(|h| h.cluster == cluster) {
            let set = s.versions.entry(hop.mesh).or_default();
            set.insert(hop.from);
            set.insert(hop.to);
            if hop.mesh == Mesh::Istio {
                s.revisions.insert(revision_name(hop.to));
            }
        }
        for t in &plan.targets {
            s.versions.entry(t.mesh).or_default().insert(t.version);
        }
        if let Some(c) = snapshot.and_then(|snap| snap.clusters.iter().find(|c| c.name == cluster))
        {
            let mut observed = BTreeSet::new();
            let mut hubs = BTreeSet::new();
            if let Some(istio) = &c.istio {
                for cp in &istio.control_planes {
                    observed.insert(id(&cp.istiod));
                    hubs.extend(hub_of(&cp.istiod.version.image));
                }
            }
            if let Some(gloo) = &c.gloo_mesh {
                for w in [&gloo.discovery, &gloo.networking, &gloo.agent]
                    .into_iter()
                    .flatten()
                {
                    observed.insert(id(w));
                }
            }
            s.observed = Some(observed);
            s.hubs = Some(hubs);
        }
        s
    }

    /// `Kind/namespace/name[ rest]` -> the namespace.
    fn mesh_ns(&mut self, workload_id: &str) {
        let id = workload_id.split(' ').next().unwrap_or_default();
        if let Some(ns) = id.split('/').nth(1) {
            self.mesh_namespaces.insert(ns.to_string());
        }
    }

    /// An image tag (`1.20.3`, `1.20.3-distroless`) as a version of `mesh`.
    fn version(&mut self, mesh: Mesh, tag: &str) {
        let plain = tag.split('-').next().unwrap_or_default();
        if let Ok(v) = Version::parse(plain) {
            self.versions.entry(mesh).or_default().insert(v);
        }
    }
}

fn id(w: &crate::snapshot::Workload) -> String {
    format!("{}/{}/{}", w.kind, w.namespace, w.name)
}

/// What a step's scope rule (`plan::action`) is checked against: the plan, the step, what its
/// cluster's part of the plan may touch, and the chart mirrors approved at apply time.
pub(super) struct Cx<'a> {
    pub(super) plan: &'a UpgradePlan,
    pub(super) step: &'a Step,
    pub(super) scope: &'a ClusterScope,
    /// Chart repositories approved at apply time in place of the vendors'.
    pub(super) mirrors: &'a [String],
}

/// A scope rule's answer: why not, as the end of `the plan reaches outside its scope at step …: `.
pub(super) type Checked = Result<(), String>;

impl Cx<'_> {
    pub(super) fn needs(&self, mesh: Mesh, what: &str) -> Checked {
        if self.scope.meshes.contains(&mesh) {
            Ok(())
        } else {
            Err(format!(
                "{what} is part of the {} upgrade, but the plan does not target {mesh}",
                mesh.title()
            ))
        }
    }

    pub(super) fn mesh_namespace(&self, ns: &str, what: &str) -> Checked {
        if self.scope.mesh_namespaces.contains(ns) {
            Ok(())
        } else {
            Err(format!(
                "{what} in namespace {ns}, which is not a namespace of the meshes being upgraded ({})",
                list(&self.scope.mesh_namespaces)
            ))
        }
    }

    pub(super) fn label(&self, key: &str, value: Option<&str>) -> Checked {
        let ok = match (key, value) {
            (_, None) => ALLOWED_LABELS.contains(&key),
            (INJECTION_LABEL, Some(v)) => matches!(v, "enabled" | "disabled"),
            (REV_LABEL, Some(v)) => self.scope.revisions.contains(v) || self.scope.tags.contains(v),
            (DATAPLANE_MODE_LABEL, Some(v)) => matches!(v, "ambient" | "none"),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        if !ALLOWED_LABELS.contains(&key) {
            return Err(format!(
                "sets the label {key}; a plan only sets {}",
                ALLOWED_LABELS.join(", ")
            ));
        }
        Err(format!(
            "sets {key}={}, which is not a revision, tag or value of this plan",
            value.unwrap_or_default()
        ))
    }

    /// Whether `repo` is `vendor`'s chart repository or one the operator approved in its place.
    pub(super) fn chart_repo(&self, repo: &str, vendor: &str) -> bool {
        same_repo(repo, vendor) || self.mirrors.iter().any(|m| same_repo(repo, m))
    }

    /// `, or a mirror allowed with --allow-chart-repo (…)` for messages; a hint when there is none.
    pub(super) fn mirrors_named(&self) -> String {
        if self.mirrors.is_empty() {
            " (or a mirror approved with `apply --allow-chart-repo URL`)".to_string()
        } else {
            format!(
                " or an approved mirror ({})",
                list(&self.mirrors.iter().cloned().collect())
            )
        }
    }

    pub(super) fn chart_version(&self, mesh: Mesh, version: &str) -> Checked {
        let known = self.scope.versions.get(&mesh);
        match Version::parse(version.trim_start_matches('v')) {
            Ok(v) if known.is_some_and(|k| k.contains(&v)) => Ok(()),
            _ => Err(format!(
                "uses {} version {version}, which is not one this plan moves between ({})",
                mesh.title(),
                known
                    .map(|k| list(&k.iter().map(ToString::to_string).collect()))
                    .unwrap_or_else(|| "none".to_string())
            )),
        }
    }
}

/// Two chart repository URLs name the same repository (a trailing `/` aside).
fn same_repo(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A chart repository an operator may approve with `apply --allow-chart-repo`: https, or plain http
/// only on a loopback address (an air-gapped mirror reached through a local tunnel or proxy), since
/// anyone on the path of a plain-http repository can swap the charts. The URL as given, or why not.
pub fn allowed_chart_repo(text: &str) -> Result<String, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("`{text}` is not a URL ({e}): give the mirror's https URL"))?;
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<core::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        _ if host.is_empty() => Err(format!(
            "`{text}` names no host: give the mirror's full URL, such as https://charts.example.internal/gloo-mesh"
        )),
        Some("https") => Ok(text.to_string()),
        Some("http") if loopback => Ok(text.to_string()),
        Some("http") => Err(format!(
            "`{text}` is plain http on {host}, where anyone on the path could swap the charts: serve the mirror over https (plain http is allowed only on a loopback address)"
        )),
        _ => Err(format!(
            "`{text}` is not an http(s) chart repository: give the mirror's https URL"
        )),
    }
}

/// Whether `group` is a Gloo Mesh discovery group (`discovery.mesh.gloo.solo.io`, or Service Mesh
/// Hub's `discovery.smh.solo.io`).
pub(super) fn is_discovery_group(group: &str) -> bool {
    group.starts_with("discovery.") && group.ends_with(".solo.io")
}
pub(super) fn list(items: &BTreeSet<String>) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests;
