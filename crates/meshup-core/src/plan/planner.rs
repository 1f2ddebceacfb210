//! The planner: resolves targets, runs environment detection per cluster, finds each Istio path, orders
//! the meshes' upgrades against each other's ranges, and lets the runbooks emit the steps.

use std::collections::BTreeSet;

use super::error::minor_range;
use super::fingerprint::fingerprint;
use super::install_method::Method;
use super::istio_install::{IstioInstall, tag_for};
use super::paths::{PathHop, PathRules, downgrade_path, upgrade_path};
use super::runbooks::gloo_mesh::{self, GlooUpgrade};
use super::runbooks::kmesh::{self, KmeshUpgrade};
use super::runbooks::{DataPlane, IstioContext, environment, istio_canary, istio_in_place};
use super::steps::StepList;
use super::{
    ComponentChange, Hop, Mesh, PLAN_KIND, PlanError, PlanMetadata, PlanRequest, Strategy, Target,
    UpgradePlan,
};
use crate::compat::{CompatData, Support};
use crate::snapshot::{API_VERSION, Cluster, ClusterSnapshot, KmeshMode};
use crate::verdict::{KernelVerdict, k8s_range, kmesh_kernel};
use crate::version::{Flavor, Minor, Version};

/// The targets after resolution against the compatibility data.
#[derive(Debug, Clone)]
struct Targets {
    /// As requested (a minor resolves per cluster, since a vendor flavor has its own patches).
    istio: Option<Version>,
    /// The Istio image flavor `--to` named (`istio=1.22.4-mspider`); none keeps the installed one.
    istio_flavor: Option<Flavor>,
    gloo_mesh: Option<Version>,
    kmesh: Option<Version>,
}

#[derive(Default)]
struct Output {
    steps: StepList,
    hops: Vec<Hop>,
    components: Vec<ComponentChange>,
    warnings: Vec<String>,
}

pub(crate) fn plan(
    snapshot: &ClusterSnapshot,
    compat: &CompatData,
    request: &PlanRequest,
) -> Result<UpgradePlan, PlanError> {
    let mut out = Output::default();
    let targets = resolve_targets(compat, request, &mut out.warnings)?;
    require_installed(snapshot, &targets)?;

    let contexts: BTreeSet<String> = snapshot.clusters.iter().map(|c| c.name.clone()).collect();
    // Gloo Mesh management clusters first: remote clusters may run one version behind (n-1), never ahead.
    let mut order: Vec<&Cluster> = snapshot.clusters.iter().collect();
    order.sort_by_key(|c| !c.gloo_mesh.as_ref().is_some_and(|g| g.is_management()));

    for cluster in &order {
        plan_cluster(
            &mut out, snapshot, compat, request, &targets, &contexts, cluster,
        )?;
    }
    for cluster in &order {
        if out.steps.has_steps_for(&cluster.name) {
            environment::health_gate(&mut out.steps, &cluster.name);
        }
    }
    let steps = out.steps.into_steps();
    for (mesh, url) in request.chart_repos.mirrors() {
        if steps.iter().any(|s| s.action.chart_repo() == Some(url)) {
            out.warnings.push(format!(
                "the {} charts come from {url} (--chart-repo), not the vendor's repository: apply this plan with `--allow-chart-repo {url}`",
                mesh.title()
            ));
        }
    }
    if steps.is_empty() {
        out.warnings
            .push("nothing to do: every targeted component is already at its target".to_string());
    }
    let resolved: Vec<Target> = request
        .targets
        .iter()
        .map(|t| Target {
            mesh: t.mesh,
            flavor: t.flavor.clone(),
            version: match t.mesh {
                Mesh::Istio => compat.resolve_istio(t.version).unwrap_or(t.version),
                Mesh::GlooMesh => targets.gloo_mesh.unwrap_or(t.version),
                Mesh::Kmesh => targets.kmesh.unwrap_or(t.version),
            },
        })
        .collect();
    Ok(UpgradePlan {
        api_version: API_VERSION.to_string(),
        kind: PLAN_KIND.to_string(),
        metadata: PlanMetadata {
            tool_version: request.tool_version.clone(),
            compat_data: compat.date.clone(),
            compat_data_from: None,
            created_at: None,
        },
        targets: resolved,
        strategy: request.strategy,
        clusters: order.iter().map(|c| c.name.clone()).collect(),
        fingerprint: fingerprint(snapshot, &request.targets),
        components: out.components,
        hops: out.hops,
        warnings: out.warnings,
        steps,
        integrity: None,
    })
}

fn resolve_targets(
    compat: &CompatData,
    request: &PlanRequest,
    warnings: &mut Vec<String>,
) -> Result<Targets, PlanError> {
    if request.targets.is_empty() {
        return Err(PlanError::NoTargets);
    }
    let mut seen = BTreeSet::new();
    let mut targets = Targets {
        istio: None,
        istio_flavor: None,
        gloo_mesh: None,
        kmesh: None,
    };
    let unknown = |mesh: Mesh, version: Version| PlanError::UnknownVersion {
        mesh,
        version: version.to_string(),
        data_date: compat.date.clone(),
    };
    for t in &request.targets {
        if !seen.insert(t.mesh) {
            return Err(PlanError::DuplicateTarget { mesh: t.mesh });
        }
        match t.mesh {
            Mesh::Istio => {
                compat
                    .resolve_istio(t.version)
                    .ok_or_else(|| unknown(t.mesh, t.version))?;
                targets.istio = Some(t.version);
                targets.istio_flavor = t.flavor();
            }
            Mesh::GlooMesh => {
                let release = compat
                    .gloo_mesh_release(t.version.minor_line())
                    .ok_or_else(|| unknown(t.mesh, t.version))?;
                let version = match (t.version.patch, release.latest_patch) {
                    (Some(_), _) => t.version,
                    (None, Some(latest)) if latest.minor_line() == release.minor => latest,
                    (None, _) => Version::new(t.version.major, t.version.minor, 0),
                };
                targets.gloo_mesh = Some(version);
            }
            Mesh::Kmesh => {
                let minor = t.version.minor_line();
                if !compat.kmesh.releases.iter().any(|r| r.minor == Some(minor)) {
                    return Err(unknown(t.mesh, t.version));
                }
                let version = match t.version.patch {
                    Some(_) => t.version,
                    None => {
                        let v = Version::new(minor.major, minor.minor, 0);
                        warnings.push(format!(
                            "Kmesh patch releases are not in the compatibility data: {v} is planned; pass --to kmesh={minor}.N for a newer patch"
                        ));
                        v
                    }
                };
                targets.kmesh = Some(version);
            }
        }
    }
    Ok(targets)
}

fn require_installed(snapshot: &ClusterSnapshot, targets: &Targets) -> Result<(), PlanError> {
    let any = |f: &dyn Fn(&Cluster) -> bool| snapshot.clusters.iter().any(f);
    if targets.istio.is_some()
        && !any(&|c| {
            c.istio
                .as_ref()
                .is_some_and(|i| !i.control_planes.is_empty())
        })
    {
        return Err(PlanError::MeshNotInstalled { mesh: Mesh::Istio });
    }
    if targets.gloo_mesh.is_some()
        && !any(&|c| c.gloo_mesh.as_ref().is_some_and(|g| g.is_management()))
    {
        return Err(PlanError::MeshNotInstalled {
            mesh: Mesh::GlooMesh,
        });
    }
    if targets.kmesh.is_some() && !any(&|c| c.kmesh.is_some()) {
        return Err(PlanError::MeshNotInstalled { mesh: Mesh::Kmesh });
    }
    Ok(())
}

fn plan_cluster(
    out: &mut Output,
    snapshot: &ClusterSnapshot,
    compat: &CompatData,
    request: &PlanRequest,
    targets: &Targets,
    contexts: &BTreeSet<String>,
    cluster: &Cluster,
) -> Result<(), PlanError> {
    let name = cluster.name.as_str();
    let mut install = IstioInstall::read(cluster)?;
    if let (Some(install), Some(wanted)) = (install.as_mut(), targets.istio_flavor.as_ref()) {
        install.flavor = target_flavor(compat, name, install, wanted, &mut out.warnings)?;
        install.flavor_requested = true;
    }
    let kmesh_installed = cluster.kmesh.as_ref();

    // Environment detection for the Istio target comes first.
    let mut istio_plan = None;
    if let (Some(wanted), Some(install)) = (targets.istio, install.as_ref()) {
        let to = resolve_for_flavor(compat, name, wanted, &install.flavor)?;
        let from = install.version;
        if to < from && !request.allow_downgrade {
            return Err(PlanError::DowngradeNotAllowed {
                cluster: name.to_string(),
                mesh: Mesh::Istio,
                installed: from,
                target: to,
            });
        }
        if to < from && install.is_mspider() && compat.mspider.no_rollback.value {
            return Err(PlanError::NoPath {
                cluster: name.to_string(),
                message: format!(
                    "DaoCloud -mspider builds cannot be rolled back ({}), so Istio {} cannot be downgraded to {to}; choose {} or newer",
                    compat.mspider.no_rollback.source,
                    install.tag(from),
                    from
                ),
            });
        }
        if to < from {
            let rule = &compat.istio.downgrade_max_minors;
            downgrade_path(from, to, rule.value, &rule.source).map_err(|message| {
                PlanError::NoPath {
                    cluster: name.to_string(),
                    message,
                }
            })?;
        }
        let env = if to.minor_line() == from.minor_line() {
            environment::Environment {
                kubernetes: cluster.kubernetes.minor(),
                kubernetes_upgrade: None,
                warnings: Vec::new(),
            }
        } else {
            environment::detect(
                name,
                compat,
                cluster.kubernetes.minor(),
                from.minor_line(),
                to.minor_line(),
                request.include_kubernetes_upgrade,
            )?
        };
        istio_plan = Some((from, to, env));
    }

    let kmesh_target = targets.kmesh.zip(kmesh_installed);
    if let Some((to, km)) = kmesh_target {
        check_kmesh_environment(cluster, compat, km, to, &mut out.warnings)?;
    }

    // Gloo Mesh's Istio range for this cluster, after any Gloo Mesh upgrade (management clusters go
    // first, so a targeted Gloo Mesh is already upgraded when this cluster's Istio moves).
    let gloo_range = gloo_istio_range(snapshot, compat, cluster, targets.gloo_mesh);

    // Kubernetes first, then Gloo Mesh (management plane), then Istio hops with Kmesh in its place.
    if let Some((_, to, env)) = &istio_plan
        && let Some((k_from, k_to)) = env.kubernetes_upgrade
    {
        environment::kubernetes_upgrade_step(&mut out.steps, name, k_from, k_to, to.minor_line());
        out.components.push(ComponentChange {
            cluster: name.to_string(),
            component: "kubernetes".to_string(),
            current: k_from.to_string(),
            target: k_to.to_string(),
            path: vec![k_from.to_string(), k_to.to_string()],
        });
    }
    if let (Some(to), Some(gloo)) = (targets.gloo_mesh, cluster.gloo_mesh.as_ref())
        && gloo.is_management()
    {
        plan_gloo_mesh(out, compat, request, cluster, gloo, to, contexts)?;
    }

    let Some(install) = install else {
        if let Some((to, km)) = kmesh_target {
            out.warnings.push(format!(
                "{name}: no istiod found beside Kmesh, so its Istio range could not be checked"
            ));
            emit_kmesh(out, compat, cluster, km, to, &request.chart_repos.istio);
        }
        return Ok(());
    };
    let (from, to, env) = match istio_plan {
        Some(p) => p,
        None => (
            install.version,
            install.version,
            environment::Environment {
                kubernetes: cluster.kubernetes.minor(),
                kubernetes_upgrade: None,
                warnings: Vec::new(),
            },
        ),
    };
    if targets.istio.is_none() && kmesh_target.is_none() {
        return Ok(());
    }
    out.warnings.extend(env.warnings.iter().cloned());

    // Kmesh's Istio ranges: before (installed) and after (targeted) its upgrade.
    let kmesh_ranges = kmesh_installed.map(|km| {
        let before = km
            .daemonset
            .version
            .version
            .and_then(|v| compat.kmesh_release(v.minor_line(), &km.mode))
            .map(|r| r.istio.clone());
        let after = kmesh_target.and_then(|(t, _)| {
            compat
                .kmesh_release(t.minor_line(), &km.mode)
                .map(|r| r.istio.clone())
        });
        (km, before, after)
    });

    // The final Istio must suit the meshes around it.
    check_final_ranges(
        name,
        compat,
        to,
        &gloo_range,
        &kmesh_ranges,
        kmesh_target.is_some(),
    )?;

    let hops = istio_hops(
        name,
        compat,
        request.strategy,
        &install,
        from,
        to,
        env.kubernetes,
        &gloo_range,
        &kmesh_ranges,
    )?;

    // Where the Kmesh upgrade goes among the Istio hops.
    let kmesh_at = match (&kmesh_ranges, kmesh_target) {
        (Some((_, before, after)), Some(_)) => {
            let versions: Vec<Minor> = std::iter::once(from)
                .chain(hops.iter().map(|h| h.to))
                .map(|v| v.minor_line())
                .collect();
            Some(kmesh_position(
                name,
                &versions,
                before.as_deref(),
                after.as_deref(),
            )?)
        }
        _ => None,
    };

    if install.is_mspider() && !hops.is_empty() {
        out.warnings.push(format!(
            "{name}: DaoCloud -mspider builds cannot be rolled back after the upgrade ({}); its upgrade steps are marked irreversible",
            compat.mspider.no_rollback.source
        ));
    }
    let mut data_plane = DataPlane::read(&install);
    if !hops.is_empty() {
        if !data_plane.next_run.is_empty() {
            out.warnings.push(format!(
                "{name}: Job and CronJob pods are not restarted; their next run gets the new sidecar, and the proxy gates leave them aside: {}",
                data_plane.next_run.join(", ")
            ));
        }
        if !data_plane.by_hand.is_empty() {
            out.warnings.push(format!(
                "{name}: no restart can renew these pods' sidecars (no controller, or one that does not replace its pods); recreate them by hand after the upgrade, the proxy gates leave them aside: {}",
                data_plane.by_hand.join(", ")
            ));
        }
    }
    match &install.method {
        Method::NotRecorded => out.warnings.push(format!(
            "{name}: the snapshot does not say how Istio was installed, nor its configuration (it was written by an older kubectl-meshup), so the plan carries none: take a new snapshot to plan with the install method and configuration"
        )),
        Method::Unknown { evidence } => out.warnings.push(format!(
            "{name}: Istio was installed by neither Helm nor istioctl, so the install steps are manual (kubectl-meshup does not invent an install command): {evidence}"
        )),
        _ => {}
    }
    let cx = IstioContext {
        cluster: name,
        install: &install,
        compat,
        chart_repo: &request.chart_repos.istio,
    };
    let mut revisions: Vec<String> = install
        .control_planes
        .iter()
        .map(|cp| cp.revision.clone())
        .collect();
    let total = hops.len();
    for (i, hop) in hops.iter().enumerate() {
        if kmesh_at == Some(i)
            && let Some((to, km)) = kmesh_target
        {
            emit_kmesh(out, compat, cluster, km, to, &request.chart_repos.istio);
        }
        let label = format!("hop {} of {total}, Istio {} to {}", i + 1, hop.from, hop.to);
        match request.strategy {
            Strategy::Canary => {
                let new_rev = istio_canary::hop(
                    &mut out.steps,
                    &cx,
                    &mut data_plane,
                    &revisions,
                    hop,
                    &label,
                );
                revisions = vec![new_rev];
            }
            Strategy::InPlace => istio_in_place::hop(&mut out.steps, &cx, &data_plane, hop, &label),
        }
        out.hops.push(Hop {
            cluster: name.to_string(),
            mesh: Mesh::Istio,
            from: hop.from,
            to: hop.to,
            strategy: request.strategy,
            reason: hop.reason.clone(),
            downgrade: hop.downgrade,
            upgrade_notes: if hop.downgrade {
                Vec::new()
            } else {
                super::notes::for_hop(compat, hop.from, hop.to)
            },
        });
        if !hop.downgrade {
            out.warnings.extend(super::notes::setting_warnings(
                cluster, compat, hop.from, hop.to,
            ));
        }
        if hop.downgrade {
            out.warnings.push(format!(
                "{name}: this plan DOWNGRADES Istio from {} to {}",
                hop.from, hop.to
            ));
        }
    }
    if kmesh_at == Some(total)
        && let Some((to, km)) = kmesh_target
    {
        emit_kmesh(out, compat, cluster, km, to, &request.chart_repos.istio);
    }
    if targets.istio.is_some() {
        let mut path = vec![install.tag(from)];
        path.extend(hops.iter().map(|h| install.tag(h.to)));
        out.components.push(ComponentChange {
            cluster: name.to_string(),
            component: "istio".to_string(),
            current: install.tag(from),
            target: install.tag(to),
            path,
        });
    }
    Ok(())
}

/// The flavor the new images are: the one `--to` named, within what the vendors allow. DaoCloud's
/// `-mspider` builds and any other kind are never mixed (refused with the seed's rule); upstream and
/// distroless are one release line (the change is flagged); a change to or from another vendor's build
/// is flagged, since the images keep the installed registry.
fn target_flavor(
    compat: &CompatData,
    cluster: &str,
    install: &IstioInstall,
    wanted: &Flavor,
    warnings: &mut Vec<String>,
) -> Result<Flavor, PlanError> {
    let installed = &install.flavor;
    if wanted == installed {
        return Ok(wanted.clone());
    }
    let example = tag_for(install.version, installed);
    let asked = tag_for(install.version, wanted).replacen(&install.version.to_string(), "", 1);
    if (*wanted == Flavor::Mspider || *installed == Flavor::Mspider)
        && compat.mspider.no_mixed_upgrade.value
    {
        return Err(PlanError::FlavorChange {
            cluster: cluster.to_string(),
            installed: example,
            wanted: asked,
            rule: compat.mspider.no_mixed_upgrade.rule.clone(),
            rule_source: compat.mspider.no_mixed_upgrade.source.clone(),
        });
    }
    let hub = install.hub.as_deref().unwrap_or("the installed registry");
    warnings.push(if wanted.family() == installed.family() {
        format!(
            "{cluster}: the installed Istio images are {installed} ({example}); --to asks for {wanted} builds ({asked}), so every image changes its base image at the upgrade"
        )
    } else {
        format!(
            "{cluster}: the installed Istio images are {installed} ({example}); --to asks for {wanted} builds ({asked}): the images stay on {hub}, so check that it serves them, and that the vendor supports moving between the two"
        )
    });
    Ok(wanted.clone())
}

/// A minor-only target resolves to the newest patch in the install's flavor; DaoCloud ships its own
/// `-mspider` patches.
fn resolve_for_flavor(
    compat: &CompatData,
    cluster: &str,
    wanted: Version,
    flavor: &Flavor,
) -> Result<Version, PlanError> {
    let upstream = compat
        .resolve_istio(wanted)
        .ok_or_else(|| PlanError::UnknownVersion {
            mesh: Mesh::Istio,
            version: wanted.to_string(),
            data_date: compat.date.clone(),
        })?;
    if *flavor != Flavor::Mspider {
        return Ok(upstream);
    }
    let builds: Vec<Version> = compat
        .mspider
        .istio_versions
        .iter()
        .copied()
        .filter(|v| v.minor_line() == wanted.minor_line())
        .collect();
    let found = match wanted.patch {
        Some(_) => builds.iter().copied().find(|v| *v == wanted),
        None => builds.iter().copied().max(),
    };
    found.ok_or_else(|| PlanError::NoPath {
        cluster: cluster.to_string(),
        message: format!(
            "the installed Istio is a DaoCloud -mspider build and DaoCloud ships no {} build (known for {}: {}); pick a listed version, since mixing -mspider and upstream builds is not supported",
            tag_for(wanted, &Flavor::Mspider),
            wanted.minor_line(),
            if builds.is_empty() {
                "none".to_string()
            } else {
                builds.iter().map(|v| tag_for(*v, &Flavor::Mspider)).collect::<Vec<_>>().join(", ")
            }
        ),
    })
}

/// Gloo Mesh's supported Istio minors for the cluster (its own management plane or agent, or the
/// management cluster that registered it), at the targeted version when one is targeted.
fn gloo_istio_range(
    snapshot: &ClusterSnapshot,
    compat: &CompatData,
    cluster: &Cluster,
    target: Option<Version>,
) -> Option<(Minor, Vec<Minor>)> {
    let own = cluster.gloo_mesh.as_ref().and_then(|g| g.version());
    let via_management = || {
        snapshot.clusters.iter().find_map(|c| {
            let g = c.gloo_mesh.as_ref()?;
            (g.is_management() && g.registered_clusters.iter().any(|r| r.name == cluster.name))
                .then(|| g.version())
                .flatten()
        })
    };
    let installed = own.or_else(via_management)?;
    let version = target.unwrap_or(installed);
    let release = compat.gloo_mesh_release(version.minor_line())?;
    if release.istio.is_empty() {
        return None;
    }
    Some((release.minor, release.istio.clone()))
}

type KmeshRanges<'a> = Option<(
    &'a crate::snapshot::Kmesh,
    Option<Vec<Minor>>,
    Option<Vec<Minor>>,
)>;

fn check_final_ranges(
    cluster: &str,
    compat: &CompatData,
    to: Version,
    gloo_range: &Option<(Minor, Vec<Minor>)>,
    kmesh_ranges: &KmeshRanges<'_>,
    kmesh_targeted: bool,
) -> Result<(), PlanError> {
    let istio = to.minor_line();
    if let Some((gm, range)) = gloo_range
        && !range.contains(&istio)
    {
        return Err(PlanError::OutsideMeshRange {
            cluster: cluster.to_string(),
            istio,
            mesh: Mesh::GlooMesh,
            version: *gm,
            supported: minor_range(range),
            fix: "choose an Istio target inside that range, or upgrade Gloo Mesh first (--to gloo-mesh=VERSION)".to_string(),
        });
    }
    if let Some((km, before, after)) = kmesh_ranges {
        let (range, version) = if kmesh_targeted {
            (after.as_ref(), None)
        } else {
            (before.as_ref(), km.daemonset.version.version)
        };
        if let Some(range) = range
            && !range.contains(&istio)
        {
            let suggestion = compat
                .kmesh
                .releases
                .iter()
                .filter(|r| r.mode == km.mode && r.istio.contains(&istio))
                .filter_map(|r| r.minor)
                .min();
            let fix = match suggestion {
                Some(m) => format!("add --to kmesh={m} (it supports Istio {istio}), or choose an Istio target inside that range"),
                None => "choose an Istio target inside that range; no Kmesh release in the data supports it".to_string(),
            };
            return Err(PlanError::OutsideMeshRange {
                cluster: cluster.to_string(),
                istio,
                mesh: Mesh::Kmesh,
                version: version.map(|v| v.minor_line()).unwrap_or(istio),
                supported: minor_range(range),
                fix,
            });
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn istio_hops(
    cluster: &str,
    compat: &CompatData,
    strategy: Strategy,
    install: &IstioInstall<'_>,
    from: Version,
    to: Version,
    kubernetes: Minor,
    gloo_range: &Option<(Minor, Vec<Minor>)>,
    kmesh_ranges: &KmeshRanges<'_>,
) -> Result<Vec<PathHop>, PlanError> {
    if to < from {
        let rule = &compat.istio.downgrade_max_minors;
        return downgrade_path(from, to, rule.value, &rule.source).map_err(|message| {
            PlanError::NoPath {
                cluster: cluster.to_string(),
                message,
            }
        });
    }
    let (limit, rule) = match strategy {
        Strategy::Canary => (&compat.istio.canary_max_minors, "canary"),
        Strategy::InPlace => (&compat.istio.in_place_max_minors, "in-place"),
    };
    let mut max = limit.value;
    let mut max_rule = format!(
        "{rule} upgrades move at most {max} minor(s) per hop ({})",
        limit.source
    );
    let ambient = &compat.istio.ambient_components_max_lag_minors;
    if install.ambient_components && ambient.value < max {
        max = ambient.value;
        max_rule = format!(
            "ztunnel and istio-cni have no canary and work with a control plane at most {} minor(s) newer, so each hop moves at most {} ({})",
            ambient.value, ambient.value, ambient.source
        );
    }
    let mut allowed_note = format!("supported on Kubernetes {kubernetes}");
    if let Some((gm, range)) = gloo_range {
        allowed_note.push_str(&format!(
            " and inside Gloo Mesh {gm}'s Istio {}",
            minor_range(range)
        ));
    }
    if let Some((_, before, after)) = kmesh_ranges
        && (before.is_some() || after.is_some())
    {
        allowed_note.push_str(" and inside the Kmesh Istio range in force");
    }
    let mspider = install.is_mspider();
    let blocker = |m: Minor| -> Option<String> {
        match compat.istio_on_k8s(m, kubernetes) {
            Support::Supported => {}
            Support::TestedOnly => {
                return Some(format!(
                    "only tested, not supported, on Kubernetes {kubernetes}"
                ));
            }
            Support::Unsupported => {
                return Some(format!("not supported on Kubernetes {kubernetes}"));
            }
            Support::NotInData => return Some("not in the compatibility data".to_string()),
        }
        if mspider
            && !compat
                .mspider
                .istio_versions
                .iter()
                .any(|v| v.minor_line() == m)
        {
            return Some("DaoCloud ships no -mspider build of it".to_string());
        }
        if let Some((gm, range)) = gloo_range
            && !range.contains(&m)
        {
            return Some(format!(
                "outside Gloo Mesh {gm}'s Istio {}",
                minor_range(range)
            ));
        }
        if let Some((_, before, after)) = kmesh_ranges {
            let inside = |r: &Option<Vec<Minor>>| r.as_ref().is_none_or(|r| r.contains(&m));
            let constrained = before.is_some() || after.is_some();
            let ok = if after.is_some() {
                inside(before) || inside(after)
            } else {
                inside(before)
            };
            if constrained && !ok {
                return Some("outside the installed and targeted Kmesh Istio ranges".to_string());
            }
        }
        None
    };
    let patch_of = |m: Minor| -> Option<Version> {
        if mspider {
            compat
                .mspider
                .istio_versions
                .iter()
                .copied()
                .filter(|v| v.minor_line() == m)
                .max()
        } else {
            compat.istio_release(m).map(|r| r.newest_patch())
        }
    };
    let rules = PathRules {
        max_minors: max,
        max_minors_rule: max_rule,
        allowed_note,
        blocker: &blocker,
        patch_of: &patch_of,
    };
    upgrade_path(from, to, &rules).map_err(|message| PlanError::NoPath {
        cluster: cluster.to_string(),
        message: format!("{message}; choose a nearer target or another strategy"),
    })
}

/// The earliest point in the Istio path (0 = before the first hop) at which Kmesh can be upgraded so
/// that every state after a change is inside the Kmesh range in force.
fn kmesh_position(
    cluster: &str,
    versions: &[Minor],
    before: Option<&[Minor]>,
    after: Option<&[Minor]>,
) -> Result<usize, PlanError> {
    let inside = |range: Option<&[Minor]>, m: &Minor| range.is_none_or(|r| r.contains(m));
    // Kmesh upgraded at position i: Istio states 1..=i run beside the old Kmesh, states i..=n beside
    // the new one (the state before any change is not judged: it is what the cluster runs today).
    (0..versions.len())
        .find(|&i| {
            versions.iter().take(i + 1).skip(1).all(|m| inside(before, m))
                && versions.iter().skip(i).all(|m| inside(after, m))
        })
        .ok_or_else(|| PlanError::NoPath {
            cluster: cluster.to_string(),
            message: format!(
                "no order of the Kmesh and Istio upgrades keeps Istio inside Kmesh's range at every step (Istio path {}; Kmesh before: {}; after: {}); upgrade them in separate plans",
                versions.iter().map(Minor::to_string).collect::<Vec<_>>().join(" -> "),
                before.map(minor_range).unwrap_or_else(|| "unknown".into()),
                after.map(minor_range).unwrap_or_else(|| "unknown".into()),
            ),
        })
}

fn check_kmesh_environment(
    cluster: &Cluster,
    compat: &CompatData,
    kmesh: &crate::snapshot::Kmesh,
    to: Version,
    warnings: &mut Vec<String>,
) -> Result<(), PlanError> {
    let name = cluster.name.as_str();
    if let Some(from) = kmesh.daemonset.version.version
        && to < from
    {
        return Err(PlanError::DowngradeNotAllowed {
            cluster: name.to_string(),
            mesh: Mesh::Kmesh,
            installed: from,
            target: to,
        });
    }
    if let KmeshMode::Unknown(raw) = &kmesh.mode {
        warnings.push(format!(
            "{name}: Kmesh mode `{raw}` is unknown; the Dual-Engine rows (the stricter ones) are used"
        ));
    }
    // The data's rows for the mode (an unknown mode: Dual-Engine's, `verdict::kmesh_rows_mode`).
    if let Some(row) = compat.kmesh_release(to.minor_line(), &kmesh.mode) {
        let k8s = cluster.kubernetes.minor();
        if k8s_range(&row.k8s, None, k8s).fits() != Some(true) {
            return Err(PlanError::KubernetesOutsideMeshRange {
                cluster: name.to_string(),
                kubernetes: k8s,
                mesh: Mesh::Kmesh,
                version: to.minor_line(),
                supported: minor_range(&row.k8s),
                fix: "upgrade Kubernetes into that range first, or choose another Kmesh version"
                    .to_string(),
            });
        }
    }
    let min = compat.kmesh.kernel_min.value;
    let mut old = Vec::new();
    let mut unknown = Vec::new();
    for group in &cluster.nodes {
        match kmesh_kernel(&group.operating_system, group.kernel.as_ref(), min) {
            KernelVerdict::Below(k) => old.extend(group.names.iter().map(|n| format!("{n} ({k})"))),
            KernelVerdict::AtLeast(_) | KernelVerdict::NotLinux => {}
            KernelVerdict::Unreadable => unknown.extend(group.names.iter().cloned()),
        }
    }
    if !old.is_empty() {
        let shown = if old.len() > 5 {
            format!("{} and {} more", old[..5].join(", "), old.len() - 5)
        } else {
            old.join(", ")
        };
        return Err(PlanError::KernelTooOld {
            cluster: name.to_string(),
            nodes: shown,
            min,
        });
    }
    if !unknown.is_empty() {
        warnings.push(format!(
            "{name}: the kernel of {} node(s) could not be read; the kernel gate checks them again before Kmesh is upgraded",
            unknown.len()
        ));
    }
    Ok(())
}

fn emit_kmesh(
    out: &mut Output,
    compat: &CompatData,
    cluster: &Cluster,
    kmesh: &crate::snapshot::Kmesh,
    to: Version,
    istio_chart_repo: &str,
) {
    let from = kmesh.daemonset.version.version;
    if from == Some(to) {
        return;
    }
    kmesh::emit(
        &mut out.steps,
        &KmeshUpgrade {
            cluster,
            kmesh,
            from,
            to,
            compat,
            istio_chart_repo,
        },
    );
    let current = from
        .map(|v| v.to_string())
        .unwrap_or_else(|| "unknown".into());
    if let Some(from) = from {
        out.hops.push(Hop {
            cluster: cluster.name.clone(),
            mesh: Mesh::Kmesh,
            from,
            to,
            strategy: Strategy::InPlace,
            reason: "Kmesh upgrades its DaemonSet in place (Helm); placed where both Kmesh versions support the Istio in force".to_string(),
            downgrade: false,
            upgrade_notes: Vec::new(),
        });
    }
    out.components.push(ComponentChange {
        cluster: cluster.name.clone(),
        component: "kmesh".to_string(),
        current: current.clone(),
        target: to.to_string(),
        path: vec![current, to.to_string()],
    });
}

fn plan_gloo_mesh(
    out: &mut Output,
    compat: &CompatData,
    request: &PlanRequest,
    cluster: &Cluster,
    gloo: &crate::snapshot::GlooMesh,
    to: Version,
    contexts: &BTreeSet<String>,
) -> Result<(), PlanError> {
    let name = cluster.name.as_str();
    let missing = |what: &str, fix: &str| PlanError::MissingFact {
        cluster: name.to_string(),
        mesh: Mesh::GlooMesh,
        what: what.to_string(),
        fix: fix.to_string(),
    };
    let from = gloo.version().ok_or_else(|| {
        missing(
            "the Gloo Mesh management plane version",
            "make sure the discovery Deployment runs a tagged image, then take a new snapshot",
        )
    })?;
    if to < from && !request.allow_downgrade {
        return Err(PlanError::DowngradeNotAllowed {
            cluster: name.to_string(),
            mesh: Mesh::GlooMesh,
            installed: from,
            target: to,
        });
    }
    if to == from {
        return Ok(());
    }
    // Gloo Mesh's Kubernetes range (its supported Istio decides it too).
    if let Some(release) = compat.gloo_mesh_release(to.minor_line()) {
        let k8s = cluster.kubernetes.minor();
        if k8s_range(&release.k8s, release.k8s_min, k8s).fits() == Some(false) {
            return Err(PlanError::KubernetesOutsideMeshRange {
                cluster: name.to_string(),
                kubernetes: k8s,
                mesh: Mesh::GlooMesh,
                version: release.minor,
                supported: if release.k8s.is_empty() {
                    format!("{}+", release.k8s_min.map(|m| m.to_string()).unwrap_or_default())
                } else {
                    minor_range(&release.k8s)
                },
                fix: "Gloo Mesh OSS is not maintained for newer Kubernetes; plan a move to a supported release line or keep this cluster on its Kubernetes version".to_string(),
            });
        }
    }
    let runbook = compat
        .gloo_mesh_release(from.minor_line())
        .map(|r| r.runbook.as_str())
        .unwrap_or(if from.major == 0 { "pre-1.0" } else { "helm" });
    let up = GlooUpgrade {
        cluster,
        gloo,
        from,
        to,
        contexts,
        chart_repo: &request.chart_repos.gloo_mesh,
    };
    if runbook == "pre-1.0" {
        let discovery = gloo.discovery.as_ref().ok_or_else(|| {
            missing(
                "the discovery Deployment",
                "take the snapshot with the management cluster's context",
            )
        })?;
        let networking = gloo.networking.as_ref().ok_or_else(|| {
            missing(
                "the networking Deployment",
                "take the snapshot with the management cluster's context",
            )
        })?;
        let group = gloo_mesh::discovery_group(gloo).ok_or_else(|| {
            missing(
                "the Gloo Mesh discovery API group the server serves",
                "take the snapshot with permission to read API discovery, so the runbook deletes the group the cluster really serves",
            )
        })?;
        gloo_mesh::pre_1_0(&mut out.steps, &up, discovery, networking, group);
        out.warnings.push(format!(
            "{name}: the pre-1.0 Gloo Mesh upgrade is not guaranteed to be zero-downtime; the runbook recommends a fresh install to get new functionality (shared/seeds/gloo-mesh-upgrading.md)"
        ));
    } else {
        gloo_mesh::helm_1_x(&mut out.steps, &up);
        out.warnings.push(format!(
            "{name}: Gloo Mesh OSS docs from October 2021 say it does not support in-place upgrades (uninstall and re-install); this plan follows the September 2021 Helm procedure (shared/compat-sources.md section 5)"
        ));
    }
    if !gloo.registered_clusters.is_empty() {
        out.warnings.push(format!(
            "{name}: registered clusters run one Gloo Mesh version behind the management plane ({}) until they are re-registered; do not leave them so longer than the upgrade takes",
            compat.gloo_mesh.remote_max_lag_minors.source
        ));
    }
    out.hops.push(Hop {
        cluster: name.to_string(),
        mesh: Mesh::GlooMesh,
        from,
        to,
        strategy: Strategy::InPlace,
        reason: format!("Gloo Mesh {from} uses the {runbook} upgrade runbook; the management cluster goes first, registered clusters follow (n-1)"),
        downgrade: to < from,
        upgrade_notes: super::notes::gloo_mesh_for_hop(compat, from, to),
    });
    out.components.push(ComponentChange {
        cluster: name.to_string(),
        component: "gloo-mesh".to_string(),
        current: from.to_string(),
        target: to.to_string(),
        path: vec![from.to_string(), to.to_string()],
    });
    Ok(())
}
