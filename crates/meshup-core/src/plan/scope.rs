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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::fingerprint::digest;
use super::istio_install::{hub_of, revision_name};
use super::runbooks::gloo_mesh::{CHART as GLOO_CHART, CHART_REPO as GLOO_REPO};
use super::runbooks::kmesh::KMESH_CHART;
use super::runbooks::{INJECTION_LABEL, ISTIO_CHART_REPO, REV_LABEL};
use super::{Action, Mesh, Renewal, Step, Tool, UpgradePlan, WaitCondition};
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
        if let Err(reason) = cx.action(&step.action, false) {
            out.push(ScopeViolation {
                step: step.id.clone(),
                reason,
            });
        }
        if let Some(undo) = &step.undo
            && let Err(reason) = cx.action(undo, true)
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
struct ClusterScope {
    meshes: BTreeSet<Mesh>,
    /// istiod, gateways, ztunnel, istio-cni, Gloo Mesh, Kmesh namespaces.
    mesh_namespaces: BTreeSet<String>,
    /// Namespaces enrolled in the mesh (labelled) or carrying sidecars.
    enrolled: BTreeSet<String>,
    /// Namespace -> `Kind/name` of workloads a restart may touch.
    workloads: BTreeMap<String, BTreeSet<String>>,
    /// Namespace -> gateway names.
    gateways: BTreeMap<String, BTreeSet<String>>,
    /// Existing revisions and those the plan installs.
    revisions: BTreeSet<String>,
    tags: BTreeSet<String>,
    /// `Kind/namespace/name` of the Gloo Mesh management workloads -> their replicas as observed.
    gloo_workloads: BTreeMap<String, u32>,
    /// Discovery group -> (version, resources).
    gloo_groups: BTreeMap<String, (String, BTreeSet<String>)>,
    registered: BTreeSet<String>,
    /// Names of the Helm releases of Istio's charts the cluster has (fingerprint facts).
    helm_releases: BTreeSet<String>,
    /// Versions per mesh the plan moves between.
    versions: BTreeMap<Mesh, BTreeSet<Version>>,
    /// Image hubs of the installed istiod (with a snapshot only).
    hubs: Option<BTreeSet<String>>,
    /// `Kind/namespace/name` of workloads the snapshot shows (with a snapshot only).
    observed: Option<BTreeSet<String>>,
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

struct Cx<'a> {
    plan: &'a UpgradePlan,
    step: &'a Step,
    scope: &'a ClusterScope,
    /// Chart repositories approved at apply time in place of the vendors'.
    mirrors: &'a [String],
}

type Checked = Result<(), String>;

impl Cx<'_> {
    fn needs(&self, mesh: Mesh, what: &str) -> Checked {
        if self.scope.meshes.contains(&mesh) {
            Ok(())
        } else {
            Err(format!(
                "{what} is part of the {} upgrade, but the plan does not target {mesh}",
                mesh.title()
            ))
        }
    }

    fn mesh_namespace(&self, ns: &str, what: &str) -> Checked {
        if self.scope.mesh_namespaces.contains(ns) {
            Ok(())
        } else {
            Err(format!(
                "{what} in namespace {ns}, which is not a namespace of the meshes being upgraded ({})",
                list(&self.scope.mesh_namespaces)
            ))
        }
    }

    fn action(&self, action: &Action, undo: bool) -> Checked {
        match action {
            Action::Scale {
                target, replicas, ..
            } => {
                self.needs(Mesh::GlooMesh, "scaling a workload")?;
                let key = format!("{}/{}/{}", target.kind, target.namespace, target.name);
                let Some(observed) = self.scope.gloo_workloads.get(&key) else {
                    return Err(format!(
                        "scales {} {}/{}, which is not a Gloo Mesh management workload of this cluster; only {} may be scaled",
                        target.kind,
                        target.namespace,
                        target.name,
                        list(&self.scope.gloo_workloads.keys().cloned().collect())
                    ));
                };
                // The runbook scales to zero, back to one, and its undo restores what was observed.
                if ![0, 1, (*observed).max(1)].contains(replicas) {
                    return Err(format!(
                        "scales {} {}/{} to {replicas} replicas; the runbook only scales to 0, to 1 or back to the {observed} observed",
                        target.kind, target.namespace, target.name
                    ));
                }
                if let Some(observed) = &self.scope.observed
                    && !observed.contains(&key)
                {
                    return Err(format!(
                        "scales {} {}/{}, which the cluster does not have",
                        target.kind, target.namespace, target.name
                    ));
                }
                Ok(())
            }
            Action::DeleteCollection {
                group,
                version,
                resource,
                namespace,
            } => {
                self.needs(Mesh::GlooMesh, "deleting a collection")?;
                if undo {
                    return Err("an undo may not delete anything".to_string());
                }
                let what = if group.is_empty() {
                    format!("deletes all {resource} (core API)")
                } else {
                    format!("deletes all {resource}.{group}")
                };
                let Some((served, resources)) = self
                    .scope
                    .gloo_groups
                    .get(group)
                    .filter(|_| is_discovery_group(group))
                else {
                    return Err(format!(
                        "{what}: only the Gloo Mesh discovery group the cluster serves may be deleted from ({}), never core resources, Secrets or CRDs",
                        list(
                            &self
                                .scope
                                .gloo_groups
                                .keys()
                                .filter(|g| is_discovery_group(g))
                                .cloned()
                                .collect()
                        )
                    ));
                };
                if served != version || !resources.contains(resource) {
                    return Err(format!(
                        "{what}/{version}: the cluster serves {group}/{served} with {}",
                        list(resources)
                    ));
                }
                if let Some(ns) = namespace {
                    self.mesh_namespace(ns, &what)?;
                }
                if !self.step.irreversible {
                    return Err(format!(
                        "{what} but is not marked irreversible, so it would run without the irreversible-step confirmation"
                    ));
                }
                Ok(())
            }
            Action::ApplyCrds {
                chart,
                repo,
                version,
            } => {
                self.needs(Mesh::GlooMesh, "applying CRDs")?;
                let expected = GLOO_CHART;
                if *chart != expected || !self.chart_repo(repo, GLOO_REPO) {
                    return Err(format!(
                        "applies the CRDs of chart {chart} from {repo}; only {expected} from {GLOO_REPO}{} may be applied",
                        self.mirrors_named()
                    ));
                }
                self.chart_version(Mesh::GlooMesh, version)
            }
            Action::Run { tool, args, .. } => self.tool(*tool, args, false),
            Action::Wait { condition, .. } => match condition {
                WaitCondition::RolloutComplete { target } => {
                    if !matches!(
                        target.kind.as_str(),
                        "Deployment" | "StatefulSet" | "DaemonSet"
                    ) {
                        return Err(format!("waits for a {}, not a workload", target.kind));
                    }
                    self.mesh_namespace(&target.namespace, "waits for a rollout")
                }
                WaitCondition::ResourcesPresent { group, .. } => {
                    if is_discovery_group(group) {
                        Ok(())
                    } else {
                        Err(format!(
                            "waits for resources of {group}, not a Gloo Mesh discovery group"
                        ))
                    }
                }
            },
            Action::LabelNamespace { namespace, labels } => {
                self.needs(Mesh::Istio, "labelling a namespace")?;
                if !self.scope.enrolled.contains(namespace) {
                    return Err(format!(
                        "labels namespace {namespace}, which is not enrolled in the mesh ({})",
                        list(&self.scope.enrolled)
                    ));
                }
                for (key, value) in labels {
                    self.label(key, value.as_deref())?;
                }
                Ok(())
            }
            Action::RestartWorkloads {
                namespace,
                workloads,
            } => {
                self.needs(Mesh::Istio, "restarting workloads")?;
                let sidecars = self.scope.workloads.get(namespace);
                let gateways = self.scope.gateways.get(namespace);
                for w in workloads {
                    let name = w.split_once('/').map_or("", |(_, n)| n);
                    let known = sidecars.is_some_and(|s| s.contains(w))
                        || gateways.is_some_and(|g| g.contains(name));
                    if !known || Renewal::of_owner(w) != Renewal::Restart {
                        return Err(format!(
                            "restarts {w} in {namespace}, which is not a workload carrying a proxy there"
                        ));
                    }
                }
                Ok(())
            }
            Action::Gate { .. } => Ok(()),
            Action::Manual { command, .. } => match command.as_deref() {
                None => Ok(()),
                Some([]) => Err("shows an empty command".to_string()),
                Some([program, args @ ..]) => {
                    let tool = [Tool::Helm, Tool::Istioctl, Tool::Meshctl]
                        .into_iter()
                        .find(|t| t.program() == program)
                        .ok_or_else(|| {
                            format!(
                                "asks a person to run {program}; manual steps only show helm, istioctl or meshctl commands"
                            )
                        })?;
                    self.tool(tool, args, true)
                }
            },
        }
    }

    fn label(&self, key: &str, value: Option<&str>) -> Checked {
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
    fn chart_repo(&self, repo: &str, vendor: &str) -> bool {
        same_repo(repo, vendor) || self.mirrors.iter().any(|m| same_repo(repo, m))
    }

    /// `, or a mirror allowed with --allow-chart-repo (…)` for messages; a hint when there is none.
    fn mirrors_named(&self) -> String {
        if self.mirrors.is_empty() {
            " (or a mirror approved with `apply --allow-chart-repo URL`)".to_string()
        } else {
            format!(
                " or an approved mirror ({})",
                list(&self.mirrors.iter().cloned().collect())
            )
        }
    }

    fn chart_version(&self, mesh: Mesh, version: &str) -> Checked {
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

    fn tool(&self, tool: Tool, args: &[String], manual: bool) -> Checked {
        let parsed = Parsed::read(args);
        let sub: Vec<&str> = parsed.positional.iter().map(String::as_str).collect();
        let program = tool.program();
        let known: &[&str] = match tool {
            Tool::Helm => &[
                "--short",
                "--repo",
                "--version",
                "--namespace",
                "-n",
                "--reuse-values",
                "--reset-values",
                "--reset-then-reuse-values",
                "--wait",
                "--set",
            ],
            Tool::Istioctl => &[
                "--remote",
                "-y",
                "--skip-confirmation",
                "--set",
                "--revision",
                "--overwrite",
            ],
            Tool::Meshctl => &["--cluster-name", "--remote-context", "--mgmt-context"],
        };
        if let Some((flag, _)) = parsed
            .flags
            .iter()
            .find(|(f, _)| !known.contains(&f.as_str()))
        {
            return Err(format!(
                "{program} flag {flag} is not one the runbooks use ({})",
                known.join(", ")
            ));
        }
        match (tool, sub.as_slice()) {
            (Tool::Helm, ["version"]) => parsed.only(program, &[("--short", false)]),
            (Tool::Helm, ["upgrade" | "install", release, chart]) => {
                self.helm_chart(&parsed, release, chart)
            }
            (Tool::Helm, ["uninstall", release]) => {
                self.needs(Mesh::Istio, "helm uninstall")?;
                parsed.only(
                    program,
                    &[("--namespace", true), ("-n", true), ("--wait", false)],
                )?;
                if !self.istiod_release(release) {
                    return Err(format!(
                        "helm uninstall {release}: only the istiod release of a revision this plan moves between may be removed"
                    ));
                }
                for ns in parsed
                    .values("--namespace")
                    .into_iter()
                    .chain(parsed.values("-n"))
                {
                    self.mesh_namespace(ns, &format!("helm release {release}"))?;
                }
                Ok(())
            }
            (Tool::Istioctl, ["version"]) => parsed.only(program, &[("--remote", true)]),
            (Tool::Istioctl, ["install"]) => {
                self.needs(Mesh::Istio, "istioctl install")?;
                parsed.only(
                    program,
                    &[
                        ("-y", false),
                        ("--skip-confirmation", false),
                        ("--set", true),
                    ],
                )?;
                for set in parsed.values("--set") {
                    self.istioctl_set(set)?;
                }
                Ok(())
            }
            (Tool::Istioctl, ["uninstall"]) => {
                self.needs(Mesh::Istio, "istioctl uninstall")?;
                parsed.only(
                    program,
                    &[
                        ("-y", false),
                        ("--skip-confirmation", false),
                        ("--revision", true),
                    ],
                )?;
                let revisions = parsed.values("--revision");
                if revisions.len() != 1 {
                    return Err(
                        "istioctl uninstall must name exactly one --revision (never --purge)"
                            .to_string(),
                    );
                }
                self.revision(revisions[0])
            }
            (Tool::Istioctl, ["tag", "set", tag]) => {
                self.needs(Mesh::Istio, "istioctl tag set")?;
                parsed.only(program, &[("--revision", true), ("--overwrite", false)])?;
                if !self.scope.tags.contains(*tag) {
                    return Err(format!(
                        "moves revision tag {tag}, which the cluster does not have ({})",
                        list(&self.scope.tags)
                    ));
                }
                for r in parsed.values("--revision") {
                    self.revision(r)?;
                }
                Ok(())
            }
            (Tool::Meshctl, ["check" | "version"]) => parsed.only(program, &[]),
            (Tool::Meshctl, ["cluster", "register", rest @ ..]) => {
                self.needs(Mesh::GlooMesh, "meshctl cluster register")?;
                parsed.only(
                    program,
                    &[
                        ("--cluster-name", true),
                        ("--remote-context", true),
                        ("--mgmt-context", true),
                    ],
                )?;
                let named: Vec<&str> = match rest {
                    ["community", name] => vec![name],
                    [] => parsed.values("--cluster-name"),
                    _ => vec![],
                };
                let [name] = named.as_slice() else {
                    return Err(
                        "meshctl cluster register must name exactly one registered cluster"
                            .to_string(),
                    );
                };
                if !self.scope.registered.contains(*name) {
                    return Err(format!(
                        "registers cluster {name}, which is not registered with this management plane ({})",
                        list(&self.scope.registered)
                    ));
                }
                for ctx in parsed.values("--mgmt-context") {
                    if ctx != self.step.cluster {
                        return Err(format!(
                            "--mgmt-context {ctx} is not the step's cluster {}",
                            self.step.cluster
                        ));
                    }
                }
                for ctx in parsed.values("--remote-context") {
                    let placeholder = manual && ctx.starts_with('<') && ctx.ends_with('>');
                    if !placeholder
                        && (ctx != *name || !self.plan.clusters.iter().any(|c| c == ctx))
                    {
                        return Err(format!(
                            "--remote-context {ctx} is not the registered cluster's own context among the plan's clusters"
                        ));
                    }
                }
                Ok(())
            }
            _ => Err(format!(
                "runs `{program} {}`, which is not a {program} command the runbooks use",
                sub.join(" ")
            )),
        }
    }

    fn revision(&self, revision: &str) -> Checked {
        if self.scope.revisions.contains(revision) {
            Ok(())
        } else {
            Err(format!(
                "names revision {revision}, which is neither installed nor installed by this plan ({})",
                list(&self.scope.revisions)
            ))
        }
    }

    fn istioctl_set(&self, set: &str) -> Checked {
        let (key, value) = set.split_once('=').unwrap_or((set, ""));
        match key {
            "revision" => self.revision(value),
            "profile" if value == "ambient" => Ok(()),
            "values.pilot.env.PILOT_ENABLE_AMBIENT" if value == "true" => Ok(()),
            "hub" => self.hub(value),
            "tag" => self.image_tag(value),
            _ => Err(format!(
                "istioctl install --set {set}: the runbooks only set revision, profile=ambient, hub, tag and values.pilot.env.PILOT_ENABLE_AMBIENT=true"
            )),
        }
    }

    /// The istiod chart's release of a revision the plan moves between (`istiod-<rev>`, `istiod` for
    /// the default revision), or an istiod release the cluster has (fingerprint facts).
    fn istiod_release(&self, release: &str) -> bool {
        release == "istiod"
            || release
                .strip_prefix("istiod-")
                .is_some_and(|r| self.scope.revisions.contains(r))
            || self.scope.helm_releases.contains(release)
    }

    fn hub(&self, hub: &str) -> Checked {
        match &self.scope.hubs {
            Some(hubs) if !hubs.contains(hub) => Err(format!(
                "sets the image hub {hub}, but the installed istiod comes from {}",
                list(hubs)
            )),
            _ => Ok(()),
        }
    }

    fn image_tag(&self, tag: &str) -> Checked {
        let (version, flavor) = tag.split_once('-').unwrap_or((tag, ""));
        if !flavor.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "sets the image tag {tag}, which is not VERSION[-FLAVOR]"
            ));
        }
        self.chart_version(Mesh::Istio, version)
    }

    fn helm_chart(&self, parsed: &Parsed, release: &str, chart: &str) -> Checked {
        parsed.only(
            "helm",
            &[
                ("--repo", true),
                ("--version", true),
                ("--namespace", true),
                ("-n", true),
                ("--reuse-values", false),
                ("--reset-values", false),
                ("--reset-then-reuse-values", false),
                ("--wait", false),
                ("--set", true),
            ],
        )?;
        let repos = parsed.values("--repo");
        let repo = match repos.as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => return Err("helm is given --repo twice".to_string()),
        };
        let from = |vendor: &str| repo.is_some_and(|r| self.chart_repo(r, vendor));
        let (mesh, releases_ok) = match (repo, chart) {
            (Some(_), c) if ISTIO_CHARTS.contains(&c) && from(ISTIO_CHART_REPO) => {
                let rev_release = self.istiod_release(release);
                let gateway = self.scope.gateways.values().any(|g| g.contains(release));
                let ok = match c {
                    "base" => release == "istio-base",
                    "istiod" => release == "istiod" || rev_release,
                    "cni" => release == "istio-cni",
                    "ztunnel" => release == "ztunnel",
                    _ => gateway,
                };
                (Mesh::Istio, ok)
            }
            (Some(_), GLOO_CHART) if from(GLOO_REPO) => (Mesh::GlooMesh, release == GLOO_CHART),
            (None, KMESH_CHART) => (Mesh::Kmesh, release == "kmesh"),
            (Some(other), _) => {
                return Err(format!(
                    "helm --repo {other} is not a vendor chart repository this plan uses ({ISTIO_CHART_REPO}, {GLOO_REPO}){}",
                    self.mirrors_named()
                ));
            }
            (None, _) => {
                return Err(format!(
                    "helm chart {chart} is not one of the meshes' charts"
                ));
            }
        };
        if !releases_ok {
            return Err(format!(
                "helm release {release} of chart {chart} is not a release of the meshes being upgraded"
            ));
        }
        // A manual step may set istiod's ambient flag on a Kmesh plan; a run step needs its mesh.
        if !matches!(self.step.action, Action::Manual { .. }) {
            self.needs(mesh, &format!("helm upgrade of {chart}"))?;
        }
        for v in parsed.values("--version") {
            self.chart_version(mesh, v)?;
        }
        for ns in parsed
            .values("--namespace")
            .into_iter()
            .chain(parsed.values("-n"))
        {
            self.mesh_namespace(ns, &format!("helm release {release}"))?;
        }
        for set in parsed.values("--set") {
            let (key, value) = set.split_once('=').unwrap_or((set, ""));
            match key {
                "global.hub" => self.hub(value)?,
                "global.tag" if mesh == Mesh::Istio => self.image_tag(value)?,
                // The charts' own image keys (`IstioContext::image_values`).
                "hub" if mesh == Mesh::Istio && IMAGE_CHARTS.contains(&chart) => self.hub(value)?,
                "tag" if mesh == Mesh::Istio && IMAGE_CHARTS.contains(&chart) => {
                    self.image_tag(value)?
                }
                "global.variant" | "variant"
                    if mesh == Mesh::Istio
                        && IMAGE_CHARTS.contains(&chart)
                        && ["", "distroless"].contains(&value) => {}
                "pilot.env.PILOT_ENABLE_AMBIENT" if mesh == Mesh::Istio && value == "true" => {}
                "revision" if mesh == Mesh::Istio && ["istiod", "gateway"].contains(&chart) => {
                    self.revision(value)?
                }
                _ => {
                    return Err(format!(
                        "helm --set {set}: the runbooks only set global.hub, global.tag, global.variant (distroless or none), the same keys of istiod, cni and ztunnel, revision (istiod, gateway) and pilot.env.PILOT_ENABLE_AMBIENT=true"
                    ));
                }
            }
        }
        Ok(())
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
fn is_discovery_group(group: &str) -> bool {
    group.starts_with("discovery.") && group.ends_with(".solo.io")
}

/// Arguments split into positionals and flags (`--flag value`, `--flag=value`, `-y`).
struct Parsed {
    positional: Vec<String>,
    /// (flag, value) in order; the value is what follows `=` or the next word for flags that take one.
    flags: Vec<(String, Option<String>)>,
}

/// Flags whose value is the next word when not given with `=`.
const TAKES_VALUE: [&str; 9] = [
    "--repo",
    "--version",
    "--namespace",
    "-n",
    "--set",
    "--revision",
    "--cluster-name",
    "--remote-context",
    "--mgmt-context",
];

impl Parsed {
    fn read(args: &[String]) -> Self {
        let mut positional = Vec::new();
        let mut flags = Vec::new();
        let mut words = args.iter();
        while let Some(word) = words.next() {
            if word.starts_with('-') && word.len() > 1 {
                match word.split_once('=') {
                    Some((flag, value)) => flags.push((flag.to_string(), Some(value.to_string()))),
                    None if TAKES_VALUE.contains(&word.as_str()) => {
                        flags.push((word.clone(), words.next().cloned()));
                    }
                    None => flags.push((word.clone(), None)),
                }
            } else {
                positional.push(word.clone());
            }
        }
        Parsed { positional, flags }
    }

    /// Every flag must be one of `allowed` (name, takes a value).
    fn only(&self, program: &str, allowed: &[(&str, bool)]) -> Checked {
        for (flag, value) in &self.flags {
            match allowed.iter().find(|(name, _)| name == flag) {
                Some((_, true)) if value.is_none() => {
                    return Err(format!("{program} {flag} has no value"));
                }
                Some((_, false)) if value.is_some() => {
                    return Err(format!("{program} {flag} takes no value"));
                }
                Some(_) => {}
                None => {
                    return Err(format!(
                        "{program} flag {flag} is not one the runbooks use{}",
                        if allowed.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (allowed here: {})",
                                allowed
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ));
                }
            }
        }
        Ok(())
    }

    fn values(&self, flag: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(f, _)| f == flag)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}

fn list(items: &BTreeSet<String>) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::CompatData;
    use crate::plan::{PlanRequest, Strategy, Target, plan};

    /// Every snapshot the planner is tested and shown with.
    const SNAPSHOTS: [(&str, &str); 10] = [
        (
            "gloo",
            include_str!("../../../../tests/fixtures/plan/gloo-mesh-0.12-two-clusters.yaml"),
        ),
        (
            "old-k8s",
            include_str!("../../../../tests/fixtures/plan/istio-1.20-k8s-1.27.yaml"),
        ),
        (
            "canary",
            include_str!("../../../../tests/fixtures/plan/istio-1.20-k8s-1.29.yaml"),
        ),
        (
            "new-k8s",
            include_str!("../../../../tests/fixtures/plan/istio-1.22-k8s-1.31.yaml"),
        ),
        (
            "ambient",
            include_str!("../../../../tests/fixtures/plan/istio-ambient-1.23.yaml"),
        ),
        (
            "kmesh",
            include_str!("../../../../tests/fixtures/plan/kmesh-1.0-dual-engine.yaml"),
        ),
        (
            "mspider",
            include_str!("../../../../tests/fixtures/plan/mspider-mixed.yaml"),
        ),
        (
            "example-istio",
            include_str!("../../../../examples/istio-1.20-eks.yaml"),
        ),
        (
            "example-gloo",
            include_str!("../../../../examples/gloo-mesh-fleet.yaml"),
        ),
        (
            "example-kmesh",
            include_str!("../../../../examples/kmesh.yaml"),
        ),
    ];

    fn snapshot(text: &str) -> ClusterSnapshot {
        serde_saphyr::from_str(text).expect("fixture snapshot")
    }

    /// Every plan the planner makes from every fixture: each mesh at each version the data knows
    /// (and a few it does not), both strategies, with and without a Kubernetes upgrade and downgrades.
    fn every_plan() -> Vec<(String, UpgradePlan, ClusterSnapshot)> {
        let compat = CompatData::embedded();
        let mut targets: Vec<String> = (5..=33).map(|m| format!("istio=1.{m}")).collect();
        targets.extend(
            [
                "gloo-mesh=0.12",
                "gloo-mesh=1.0",
                "gloo-mesh=1.1",
                "gloo-mesh=1.2",
            ]
            .map(String::from),
        );
        targets.extend(["kmesh=0.5", "kmesh=1.0", "kmesh=1.1", "kmesh=1.2"].map(String::from));
        let mut combos: Vec<Vec<Target>> = targets
            .iter()
            .map(|t| vec![t.parse().expect("target")])
            .collect();
        for istio in (20..=26).map(|m| format!("istio=1.{m}")) {
            for other in ["kmesh=1.1", "gloo-mesh=1.1"] {
                combos.push(vec![istio.parse().expect("t"), other.parse().expect("t")]);
            }
        }
        let mut out = Vec::new();
        for (name, text) in SNAPSHOTS {
            let snap = snapshot(text);
            for targets in &combos {
                for strategy in [Strategy::Canary, Strategy::InPlace] {
                    for (k8s, down) in [(false, false), (true, false), (true, true)] {
                        let request = PlanRequest {
                            targets: targets.clone(),
                            strategy,
                            include_kubernetes_upgrade: k8s,
                            allow_downgrade: down,
                            chart_repos: Default::default(),
                            tool_version: "0.1.0".into(),
                        };
                        if let Ok(p) = plan(&snap, &compat, &request) {
                            let label =
                                format!("{name} {targets:?} {strategy:?} k8s={k8s} down={down}");
                            out.push((label, p, snap.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_plan_the_planner_makes_is_in_scope() {
        let plans = every_plan();
        let steps: usize = plans.iter().map(|(_, p, _)| p.steps.len()).sum();
        eprintln!("{} plans, {steps} steps", plans.len());
        assert!(
            plans.len() > 100 && steps > 1000,
            "{} plans, {steps} steps",
            plans.len()
        );
        for (label, p, snap) in &plans {
            assert_eq!(scope_violations(p, None, &[]), [], "{label} (plan show)");
            assert_eq!(scope_violations(p, Some(snap), &[]), [], "{label} (apply)");
        }
        // Every action type a runbook emits was judged above.
        let kinds: BTreeSet<&str> = plans
            .iter()
            .flat_map(|(_, p, _)| &p.steps)
            .map(|s| s.action.type_name())
            .collect();
        assert_eq!(kinds.len(), 9, "{kinds:?}");
    }

    fn gloo_and_istio() -> (UpgradePlan, UpgradePlan) {
        let compat = CompatData::embedded();
        let request = |t: &str| PlanRequest {
            targets: vec![t.parse().expect("target")],
            tool_version: "0.1.0".into(),
            ..PlanRequest::default()
        };
        let gloo = plan(
            &snapshot(SNAPSHOTS[0].1),
            &compat,
            &request("gloo-mesh=1.1"),
        )
        .expect("gloo");
        let istio =
            plan(&snapshot(SNAPSHOTS[2].1), &compat, &request("istio=1.22")).expect("istio");
        (gloo, istio)
    }

    fn first_step(plan: &mut UpgradePlan, kind: &str) -> usize {
        plan.steps
            .iter()
            .position(|s| s.action.type_name() == kind)
            .unwrap_or_else(|| panic!("no {kind} step"))
    }

    /// The reason the edited plan is refused, naming the edited step.
    fn refused(plan: &UpgradePlan, at: usize) -> String {
        let v = check_scope(plan, None, &[]).expect_err("out of scope");
        assert_eq!(v.step, plan.steps[at].id, "{v}");
        v.reason
    }

    #[test]
    fn the_hostile_edits_of_issue_16_are_out_of_scope() {
        let (gloo, istio) = gloo_and_istio();
        let delete = |group: &str, resource: &str, namespace: Option<&str>| {
            let mut p = gloo.clone();
            let i = first_step(&mut p, "delete-collection");
            p.steps[i].action = Action::DeleteCollection {
                group: group.into(),
                version: "v1".into(),
                resource: resource.into(),
                namespace: namespace.map(String::from),
            };
            refused(&p, i)
        };
        assert!(delete("", "secrets", None).contains("never core resources, Secrets or CRDs"));
        assert!(
            delete("apiextensions.k8s.io", "customresourcedefinitions", None)
                .contains("only the Gloo Mesh discovery group")
        );
        assert!(delete("", "configmaps", Some("kube-system")).contains("discovery group"));

        let mut p = gloo.clone();
        let i = first_step(&mut p, "scale");
        if let Action::Scale {
            target, replicas, ..
        } = &mut p.steps[i].action
        {
            target.namespace = "kube-system".into();
            target.name = "coredns".into();
            *replicas = 0;
        }
        assert!(refused(&p, i).contains(
            "Deployment kube-system/coredns, which is not a Gloo Mesh management workload"
        ));

        let mut p = gloo.clone();
        let i = first_step(&mut p, "scale");
        if let Action::Scale { replicas, .. } = &mut p.steps[i].action {
            *replicas = 500;
        }
        assert!(refused(&p, i).contains(
            "to 500 replicas; the runbook only scales to 0, to 1 or back to the 1 observed"
        ));

        let mut p = gloo.clone();
        let i = first_step(&mut p, "apply-crds");
        if let Action::ApplyCrds { repo, .. } = &mut p.steps[i].action {
            *repo = "http://charts.example.com/gloo-mesh".into();
        }
        assert!(refused(&p, i).contains("only gloo-mesh from https://"));

        let helm = p
            .steps
            .iter()
            .position(|s| {
                matches!(
                    &s.action,
                    Action::Run {
                        tool: Tool::Helm,
                        ..
                    }
                )
            })
            .expect("helm step");
        for extra in [
            vec!["--post-renderer", "/tmp/evil"],
            vec!["--kubeconfig", "/tmp/other"],
            vec!["--kube-context=prod"],
            vec!["--context", "prod"],
            vec!["--repo", "http://charts.example.com"],
        ] {
            let mut p = gloo.clone();
            if let Action::Run { args, .. } = &mut p.steps[helm].action {
                args.extend(extra.iter().map(|a| a.to_string()));
            }
            let reason = refused(&p, helm);
            assert!(
                reason.contains(extra[0].split('=').next().unwrap_or_default())
                    || reason.contains("twice"),
                "{extra:?}: {reason}"
            );
        }

        let mut p = istio.clone();
        let i = first_step(&mut p, "label-namespace");
        p.steps[i].action = Action::LabelNamespace {
            namespace: "kube-system".into(),
            labels: BTreeMap::from([("istio.io/rev".to_string(), Some("1-22-8".to_string()))]),
        };
        assert!(refused(&p, i).contains("labels namespace kube-system, which is not enrolled"));
        let mut p = istio.clone();
        if let Action::LabelNamespace { labels, .. } = &mut p.steps[i].action {
            labels.insert(
                "pod-security.kubernetes.io/enforce".into(),
                Some("privileged".into()),
            );
        }
        assert!(refused(&p, i).contains("sets the label pod-security.kubernetes.io/enforce"));

        // An istioctl that installs from a file or purges everything.
        let install = istio.steps.iter().position(|s| matches!(&s.action, Action::Run { tool: Tool::Istioctl, args, .. } if args[0] == "install")).expect("install");
        for extra in [
            vec!["-f", "/tmp/evil.yaml"],
            vec!["--manifests", "/tmp/charts"],
            vec!["--set", "values.global.proxy.image=evil"],
        ] {
            let mut p = istio.clone();
            if let Action::Run { args, .. } = &mut p.steps[install].action {
                args.extend(extra.iter().map(|a| a.to_string()));
            }
            refused(&p, install);
        }
        let mut p = istio.clone();
        p.steps[install].undo = Some(Action::Run {
            tool: Tool::Istioctl,
            args: vec!["uninstall".into(), "--purge".into(), "-y".into()],
            timeout_seconds: 60,
            config: None,
        });
        let v = check_scope(&p, None, &[]).expect_err("purge");
        assert_eq!(v.step, format!("{} (undo)", p.steps[install].id));
    }

    #[test]
    fn a_fact_added_to_widen_the_scope_breaks_the_fingerprint() {
        let (_, mut istio) = gloo_and_istio();
        let cluster = istio.clusters[0].clone();
        istio.fingerprint.facts.insert(
            format!("{cluster}/istio/namespace/kube-system"),
            "istio-injection=enabled".into(),
        );
        let v = check_scope(&istio, None, &[]).expect_err("widened");
        assert_eq!(v.step, "(fingerprint)");
    }

    #[test]
    fn a_scale_target_the_cluster_does_not_have_is_refused_with_the_snapshot() {
        let (gloo, _) = gloo_and_istio();
        let mut snap = snapshot(SNAPSHOTS[0].1);
        assert_eq!(scope_violations(&gloo, Some(&snap), &[]), []);
        for c in &mut snap.clusters {
            if let Some(g) = c.gloo_mesh.as_mut() {
                g.networking = None;
            }
        }
        let v = check_scope(&gloo, Some(&snap), &[]).expect_err("networking is gone");
        assert!(v.reason.contains("which the cluster does not have"), "{v}");
    }

    #[test]
    fn a_chart_mirror_is_refused_without_the_flag_and_accepted_with_it() {
        let (gloo, _) = gloo_and_istio();
        // An Istio plan that installs from Istio's chart repository with helm.
        let istio = every_plan()
            .into_iter()
            .map(|(_, p, _)| p)
            .find(|p| {
                p.steps.iter().any(|s| {
                    matches!(&s.action, Action::Run { tool: Tool::Helm, args, .. }
                        if args.iter().any(|a| a == ISTIO_CHART_REPO))
                })
            })
            .expect("a helm-installed Istio plan");
        let mirror = "https://charts.example.internal/mirror".to_string();
        let mirrored = |mut p: UpgradePlan| {
            let mut edited = Vec::new();
            for (i, s) in p.steps.iter_mut().enumerate() {
                let repo = match &mut s.action {
                    Action::ApplyCrds { repo, .. } => Some(repo),
                    Action::Run {
                        tool: Tool::Helm,
                        args,
                        ..
                    } => args
                        .iter()
                        .position(|a| a == "--repo")
                        .and_then(|at| args.get_mut(at + 1)),
                    _ => None,
                };
                if let Some(repo) = repo {
                    *repo = mirror.clone();
                    edited.push(i);
                }
            }
            (p, edited)
        };
        for (name, plan) in [("gloo", gloo), ("istio", istio)] {
            let (p, edited) = mirrored(plan);
            assert!(!edited.is_empty(), "{name}: no chart step");
            // The plan file alone cannot name a mirror.
            let reason = refused(&p, edited[0]);
            assert!(
                reason.contains(&mirror) && reason.contains("--allow-chart-repo"),
                "{name}: {reason}"
            );
            // Approved at apply time, with or without a trailing slash, every chart step passes.
            assert_eq!(
                scope_violations(&p, None, std::slice::from_ref(&mirror)),
                [],
                "{name}"
            );
            assert_eq!(
                scope_violations(&p, None, &[format!("{mirror}/")]),
                [],
                "{name}"
            );
            // Another approved mirror does not cover this one.
            let other = ["https://charts.example.internal/other".to_string()];
            let v = check_scope(&p, None, &other).expect_err("another mirror");
            assert_eq!(v.step, p.steps[edited[0]].id);
            assert!(
                v.reason
                    .contains("or an approved mirror (https://charts.example.internal/other)"),
                "{v}"
            );
        }
    }

    #[test]
    fn a_mirror_does_not_widen_anything_but_the_repository() {
        let (gloo, _) = gloo_and_istio();
        let mirror = ["http://127.0.0.1:8879".to_string()];
        let mut p = gloo.clone();
        let i = first_step(&mut p, "apply-crds");
        if let Action::ApplyCrds { repo, chart, .. } = &mut p.steps[i].action {
            *repo = mirror[0].clone();
            *chart = "evil".into();
        }
        let v = check_scope(&p, None, &mirror).expect_err("another chart");
        assert!(v.reason.contains("applies the CRDs of chart evil"), "{v}");
    }

    #[test]
    fn only_https_or_loopback_http_mirrors_may_be_approved() {
        for ok in [
            "https://charts.example.internal/gloo-mesh",
            "http://127.0.0.1:8879",
            "http://localhost:8879/charts",
            "http://[::1]:8879",
        ] {
            assert_eq!(allowed_chart_repo(ok).as_deref(), Ok(ok));
        }
        let refused = allowed_chart_repo("http://charts.example.internal").expect_err("plain http");
        assert_eq!(
            refused,
            "`http://charts.example.internal` is plain http on charts.example.internal, where anyone on the path could swap the charts: serve the mirror over https (plain http is allowed only on a loopback address)"
        );
        assert!(allowed_chart_repo("http://10.0.0.1").is_err());
        assert!(allowed_chart_repo("ftp://127.0.0.1/charts").is_err());
        assert!(allowed_chart_repo("charts.example.internal").is_err());
        assert!(allowed_chart_repo("oci://registry.example.internal/charts").is_err());
    }
}
