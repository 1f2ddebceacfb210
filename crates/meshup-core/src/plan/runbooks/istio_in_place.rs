//! Istio's in-place upgrade with Helm, one hop: `base`, then `istiod`, then (ambient) `istio-cni` and
//! `ztunnel`, then the gateways; each followed by a rollout wait; then the sidecar data plane is
//! restarted namespace by namespace and gated on the new version.

use super::super::Tool;
use super::super::paths::PathHop;
use super::super::steps::{Runbook, StepList};
use super::super::{Action, Gate};
use super::{DataPlane, INSTALL_TIMEOUT_SECONDS, IstioContext, rollout};
use crate::plan::install_method::Method;

pub(crate) const SOURCE: &str = "istio/istio.io content/en/docs/setup/upgrade/helm/index.md (in-place upgrade) and content/en/docs/ambient/upgrade/helm/index.md";

/// The warning every ztunnel / istio-cni step carries.
const NODE_TRAFFIC_WARNING: &str = "WARNING: upgrading this DaemonSet restarts it node by node and resets the traffic of every ambient pod on each node; Istio has no canary for it, even with revisions";

/// The stages of this runbook for an install, in order: what gets cited as `step k of n`.
fn stages(cx: &IstioContext<'_>) -> Vec<&'static str> {
    let istio = cx.install.istio;
    let mut s = vec!["base", "istiod"];
    if istio.cni.is_some() {
        s.push("istio-cni");
    }
    if istio.ztunnel.is_some() {
        s.push("ztunnel");
    }
    if !istio.gateways.is_empty() {
        s.push("gateways");
    }
    s.push("restart");
    s.push("gate");
    s
}

fn runbook(cx: &IstioContext<'_>) -> Runbook {
    Runbook {
        id: "istio-in-place",
        source: SOURCE,
        steps: stages(cx).len(),
    }
}

fn stage(cx: &IstioContext<'_>, name: &str) -> usize {
    stages(cx)
        .iter()
        .position(|s| *s == name)
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Emits one in-place hop.
pub(crate) fn hop(
    steps: &mut StepList,
    cx: &IstioContext<'_>,
    data_plane: &DataPlane,
    hop: &PathHop,
    hop_label: &str,
) {
    let rb = runbook(cx);
    let cluster = cx.cluster;
    let install = cx.install;
    let ns = install.namespace.as_str();
    let irreversible = cx.upgrades_irreversible();
    let verb = if hop.downgrade {
        "Downgrade"
    } else {
        "Upgrade"
    };

    match &install.method {
        Method::Helm { .. } | Method::NotRecorded => {
            let step = steps.push(
                cluster,
                &format!("base-{}", hop.to),
                format!("{verb} the istio-base chart (CRDs) to {}", hop.to),
                rb.step(
                    stage(cx, "base"),
                    format!(
                        "{hop_label}: Helm in-place order starts with the base chart (CRDs) ({})",
                        hop.reason
                    ),
                ),
                cx.helm_upgrade("istio-base", "base", ns, hop.to),
            );
            step.irreversible = irreversible;

            for cp in &install.control_planes {
                let (release, deployment) = if cp.revision == "default" {
                    ("istiod".to_string(), cp.istiod.name.clone())
                } else {
                    (format!("istiod-{}", cp.revision), cp.istiod.name.clone())
                };
                let step = steps.push(
                cluster,
                &format!("{release}-{}", hop.to),
                format!("{verb} {release} to {} in place", install.tag(hop.to)),
                rb.step(
                    stage(cx, "istiod"),
                    format!(
                        "{hop_label}: the control plane is upgraded before anything that connects to it"
                    ),
                ),
                cx.helm_upgrade(&release, "istiod", &cp.istiod.namespace, hop.to),
            );
                step.irreversible = irreversible;
                steps.push(
                    cluster,
                    &format!("wait-{deployment}"),
                    format!("Wait for {deployment} to be rolled out"),
                    rb.step(
                        stage(cx, "istiod"),
                        format!("{hop_label}: istiod ready before the next component"),
                    ),
                    rollout("Deployment", &cp.istiod.namespace, &deployment),
                );
            }
        }
        Method::Istioctl { config } => {
            // Istio's in-place procedure for an istioctl install: istioctl of the target version,
            // the same IstioOperator, one command for every component it installed.
            for cp in &install.control_planes {
                let mut args: Vec<String> = vec!["install".into(), "-y".into()];
                if cp.revision != "default" {
                    args.extend(["--set".into(), format!("revision={}", cp.revision)]);
                }
                if install.ambient_components {
                    args.extend(["--set".into(), "profile=ambient".into()]);
                }
                if let Some(hub) = &install.hub {
                    args.extend(["--set".into(), format!("hub={hub}")]);
                }
                args.extend(["--set".into(), format!("tag={}", install.tag(hop.to))]);
                let step = steps.push(
                    cluster,
                    &format!("istioctl-install-{}-{}", cp.revision, hop.to),
                    format!(
                        "{verb} revision {} to {} in place with istioctl",
                        cp.revision,
                        install.tag(hop.to)
                    ),
                    rb.step(
                        stage(cx, "istiod"),
                        format!(
                            "{hop_label}: a mesh installed by istioctl is upgraded in place by the istioctl of the target version with the same configuration"
                        ),
                    ),
                    Action::Run {
                        tool: Tool::Istioctl,
                        args,
                        timeout_seconds: INSTALL_TIMEOUT_SECONDS,
                        config: config.clone(),
                    },
                );
                step.irreversible = irreversible;
                steps.push(
                    cluster,
                    &format!("wait-{}", cp.istiod.name),
                    format!("Wait for {} to be rolled out", cp.istiod.name),
                    rb.step(
                        stage(cx, "istiod"),
                        format!("{hop_label}: istiod ready before the next component"),
                    ),
                    rollout("Deployment", &cp.istiod.namespace, &cp.istiod.name),
                );
            }
        }
        Method::Unknown { evidence } => {
            steps.push(
                cluster,
                &format!("upgrade-{}", hop.to),
                format!("{verb} the Istio control plane to {} in place, by hand", install.tag(hop.to)),
                rb.step(
                    stage(cx, "istiod"),
                    format!("{hop_label}: the mesh was installed by neither Helm nor istioctl"),
                ),
                Action::Manual {
                    instructions: format!(
                        "Upgrade the control plane to {} in place the way this mesh was installed, keeping its configuration (kubectl-meshup does not invent an install command: {evidence})",
                        install.tag(hop.to)
                    ),
                    command: None,
                },
            );
        }
    }

    ambient_components(steps, cx, hop, hop_label, &rb);

    for gw in &install.istio.gateways {
        let w = &gw.workload;
        // The release that owns it (observed), else the chart's convention: named as the Deployment.
        let release = match &w.install {
            Some(crate::snapshot::InstallMethod::Helm { release, .. }) => release.as_str(),
            _ => w.name.as_str(),
        };
        let step = steps.push(
            cluster,
            &format!("gateway-{}", w.name),
            format!("{verb} gateway {}/{} to {}", w.namespace, w.name, install.tag(hop.to)),
            rb.step(
                stage(cx, "gateways"),
                format!("{hop_label}: gateways are upgraded after the control plane, each with its Helm release"),
            ),
            cx.helm_upgrade(release, "gateway", &w.namespace, hop.to),
        );
        step.irreversible = irreversible;
        steps.push(
            cluster,
            &format!("wait-{}", w.name),
            format!(
                "Wait for gateway {}/{} to be rolled out",
                w.namespace, w.name
            ),
            rb.step(stage(cx, "gateways"), format!("{hop_label}: gateway ready")),
            rollout(&w.kind, &w.namespace, &w.name),
        );
    }

    for (namespace, workloads) in &data_plane.workloads {
        let sidecars: Vec<String> = workloads
            .iter()
            .filter(|w| !is_gateway(cx, namespace, w))
            .cloned()
            .collect();
        if sidecars.is_empty() {
            continue;
        }
        steps.push(
            cluster,
            &format!("restart-{namespace}"),
            format!("Restart {} workload(s) in {namespace}", sidecars.len()),
            rb.step(
                stage(cx, "restart"),
                format!(
                    "{hop_label}: sidecars keep the old version until their pods restart; the data plane may lag the control plane by at most {} minor",
                    cx.compat.istio.data_plane_max_lag_minors.value
                ),
            ),
            Action::RestartWorkloads {
                namespace: namespace.clone(),
                workloads: sidecars,
            },
        );
        steps.push(
            cluster,
            &format!("gate-proxies-{namespace}"),
            format!("Gate: every proxy in {namespace} reports {}", hop.to),
            rb.step(
                stage(cx, "gate"),
                format!("{hop_label}: the data plane in {namespace} runs the new version"),
            ),
            Action::Gate {
                gate: Gate::ProxiesAtVersion {
                    version: hop.to,
                    namespaces: vec![namespace.clone()],
                },
            },
        );
    }
}

fn is_gateway(cx: &IstioContext<'_>, namespace: &str, workload: &str) -> bool {
    cx.install.istio.gateways.iter().any(|g| {
        g.workload.namespace == namespace
            && format!("{}/{}", g.workload.kind, g.workload.name) == workload
    })
}

/// istio-cni then ztunnel, in place, for a canary hop (they have no canary).
pub(crate) fn ambient_components_in_place(
    steps: &mut StepList,
    cx: &IstioContext<'_>,
    hop: &PathHop,
    hop_label: &str,
) {
    ambient_components(steps, cx, hop, hop_label, &runbook(cx));
}

fn ambient_components(
    steps: &mut StepList,
    cx: &IstioContext<'_>,
    hop: &PathHop,
    hop_label: &str,
    rb: &Runbook,
) {
    let istio = cx.install.istio;
    let rule = &cx.compat.istio.ambient_components_max_lag_minors;
    for (component, chart, workload) in [
        ("istio-cni", "cni", &istio.cni),
        ("ztunnel", "ztunnel", &istio.ztunnel),
    ] {
        let Some(w) = workload else { continue };
        let step = steps.push(
            cx.cluster,
            &format!("{component}-{}", hop.to),
            format!("Upgrade {component} to {} in place", cx.install.tag(hop.to)),
            rb.rule(
                format!(
                    "{hop_label}: {component} after the control plane ({}). {NODE_TRAFFIC_WARNING}",
                    rule.rule
                ),
                rule.source.clone(),
            ),
            cx.helm_upgrade(component, chart, &w.namespace, hop.to),
        );
        step.irreversible = cx.upgrades_irreversible();
        step.reason.step = Some(format!("step {} of {}", stage(cx, component), rb.steps));
        steps.push(
            cx.cluster,
            &format!("wait-{}", w.name),
            format!(
                "Wait for {component} ({}/{}) to be rolled out on every node",
                w.namespace, w.name
            ),
            rb.step(
                stage(cx, component),
                format!("{hop_label}: {component} ready on every node"),
            ),
            rollout(&w.kind, &w.namespace, &w.name),
        );
    }
}
