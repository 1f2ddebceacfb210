//! Gloo Mesh Open Source on its management cluster.
//! - Installed before 1.0: the ten steps of `shared/seeds/gloo-mesh-upgrading.md`, in order.
//! - Installed 1.x: the Helm procedure of the September 2021 docs (CRDs, `helm upgrade`, rollouts,
//!   re-registration, `meshctl check`); the October 2021 docs instead say OSS "does not support in-place
//!   upgrades; uninstall and re-install", which the plan states as a warning.

use std::collections::BTreeSet;

use super::super::steps::{Runbook, StepList};
use super::super::{Action, Gate, ReplicasBefore, Tool, WaitCondition};
use super::{
    TOOL_TIMEOUT_SECONDS, WAIT_TIMEOUT_SECONDS, helm_upgrade_args, object, rollout, run, run_owned,
};
use crate::snapshot::{Cluster, GlooMesh, ServedGroup, Workload};
use crate::version::Version;

pub(crate) const PRE_1_0: Runbook = Runbook {
    id: "gloo-mesh-pre-1.0",
    source: "shared/seeds/gloo-mesh-upgrading.md",
    steps: 10,
};

pub(crate) const HELM_1_X: Runbook = Runbook {
    id: "gloo-mesh-1.x",
    source: "solo-io/gloo-mesh docs/content/operations/upgrading.md (Sep 2021), as summarised in shared/compat-sources.md section 5",
    steps: 6,
};

/// The Gloo Mesh OSS chart repository and chart.
pub(crate) const CHART_REPO: &str = "https://storage.googleapis.com/gloo-mesh/gloo-mesh";
pub(crate) const CHART: &str = "gloo-mesh";

/// The API group Gloo Mesh discovery writes in (0.x since the Service Mesh Hub rename, and 1.x).
pub(crate) const DISCOVERY_GROUP: &str = "discovery.mesh.gloo.solo.io";

/// The resources Gloo Mesh discovery writes in [`DISCOVERY_GROUP`], per release line, as the charts'
/// generated CRDs define them (solo-io/gloo-mesh, formerly solo-io/supergloo,
/// `install/helm/gloo-mesh/crds/discovery.mesh.gloo.solo.io_<version>_crds.yaml`): 0.x serves
/// v1alpha2 `meshes`, `traffictargets`, `workloads`; 1.x serves v1 `meshes`, `destinations`,
/// `workloads` (TrafficTarget became Destination). The same position is the same concept in every
/// line, so a resource observed before an upgrade maps to its successor.
pub(crate) const DISCOVERY_LINES: [(u64, [&str; 3]); 2] = [
    (0, ["meshes", "traffictargets", "workloads"]),
    (1, ["meshes", "destinations", "workloads"]),
];

/// The discovery resources of `version`'s release line (the newest line known for later majors).
pub(crate) fn discovery_resources(version: Version) -> &'static [&'static str; 3] {
    let (_, resources) = DISCOVERY_LINES
        .iter()
        .rev()
        .find(|(major, _)| *major <= version.major)
        .unwrap_or(&DISCOVERY_LINES[0]);
    resources
}
pub(crate) const NETWORKING_RESOURCES: [&str; 4] = [
    "trafficpolicies",
    "virtualmeshes",
    "failoverservices",
    "accesspolicies",
];

/// A Gloo Mesh upgrade of one management cluster.
pub(crate) struct GlooUpgrade<'a> {
    pub cluster: &'a Cluster,
    pub gloo: &'a GlooMesh,
    pub from: Version,
    pub to: Version,
    /// Kube contexts known to the plan (the snapshot's cluster names): a registered cluster whose name
    /// is one of them is re-registered with that context.
    pub contexts: &'a BTreeSet<String>,
    /// The Gloo Mesh chart repository (the vendor's, or `--chart-repo gloo-mesh=URL`).
    pub chart_repo: &'a str,
}

impl GlooUpgrade<'_> {
    fn namespace(&self) -> String {
        [&self.gloo.discovery, &self.gloo.networking]
            .into_iter()
            .flatten()
            .map(|w| w.namespace.clone())
            .next()
            .unwrap_or_else(|| "gloo-mesh".to_string())
    }
}

/// The discovery API group the management cluster actually serves (`discovery.mesh.gloo.solo.io` in
/// released versions, `discovery.smh.solo.io` before the rename); never the seed's spelling by rote.
pub(crate) fn discovery_group(gloo: &GlooMesh) -> Option<&ServedGroup> {
    served_group(gloo, "discovery.")
}

pub(crate) fn networking_group(gloo: &GlooMesh) -> Option<&ServedGroup> {
    served_group(gloo, "networking.")
}

fn served_group<'g>(gloo: &'g GlooMesh, prefix: &str) -> Option<&'g ServedGroup> {
    gloo.served_groups
        .iter()
        .filter(|g| g.group.starts_with(prefix) && g.group.ends_with("solo.io"))
        .max_by_key(|g| {
            g.resources
                .iter()
                .filter(|r| {
                    DISCOVERY_LINES
                        .iter()
                        .any(|(_, resources)| resources.contains(&r.as_str()))
                        || NETWORKING_RESOURCES.contains(&r.as_str())
                })
                .count()
        })
}

/// The ten seed steps. The caller has checked that the discovery group is served and both Deployments
/// exist.
pub(crate) fn pre_1_0(
    steps: &mut StepList,
    up: &GlooUpgrade<'_>,
    discovery: &Workload,
    networking: &Workload,
    group: &ServedGroup,
) {
    let rb = PRE_1_0;
    let c = up.cluster.name.as_str();
    let to = up.to.to_string();
    let ns = up.namespace();

    // 1. meshctl of the target version.
    meshctl_version_check(steps, c, &rb, 1, up.to);

    // 2. Scale both to zero, recording the replicas to restore (in the plan, the journal and on the
    // object).
    for w in [discovery, networking] {
        let step = steps.push(
            c,
            &format!("scale-down-{}", w.name),
            format!(
                "Scale {}/{} from {} to 0 replicas",
                w.namespace,
                w.name,
                w.usual_replicas()
            ),
            rb.step(
                2,
                "scale down discovery and networking so neither processes resources shaped for the other version",
            ),
            scale_recording(w),
        );
        step.undo = Some(scale_restoring(w));
    }

    // 3. Delete every discovery resource in the group the server serves.
    for resource in &group.resources {
        let count = group
            .counts
            .get(resource)
            .map(|n| format!(" ({n} observed)"))
            .unwrap_or_default();
        let step = steps.push(
            c,
            &format!("delete-{resource}"),
            format!("Delete all {resource}.{}{count}", group.group),
            rb.step(
                3,
                format!(
                    "delete all resources in the discovery API group the cluster serves ({}/{}); discovery recreates them in step 8",
                    group.group, group.version
                ),
            ),
            Action::DeleteCollection {
                group: group.group.clone(),
                version: group.version.clone(),
                resource: resource.clone(),
                namespace: None,
            },
        );
        step.irreversible = true;
    }

    // 4. CRDs first: Helm does not upgrade them.
    steps.push(
        c,
        &format!("crds-{to}"),
        format!("Update the Gloo Mesh CRDs to {to}"),
        rb.step(
            4,
            "update the management plane CRDs by hand: Helm does not upgrade CRDs on `helm upgrade`",
        ),
        Action::ApplyCrds {
            chart: CHART.to_string(),
            repo: up.chart_repo.to_string(),
            version: to.clone(),
        },
    );

    // 5. Networking resources conform to the new APIs.
    steps.push(
        c,
        "review-networking",
        format!("Review networking resources against the {to} APIs"),
        rb.step(
            5,
            "ensure every networking resource conforms to the latest APIs; breaking changes are listed in the changelog",
        ),
        Action::Manual {
            instructions: networking_review(up),
            command: None,
        },
    );

    // 6. helm upgrade, not install.
    steps.push(
        c,
        &format!("helm-upgrade-{to}"),
        format!(
            "Upgrade the Gloo Mesh release from {} to {to} with helm upgrade",
            up.from
        ),
        rb.step(
            6,
            "upgrade the management plane with `helm upgrade` (not `helm install`)",
        ),
        helm_upgrade(up.chart_repo, &ns, up.to),
    );
    // Helm renders the chart's replica counts; keep both at zero until steps 8 and 9.
    for w in [discovery, networking] {
        steps.push(
            c,
            &format!("hold-{}", w.name),
            format!("Keep {}/{} at 0 replicas after the Helm upgrade", w.namespace, w.name),
            rb.step(
                6,
                "the chart may have restored its replica count; the runbook brings discovery back first (step 8), networking last (step 9)",
            ),
            scale(w, 0),
        );
    }

    // 7. Re-register every registered cluster.
    reregister(steps, up, &rb, 7);

    // 8. Discovery back (to the replicas it ran before step 2), and wait until it has written its
    // resources.
    steps.push(
        c,
        &format!("scale-up-{}", discovery.name),
        format!(
            "Scale {}/{} back to {}",
            discovery.namespace,
            discovery.name,
            replicas_text(restored_replicas(discovery))
        ),
        rb.step(
            8,
            "scale discovery back up (the runbook says to one replica; the plan restores the count it ran before step 2)",
        ),
        scale_restoring(discovery),
    );
    let (wait_group, waited) = discovery_written_back(up, group);
    steps.push(
        c,
        "wait-discovery-complete",
        format!(
            "Wait until Gloo Mesh {to} discovery has written {}",
            waited.join(", ")
        ),
        rb.step(
            8,
            format!(
                "discovery is complete when all expected resources can be found on the cluster again: those Gloo Mesh {to} writes, in {wait_group} at the version its CRDs serve"
            ),
        ),
        Action::Wait {
            condition: WaitCondition::ResourcesPresent {
                group: wait_group,
                version: None,
                resources: waited,
            },
            timeout_seconds: WAIT_TIMEOUT_SECONDS,
        },
    );

    // 9. Networking back.
    steps.push(
        c,
        &format!("scale-up-{}", networking.name),
        format!(
            "Scale {}/{} back to {}",
            networking.namespace,
            networking.name,
            replicas_text(restored_replicas(networking))
        ),
        rb.step(
            9,
            "scale networking back up (the runbook says to one replica; the plan restores the count it ran before step 2); errors on networking resources settle once its watches start",
        ),
        scale_restoring(networking),
    );
    steps.push(
        c,
        &format!("wait-{}", networking.name),
        format!(
            "Wait for {}/{} to be rolled out",
            networking.namespace, networking.name
        ),
        rb.step(9, "networking reaches a steady state"),
        rollout(&networking.kind, &networking.namespace, &networking.name),
    );

    // 10. meshctl check.
    meshctl_check(steps, c, &rb, 10);
}

/// The group and resources discovery of the target version writes back once scaled up (runbook step
/// 8): not the ones observed before the upgrade, which a new release line may no longer serve. Those
/// observed empty stay out of the wait (discovery found nothing to write before either).
fn discovery_written_back(up: &GlooUpgrade<'_>, observed: &ServedGroup) -> (String, Vec<String>) {
    let before = discovery_resources(up.from);
    let after = discovery_resources(up.to);
    let known_line = observed.group == DISCOVERY_GROUP;
    if !known_line && up.to.major == 0 {
        // A 0.x group of another name (Service Mesh Hub's): the same line writes what it served.
        let waited = observed
            .resources
            .iter()
            .filter(|r| observed.counts.get(*r).is_none_or(|n| *n > 0))
            .cloned()
            .collect();
        return (observed.group.clone(), waited);
    }
    let waited = before
        .iter()
        .zip(after)
        .filter(|(old, _)| !known_line || observed.counts.get(**old).is_none_or(|n| *n > 0))
        .map(|(_, new)| new.to_string())
        .collect();
    (DISCOVERY_GROUP.to_string(), waited)
}

/// Gloo Mesh 1.x: the Helm procedure.
pub(crate) fn helm_1_x(steps: &mut StepList, up: &GlooUpgrade<'_>) {
    let rb = HELM_1_X;
    let c = up.cluster.name.as_str();
    let to = up.to.to_string();
    let ns = up.namespace();
    meshctl_version_check(steps, c, &rb, 1, up.to);
    steps.push(
        c,
        &format!("crds-{to}"),
        format!("Update the Gloo Mesh CRDs to {to}"),
        rb.step(2, "apply the new CRDs first: Helm does not upgrade CRDs"),
        Action::ApplyCrds {
            chart: CHART.to_string(),
            repo: up.chart_repo.to_string(),
            version: to.clone(),
        },
    );
    steps.push(
        c,
        &format!("helm-upgrade-{to}"),
        format!(
            "Upgrade the Gloo Mesh release from {} to {to} with helm upgrade",
            up.from
        ),
        rb.step(3, "upgrade the management plane release in place"),
        helm_upgrade(up.chart_repo, &ns, up.to),
    );
    for w in [&up.gloo.discovery, &up.gloo.networking]
        .into_iter()
        .flatten()
    {
        steps.push(
            c,
            &format!("wait-{}", w.name),
            format!("Wait for {}/{} to be rolled out", w.namespace, w.name),
            rb.step(4, "the management plane runs the new version"),
            rollout(&w.kind, &w.namespace, &w.name),
        );
    }
    reregister(steps, up, &rb, 5);
    meshctl_check(steps, c, &rb, 6);
}

fn meshctl_version_check(steps: &mut StepList, c: &str, rb: &Runbook, n: usize, to: Version) {
    steps.push(
        c,
        "meshctl-version",
        format!("Gate: meshctl on PATH is {to}"),
        rb.step(
            n,
            format!("download the meshctl of the version being upgraded to; `meshctl version` must report {to} as its client version"),
        ),
        Action::Gate {
            gate: Gate::ToolVersion {
                tool: Tool::Meshctl,
                version: to,
            },
        },
    );
}

fn meshctl_check(steps: &mut StepList, c: &str, rb: &Runbook, n: usize) {
    steps.push(
        c,
        "meshctl-check",
        "Run meshctl check",
        rb.step(
            n,
            "verify that all resources are healthy; if not, read the discovery and networking logs and the status of unhealthy resources",
        ),
        run(Tool::Meshctl, &["check"], TOOL_TIMEOUT_SECONDS),
    );
}

fn reregister(steps: &mut StepList, up: &GlooUpgrade<'_>, rb: &Runbook, n: usize) {
    let c = up.cluster.name.as_str();
    let mut registered = up.gloo.registered_clusters.clone();
    registered.sort_by(|a, b| a.name.cmp(&b.name));
    for rc in &registered {
        let text = "re-register every registered cluster with the same cluster name and kube context as at registration, so remote agents and CRDs match the new version";
        let mut args: Vec<String> = vec!["cluster".into(), "register".into()];
        if up.to.major >= 1 {
            args.push("community".into());
            args.push(rc.name.clone());
        } else {
            args.push("--cluster-name".into());
            args.push(rc.name.clone());
        }
        if up.contexts.contains(&rc.name) {
            args.extend([
                "--remote-context".into(),
                rc.name.clone(),
                "--mgmt-context".into(),
                c.to_string(),
            ]);
            steps.push(
                c,
                &format!("register-{}", rc.name),
                format!("Re-register cluster {} (context {})", rc.name, rc.name),
                rb.step(n, text),
                run_owned(Tool::Meshctl, args, TOOL_TIMEOUT_SECONDS),
            );
        } else {
            let mut shown = args.clone();
            shown.insert(0, "meshctl".into());
            shown.extend([
                "--remote-context".into(),
                format!("<context used to register {}>", rc.name),
                "--mgmt-context".into(),
                c.to_string(),
            ]);
            steps.push(
                c,
                &format!("register-{}", rc.name),
                format!("Re-register cluster {} (context not in the snapshot)", rc.name),
                rb.step(n, text),
                Action::Manual {
                    instructions: format!(
                        "No kube context named {} was part of this plan, so the context used at its registration is unknown: run the command with that context, or plan again with --context {} included.",
                        rc.name, rc.name
                    ),
                    command: Some(shown),
                },
            );
        }
    }
}

fn networking_review(up: &GlooUpgrade<'_>) -> String {
    let mut found = Vec::new();
    if let Some(g) = networking_group(up.gloo) {
        for r in NETWORKING_RESOURCES {
            if g.resources.iter().any(|x| x == r) {
                match g.counts.get(r) {
                    Some(n) => found.push(format!("{r} ({n})")),
                    None => found.push(r.to_string()),
                }
            }
        }
        format!(
            "Check that every {} resource conforms to the Gloo Mesh {} APIs before the new version reads it: {}. Breaking changes are listed in the changelog (https://github.com/solo-io/gloo-mesh/releases/tag/v{}).",
            g.group,
            up.to,
            if found.is_empty() {
                NETWORKING_RESOURCES.join(", ")
            } else {
                found.join(", ")
            },
            up.to
        )
    } else {
        format!(
            "Check that every networking resource ({}) conforms to the Gloo Mesh {} APIs; the snapshot lists no networking API group. Breaking changes are listed in the changelog.",
            NETWORKING_RESOURCES.join(", "),
            up.to
        )
    }
}

fn scale(w: &Workload, replicas: u32) -> Action {
    scale_keeping(w, replicas, None)
}

fn scale_keeping(w: &Workload, replicas: u32, before: Option<ReplicasBefore>) -> Action {
    Action::Scale {
        target: object(&w.kind, &w.namespace, &w.name),
        replicas,
        replicas_before: before,
    }
}

/// The scale-down of step 2: to zero, keeping the count it replaces.
fn scale_recording(w: &Workload) -> Action {
    scale_keeping(w, 0, Some(ReplicasBefore::Record))
}

/// The scale-up of steps 8 and 9 (and the undo of step 2): back to the recorded count, which at plan
/// time is the count observed.
fn scale_restoring(w: &Workload) -> Action {
    scale_keeping(w, restored_replicas(w), Some(ReplicasBefore::Restore))
}

/// The replicas a workload runs outside an upgrade, as observed (or as an earlier apply's annotation
/// records them); one when it was already at zero, so a scale-up brings it back.
fn restored_replicas(w: &Workload) -> u32 {
    w.usual_replicas().max(1)
}

/// `1 replica`, `3 replicas`.
fn replicas_text(n: u32) -> String {
    if n == 1 {
        "1 replica".to_string()
    } else {
        format!("{n} replicas")
    }
}

fn helm_upgrade(repo: &str, namespace: &str, to: Version) -> Action {
    run_owned(
        Tool::Helm,
        helm_upgrade_args(CHART, CHART, repo, namespace, to, false),
        TOOL_TIMEOUT_SECONDS,
    )
}
