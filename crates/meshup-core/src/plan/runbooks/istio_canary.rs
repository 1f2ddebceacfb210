//! Istio's revision-based (canary) upgrade, one hop: install the new revision beside the old one, wait
//! until it is ready, move revision tags or namespace labels to it, restart workloads namespace by
//! namespace with a proxy-version gate after each, and remove the old revision only when nothing uses it
//! (pods, labels, tags, webhooks). ztunnel and istio-cni have no canary: they are upgraded in place once
//! the new control plane is ready.

use std::collections::{BTreeMap, BTreeSet};

use super::super::paths::PathHop;
use super::super::steps::{Runbook, StepList};
use super::super::{Action, Gate, Tool};
use super::istio_in_place::ambient_components_in_place;
use super::{
    DataPlane, INJECTION_LABEL, INSTALL_TIMEOUT_SECONDS, IstioContext, REV_LABEL,
    TOOL_TIMEOUT_SECONDS, rollout, run,
};
use crate::plan::install_method::{Method, helm_values, release_of};
use crate::plan::istio_install::revision_name;
use crate::snapshot::{InstallMethod, Workload};

pub(crate) const RUNBOOK: Runbook = Runbook {
    id: "istio-canary",
    source: "istio/istio.io content/en/docs/setup/upgrade/canary/index.md",
    steps: 7,
};

/// Emits one canary hop and returns the revision now in use.
pub(crate) fn hop(
    steps: &mut StepList,
    cx: &IstioContext<'_>,
    data_plane: &mut DataPlane,
    old_revisions: &[String],
    hop: &PathHop,
    hop_label: &str,
) -> String {
    let cluster = cx.cluster;
    let install = cx.install;
    let new_rev = revision_name(hop.to);
    let tag = install.tag(hop.to);
    let old_list = old_revisions.join(", ");
    let irreversible = cx.upgrades_irreversible();
    let istio_ns = install.namespace.as_str();

    // 1. The new control plane, with the istioctl of the target version (when istioctl installs it).
    let by_istioctl = matches!(
        install.method,
        Method::Istioctl { .. } | Method::NotRecorded
    );
    if by_istioctl {
        steps.push(
        cluster,
        &format!("istioctl-{new_rev}"),
        format!("Gate: istioctl on PATH is {}", hop.to),
        RUNBOOK.step(
            1,
            format!(
                "{hop_label}: the new revision is installed with the istioctl of its own version; `istioctl version --remote=false` must print {}",
                hop.to
            ),
        ),
        Action::Gate {
            gate: Gate::ToolVersion {
                tool: Tool::Istioctl,
                version: hop.to,
            },
        },
    );
    }
    let step = steps.push(
        cluster,
        &format!("install-{new_rev}"),
        format!("Install the Istio {tag} control plane as revision {new_rev} beside {old_list}"),
        RUNBOOK.step(
            1,
            format!(
                "{hop_label}: a canary installs the new control plane beside the old one, the way the mesh was installed, with its configuration, keeping the image registry and flavor"
            ),
        ),
        install_action(cx, &new_rev, hop),
    );
    step.irreversible = irreversible;
    if !irreversible {
        step.undo = uninstall_action(cx, &new_rev);
    }

    // 2. Ready before anything moves to it.
    steps.push(
        cluster,
        &format!("wait-istiod-{new_rev}"),
        format!("Wait for istiod-{new_rev} to be rolled out"),
        RUNBOOK.step(
            2,
            format!(
                "{hop_label}: verify the new control plane is running before moving workloads to it"
            ),
        ),
        rollout("Deployment", istio_ns, &format!("istiod-{new_rev}")),
    );
    if install.ambient_flag {
        steps.push(
            cluster,
            &format!("gate-ambient-{new_rev}"),
            format!("Gate: istiod revision {new_rev} runs with PILOT_ENABLE_AMBIENT=true"),
            RUNBOOK.step(
                2,
                format!("{hop_label}: the installed control plane has ambient enabled (ambient mode or Kmesh Dual-Engine), so the new revision must too"),
            ),
            Action::Gate {
                gate: Gate::IstiodAmbientEnabled {
                    namespace: istio_ns.to_string(),
                    revision: new_rev.clone(),
                },
            },
        );
    }
    if install.ambient_components {
        ambient_components_in_place(steps, cx, hop, hop_label);
    }

    // 3. Tags, then namespace labels.
    let tags: Vec<(String, String)> = data_plane
        .tags
        .iter()
        .filter(|(_, rev)| old_revisions.contains(rev))
        .map(|(t, r)| (t.clone(), r.clone()))
        .collect();
    for (tag_name, old_rev) in tags {
        let step = steps.push(
            cluster,
            &format!("tag-{tag_name}"),
            format!("Move revision tag {tag_name} from {old_rev} to {new_rev}"),
            RUNBOOK.step(
                3,
                format!(
                    "{hop_label}: namespaces labelled istio.io/rev={tag_name} follow the tag to the new revision"
                ),
            ),
            run(
                Tool::Istioctl,
                &["tag", "set", &tag_name, "--revision", &new_rev, "--overwrite"],
                TOOL_TIMEOUT_SECONDS,
            ),
        );
        step.undo = Some(run(
            Tool::Istioctl,
            &[
                "tag",
                "set",
                &tag_name,
                "--revision",
                &old_rev,
                "--overwrite",
            ],
            TOOL_TIMEOUT_SECONDS,
        ));
        data_plane.tags.insert(tag_name, new_rev.clone());
    }
    let default_follows_tag = data_plane.tags.contains_key("default");
    let relabel: Vec<(String, String, String)> = data_plane
        .labels
        .iter()
        .filter(|(_, (label, value))| {
            (label == REV_LABEL && old_revisions.contains(value))
                || (label == INJECTION_LABEL
                    && value == "enabled"
                    && !default_follows_tag
                    && old_revisions.iter().any(|r| r == "default"))
        })
        .map(|(ns, (l, v))| (ns.clone(), l.clone(), v.clone()))
        .collect();
    for (ns, label, value) in relabel {
        let mut labels = BTreeMap::new();
        let mut undo = BTreeMap::new();
        labels.insert(REV_LABEL.to_string(), Some(new_rev.clone()));
        if label == INJECTION_LABEL {
            labels.insert(INJECTION_LABEL.to_string(), None);
            undo.insert(INJECTION_LABEL.to_string(), Some(value.clone()));
            undo.insert(REV_LABEL.to_string(), None);
        } else {
            undo.insert(REV_LABEL.to_string(), Some(value.clone()));
        }
        let step = steps.push(
            cluster,
            &format!("label-{ns}"),
            format!("Label namespace {ns} istio.io/rev={new_rev} (was {label}={value})"),
            RUNBOOK.step(
                3,
                format!("{hop_label}: new pods in {ns} are injected by the new revision"),
            ),
            Action::LabelNamespace {
                namespace: ns.clone(),
                labels,
            },
        );
        step.undo = Some(Action::LabelNamespace {
            namespace: ns.clone(),
            labels: undo,
        });
        data_plane
            .labels
            .insert(ns, (REV_LABEL.to_string(), new_rev.clone()));
    }

    // 4 and 5. Restart namespace by namespace, each gated on its proxies. A gateway Helm installed
    // moves with its release instead (Istio's Helm canary upgrade: `helm upgrade <gateway> istio/gateway
    // --set revision=<new>`): its chart puts the revision on the pod template, which a restart of a
    // gateway injected by the default revision's webhook would not change.
    let mut helm_gateways: BTreeMap<String, Vec<(&Workload, &str)>> = BTreeMap::new();
    for gw in &install.istio.gateways {
        if let Some(InstallMethod::Helm { release, .. }) = &gw.workload.install {
            helm_gateways
                .entry(gw.workload.namespace.clone())
                .or_default()
                .push((&gw.workload, release));
        }
    }
    let namespaces: BTreeSet<&String> = data_plane
        .workloads
        .keys()
        .chain(helm_gateways.keys())
        .collect();
    for ns in namespaces {
        let moved = helm_gateways.get(ns).map(Vec::as_slice).unwrap_or_default();
        for (w, release) in moved {
            let mut action = cx.helm_upgrade(release, "gateway", ns, hop.to);
            if let Action::Run { args, .. } = &mut action {
                args.extend(["--set".to_string(), format!("revision={new_rev}")]);
            }
            let step = steps.push(
                cluster,
                &format!("gateway-{}", w.name),
                format!(
                    "Move gateway {ns}/{} to revision {new_rev} (Helm release {release}, chart {})",
                    w.name, hop.to
                ),
                RUNBOOK.step(
                    4,
                    format!(
                        "{hop_label}: a gateway installed with Helm moves to the new revision with `helm upgrade --set revision={new_rev}`, as Istio's Helm canary upgrade documents"
                    ),
                ),
                action,
            );
            step.irreversible = irreversible;
            steps.push(
                cluster,
                &format!("wait-{}", w.name),
                format!("Wait for gateway {ns}/{} to be rolled out", w.name),
                RUNBOOK.step(4, format!("{hop_label}: gateway ready")),
                rollout(&w.kind, ns, &w.name),
            );
        }
        let restart: Vec<String> = data_plane
            .workloads
            .get(ns)
            .into_iter()
            .flatten()
            .filter(|owner| {
                !moved
                    .iter()
                    .any(|(w, _)| **owner == format!("{}/{}", w.kind, w.name))
            })
            .cloned()
            .collect();
        if !restart.is_empty() {
            steps.push(
            cluster,
            &format!("restart-{ns}"),
            format!("Restart {} workload(s) in {ns}", restart.len()),
            RUNBOOK.step(
                4,
                format!(
                    "{hop_label}: restarted pods get the {tag} sidecar; one namespace at a time limits the blast radius"
                ),
            ),
            Action::RestartWorkloads {
                namespace: ns.clone(),
                workloads: restart,
            },
        );
        }
        steps.push(
            cluster,
            &format!("gate-proxies-{ns}"),
            format!("Gate: every proxy in {ns} reports {}", hop.to),
            RUNBOOK.step(
                5,
                format!("{hop_label}: the data plane in {ns} runs the new version before the next namespace"),
            ),
            Action::Gate {
                gate: Gate::ProxiesAtVersion {
                    version: hop.to,
                    namespaces: vec![ns.clone()],
                },
            },
        );
    }

    // 6 and 7. Remove each old revision once nothing uses it.
    for old in old_revisions {
        steps.push(
            cluster,
            &format!("gate-unused-{old}"),
            format!("Gate: nothing uses revision {old} any more"),
            RUNBOOK.step(
                6,
                format!(
                    "{hop_label}: no pod, namespace label, revision tag or webhook may still point at {old} when it is removed"
                ),
            ),
            Action::Gate {
                gate: Gate::RevisionUnused {
                    revision: old.clone(),
                },
            },
        );
        let step = steps.push(
            cluster,
            &format!("remove-{old}"),
            format!("Remove the old control plane revision {old}"),
            RUNBOOK.step(
                7,
                format!(
                    "{hop_label}: uninstall the old control plane once the canary serves everything"
                ),
            ),
            uninstall_action(cx, old).unwrap_or_else(|| Action::Manual {
                instructions: format!(
                    "Remove the old control plane revision {old} the way it was installed; {}",
                    unknown_evidence(cx)
                ),
                command: None,
            }),
        );
        step.irreversible = true;
    }
    new_rev
}

/// The release name Istio's Helm docs give the istiod chart of a revision (`istiod` for the default).
fn istiod_release(cx: &IstioContext<'_>, revision: &str) -> String {
    let observed = cx
        .install
        .control_planes
        .iter()
        .find(|cp| cp.revision == revision)
        .and_then(|cp| release_of(cx.install.istio, &cp.istiod));
    match observed {
        Some(release) => release.name.clone(),
        None if revision == "default" => "istiod".to_string(),
        None => format!("istiod-{revision}"),
    }
}

fn unknown_evidence(cx: &IstioContext<'_>) -> String {
    match &cx.install.method {
        Method::Unknown { evidence } => {
            format!("kubectl-meshup does not invent an install command: {evidence}")
        }
        _ => String::new(),
    }
}

/// Step 1's action: the new revision installed by the method the mesh was installed with.
fn install_action(cx: &IstioContext<'_>, new_rev: &str, hop: &PathHop) -> Action {
    let install = cx.install;
    let tag = install.tag(hop.to);
    match &install.method {
        Method::Helm { istiod, .. } => {
            let mut args: Vec<String> = [
                "install",
                &format!("istiod-{new_rev}"),
                "istiod",
                "--repo",
                cx.chart_repo,
                "--version",
                &hop.to.to_string(),
                "--namespace",
                &install.namespace,
                "--set",
                &format!("revision={new_rev}"),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let config = helm_values(istiod);
            args.extend(cx.image_values("istiod", hop.to, Some(&config.document)));
            args.push("--wait".into());
            Action::Run {
                tool: Tool::Helm,
                args,
                timeout_seconds: INSTALL_TIMEOUT_SECONDS,
                config: Some(config),
            }
        }
        Method::Istioctl { .. } | Method::NotRecorded => {
            let config = match &install.method {
                Method::Istioctl { config } => config.clone(),
                _ => None,
            };
            let mut args: Vec<String> = vec![
                "install".into(),
                "-y".into(),
                "--set".into(),
                format!("revision={new_rev}"),
            ];
            if install.ambient_components {
                args.extend(["--set".into(), "profile=ambient".into()]);
            } else if install.ambient_flag {
                args.extend([
                    "--set".into(),
                    "values.pilot.env.PILOT_ENABLE_AMBIENT=true".into(),
                ]);
            }
            if let Some(hub) = &install.hub {
                args.extend(["--set".into(), format!("hub={hub}")]);
            }
            args.extend(["--set".into(), format!("tag={tag}")]);
            Action::Run {
                tool: Tool::Istioctl,
                args,
                timeout_seconds: INSTALL_TIMEOUT_SECONDS,
                config,
            }
        }
        Method::Unknown { evidence } => Action::Manual {
            instructions: format!(
                "Install Istio {tag} as revision {new_rev} beside the running one, the way this mesh was installed, with the configuration of the running revision (kubectl-meshup does not invent an install command: {evidence}); for an istioctl install the command would be the one below"
            ),
            command: Some(
                [
                    "istioctl",
                    "install",
                    "-y",
                    "--set",
                    &format!("revision={new_rev}"),
                    "--set",
                    &format!("tag={tag}"),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ),
        },
    }
}

/// How a revision installed by this plan or found installed is removed: `helm uninstall` of its
/// release, or `istioctl uninstall --revision`; `None` when the method is unknown.
fn uninstall_action(cx: &IstioContext<'_>, revision: &str) -> Option<Action> {
    match &cx.install.method {
        Method::Helm { .. } => Some(run(
            Tool::Helm,
            &[
                "uninstall",
                &istiod_release(cx, revision),
                "--namespace",
                &cx.install.namespace,
                "--wait",
            ],
            TOOL_TIMEOUT_SECONDS,
        )),
        Method::Istioctl { .. } | Method::NotRecorded => Some(run(
            Tool::Istioctl,
            &["uninstall", "-y", "--revision", revision],
            TOOL_TIMEOUT_SECONDS,
        )),
        Method::Unknown { .. } => None,
    }
}
