//! DaoCloud's upgrade wizard, which every plan follows: (1) select the target version, (2) environment
//! detection: each cluster's Kubernetes must suit the target (too old: upgrade Kubernetes first through
//! the provider; too new: choose a newer target), (3) upgrade, then a health check.

use super::super::error::minor_range;
use super::super::steps::{Runbook, StepList};
use super::super::{Action, Gate, PlanError};
use crate::compat::{CompatData, Support};
use crate::version::Minor;

pub(crate) const WIZARD: Runbook = Runbook {
    id: "daocloud-wizard",
    source: "shared/seeds/daocloud-mesh-istio-upgrade.md",
    steps: 3,
};

/// What environment detection decided for one cluster and one Istio target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Environment {
    /// The Kubernetes minor the Istio hops run on (after a planned manual upgrade, if any).
    pub kubernetes: Minor,
    /// A manual Kubernetes upgrade to plan first: (from, to).
    pub kubernetes_upgrade: Option<(Minor, Minor)>,
    pub warnings: Vec<String>,
}

/// Environment detection for Istio `target` on a cluster running Kubernetes `kubernetes` with Istio
/// `installed`.
pub(crate) fn detect(
    cluster: &str,
    compat: &CompatData,
    kubernetes: Minor,
    installed: Minor,
    target: Minor,
    include_kubernetes_upgrade: bool,
) -> Result<Environment, PlanError> {
    let mut env = Environment {
        kubernetes,
        kubernetes_upgrade: None,
        warnings: Vec::new(),
    };
    let Some(release) = compat.istio_release(target) else {
        return Err(PlanError::UnknownVersion {
            mesh: super::super::Mesh::Istio,
            version: target.to_string(),
            data_date: compat.date.clone(),
        });
    };
    // Decision: the target must be *supported* on the cluster's Kubernetes. istio.io's "tested, but not
    // supported" column does not pass environment detection; it is named in the message instead.
    let tested = match compat.istio_on_k8s(target, kubernetes) {
        Support::Supported => return Ok(env),
        Support::TestedOnly => true,
        Support::Unsupported | Support::NotInData => false,
    };
    let (Some(min), Some(max)) = (
        release.supported_k8s.iter().min().copied(),
        release.supported_k8s.iter().max().copied(),
    ) else {
        return Err(PlanError::NoPath {
            cluster: cluster.to_string(),
            message: format!(
                "the compatibility data lists no supported Kubernetes for Istio {target}; pass corrected data with --compat FILE"
            ),
        });
    };
    if kubernetes < min {
        if !include_kubernetes_upgrade {
            return Err(PlanError::KubernetesTooOld {
                cluster: cluster.to_string(),
                kubernetes,
                target,
                needed: min,
            });
        }
        if compat.istio_on_k8s(installed, min) != Support::Supported {
            return Err(PlanError::KubernetesUpgradeUnsupported {
                cluster: cluster.to_string(),
                kubernetes,
                target,
                needed: min,
                installed,
            });
        }
        env.kubernetes = min;
        env.kubernetes_upgrade = Some((kubernetes, min));
        env.warnings.push(format!(
            "{cluster}: Kubernetes must be upgraded from {kubernetes} to {min} through your provider before the mesh upgrade (manual first step){}",
            if tested { format!("; Istio {target} is only tested, not supported, on {kubernetes}") } else { String::new() }
        ));
        return Ok(env);
    }
    if kubernetes > max {
        let lowest = compat
            .istio
            .releases
            .iter()
            .filter(|r| r.minor > target && r.supported_k8s.contains(&kubernetes))
            .map(|r| r.minor)
            .min();
        let suggestion = match lowest {
            Some(m) => format!(
                "choose Istio {m} or newer (the lowest release that supports Kubernetes {kubernetes}), for example --to istio={m}"
            ),
            None => format!(
                "no Istio release in the compatibility data (dated {}) supports Kubernetes {kubernetes} yet; fetch newer data with `kubectl meshup compat update` (or pass --compat FILE)",
                compat.date
            ),
        };
        return Err(PlanError::KubernetesTooNew {
            cluster: cluster.to_string(),
            kubernetes,
            target,
            suggestion,
        });
    }
    Err(PlanError::NoPath {
        cluster: cluster.to_string(),
        message: format!(
            "Istio {target} is not supported on Kubernetes {kubernetes} (supported: {}); choose another target",
            minor_range(&release.supported_k8s)
        ),
    })
}

/// The manual first step when Kubernetes must be upgraded first.
pub(crate) fn kubernetes_upgrade_step(
    steps: &mut StepList,
    cluster: &str,
    from: Minor,
    to: Minor,
    target: Minor,
) {
    let one_by_one = if from.minors_to(to) > 1 {
        " one minor at a time (Kubernetes does not skip minors)"
    } else {
        ""
    };
    steps.push(
        cluster,
        &format!("kubernetes-{to}"),
        format!("Upgrade Kubernetes from {from} to {to} through your provider"),
        WIZARD.step(
            2,
            format!(
                "environment detection: Kubernetes {from} is too old for Istio {target}, which needs {to}; upgrade the cluster on the container platform, then re-check"
            ),
        ),
        Action::Manual {
            instructions: format!(
                "Upgrade the control plane and nodes of {cluster} from Kubernetes {from} to {to}{one_by_one} with your provider's procedure (EKS, GKE, AKS, kubeadm...), then confirm `kubectl version` reports {to}."
            ),
            command: None,
        },
    );
}

/// The health check that ends every cluster's part of the plan.
pub(crate) fn health_gate(steps: &mut StepList, cluster: &str) {
    steps.push(
        cluster,
        "check-passes",
        "Gate: kubectl meshup check passes for the cluster",
        WIZARD.step(
            3,
            "health check: after the upgrade the check rules must pass (no failing finding) before the mesh goes back online",
        ),
        Action::Gate {
            gate: Gate::CheckPasses,
        },
    );
}
