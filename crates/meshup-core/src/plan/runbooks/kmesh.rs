//! Kmesh: its prerequisites (a kernel of at least 5.10 on every Linux node; for Dual-Engine mode, istiod
//! with `PILOT_ENABLE_AMBIENT=true`), then the upgrade of the Kmesh Helm release and its DaemonSet.

use super::super::steps::{Runbook, StepList};
use super::super::{Action, Gate, Tool};
use super::{TOOL_TIMEOUT_SECONDS, rollout, run_owned};
use crate::compat::CompatData;
use crate::snapshot::{Cluster, IstioControlPlane, Kmesh, KmeshMode};
use crate::version::Version;

pub(crate) const RUNBOOK: Runbook = Runbook {
    id: "kmesh",
    source: "shared/seeds/kmesh-support-status.md",
    steps: 3,
};

/// The Kmesh chart as its quick start publishes it.
pub(crate) const KMESH_CHART: &str = "oci://ghcr.io/kmesh-net/kmesh-helm";

pub(crate) struct KmeshUpgrade<'a> {
    pub cluster: &'a Cluster,
    pub kmesh: &'a Kmesh,
    pub from: Option<Version>,
    pub to: Version,
    pub compat: &'a CompatData,
    /// The Istio chart repository, for the hand command that turns on istiod's ambient flag.
    pub istio_chart_repo: &'a str,
}

pub(crate) fn emit(steps: &mut StepList, up: &KmeshUpgrade<'_>) {
    let cluster = up.cluster.name.as_str();
    let kernel_min = &up.compat.kmesh.kernel_min;
    steps.push(
        cluster,
        "kmesh-kernels",
        format!(
            "Gate: every Linux node runs kernel {} or newer",
            kernel_min.value
        ),
        RUNBOOK.step(1, format!("prerequisite: {}", kernel_min.rule)),
        Action::Gate {
            gate: Gate::NodeKernelsAtLeast {
                min: kernel_min.value,
            },
        },
    );
    if up.kmesh.mode == KmeshMode::DualEngine {
        let rule = &up.compat.kmesh.dual_engine_min_istio;
        for cp in up.cluster.istio_control_planes() {
            if !cp.ambient_enabled {
                let release = if cp.revision == "default" {
                    "istiod".to_string()
                } else {
                    format!("istiod-{}", cp.revision)
                };
                steps.push(
                    cluster,
                    &format!("enable-ambient-{}", cp.revision),
                    format!("Enable PILOT_ENABLE_AMBIENT on istiod revision {}", cp.revision),
                    RUNBOOK.step(2, format!("prerequisite: {}", rule.rule)),
                    Action::Manual {
                        instructions: format!(
                            "Set pilot.env.PILOT_ENABLE_AMBIENT=true on istiod revision {} (Helm release {release} in {}), keeping its version, and wait for the rollout.",
                            cp.revision, cp.istiod.namespace
                        ),
                        command: Some(enable_ambient_command(up.istio_chart_repo, &release, cp)),
                    },
                );
            }
            steps.push(
                cluster,
                &format!("gate-ambient-{}", cp.revision),
                format!(
                    "Gate: istiod revision {} runs with PILOT_ENABLE_AMBIENT=true",
                    cp.revision
                ),
                RUNBOOK.step(2, format!("prerequisite: {}", rule.rule)),
                Action::Gate {
                    gate: Gate::IstiodAmbientEnabled {
                        namespace: cp.istiod.namespace.clone(),
                        revision: cp.revision.clone(),
                    },
                },
            );
        }
    }
    let ds = &up.kmesh.daemonset;
    let chart_version = format!("v{}", up.to);
    let from = up
        .from
        .map(|v| v.to_string())
        .unwrap_or_else(|| "an unknown version".to_string());
    let step = steps.push(
        cluster,
        &format!("kmesh-{}", up.to),
        format!("Upgrade Kmesh from {from} to {} (Helm release kmesh)", up.to),
        RUNBOOK.step(3, "upgrade the Kmesh release once its prerequisites hold (Kmesh quick start: Helm chart oci://ghcr.io/kmesh-net/kmesh-helm)"),
        helm_upgrade(&ds.namespace, &chart_version),
    );
    if let Some(from) = up.from {
        step.undo = Some(helm_upgrade(&ds.namespace, &format!("v{from}")));
    }
    steps.push(
        cluster,
        &format!("wait-{}", ds.name),
        format!(
            "Wait for the {} DaemonSet to be rolled out on every node",
            ds.name
        ),
        RUNBOOK.step(3, "Kmesh runs on every node before the plan goes on"),
        rollout(&ds.kind, &ds.namespace, &ds.name),
    );
}

/// `helm upgrade` of istiod at its installed version with only the ambient flag changed.
/// `helm upgrade kmesh oci://ghcr.io/kmesh-net/kmesh-helm --version V --namespace NS
/// --reset-then-reuse-values` (an OCI chart: no `--repo`; the new chart's defaults with the release's
/// own values, never `--reuse-values` across chart versions); the upgrade and its undo differ only in
/// the chart version.
fn helm_upgrade(namespace: &str, chart_version: &str) -> Action {
    run_owned(
        Tool::Helm,
        [
            "upgrade",
            "kmesh",
            KMESH_CHART,
            "--version",
            chart_version,
            "--namespace",
            namespace,
            "--reset-then-reuse-values",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        TOOL_TIMEOUT_SECONDS,
    )
}

fn enable_ambient_command(repo: &str, release: &str, cp: &IstioControlPlane) -> Vec<String> {
    let mut args: Vec<String> = ["helm", "upgrade", release, "istiod", "--repo", repo]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(v) = cp.istiod.version.version {
        args.extend(["--version".to_string(), v.to_string()]);
    }
    args.extend(
        [
            "--namespace",
            &cp.istiod.namespace,
            "--reuse-values",
            "--set",
            "pilot.env.PILOT_ENABLE_AMBIENT=true",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args
}
