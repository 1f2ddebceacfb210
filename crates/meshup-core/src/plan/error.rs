//! Why a plan could not be made. Two kinds, mapped to exit codes by the CLI: the request itself is wrong
//! (exit 2), or the cluster and the compatibility data allow no path to the target (exit 3).

use crate::version::{Minor, Version};

use super::Mesh;

/// How the CLI should treat a [`PlanError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanErrorKind {
    /// The request cannot be planned as asked (exit 2): a version that is not in the data, a downgrade
    /// that was not allowed.
    BadRequest,
    /// No allowed path: the environment or the matrices block the upgrade (exit 3).
    Blocked,
}

/// Every message is one line: what blocks, why, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no target given: pass at least one --to, for example --to istio=1.24")]
    NoTargets,

    #[error("{mesh} appears twice in the targets: give one --to {mesh}=VERSION")]
    DuplicateTarget { mesh: Mesh },

    #[error(
        "{mesh} is not installed in any cluster of the snapshot, so there is nothing to upgrade: check the --context (or --snapshot) you planned against, or drop --to {mesh}"
    )]
    MeshNotInstalled { mesh: Mesh },

    #[error(
        "{mesh} {version} is not in the compatibility data (dated {data_date}): pick a listed version, or fetch newer data with `kubectl meshup compat update` (or pass --compat FILE)"
    )]
    UnknownVersion {
        mesh: Mesh,
        version: String,
        data_date: String,
    },

    #[error(
        "{cluster}: {mesh} {installed} is newer than the target {target}: pass --allow-downgrade to plan a downgrade, or choose a newer target"
    )]
    DowngradeNotAllowed {
        cluster: String,
        mesh: Mesh,
        installed: Version,
        target: Version,
    },

    #[error(
        "{cluster}: {what} could not be read from the snapshot, so {mesh} cannot be planned safely; {fix}"
    )]
    MissingFact {
        cluster: String,
        mesh: Mesh,
        what: String,
        fix: String,
    },

    #[error(
        "{cluster}: Kubernetes {kubernetes} is too old for Istio {target}, which needs Kubernetes {needed} or newer; upgrade the cluster through your provider first, or pass --include-kubernetes-upgrade to plan it as a manual first step"
    )]
    KubernetesTooOld {
        cluster: String,
        kubernetes: Minor,
        target: Minor,
        needed: Minor,
    },

    #[error(
        "{cluster}: Kubernetes {kubernetes} is too old for Istio {target} (needs {needed}), and the installed Istio {installed} does not support Kubernetes {needed} either; upgrade Istio to a version that runs on both first, then plan again"
    )]
    KubernetesUpgradeUnsupported {
        cluster: String,
        kubernetes: Minor,
        target: Minor,
        needed: Minor,
        installed: Minor,
    },

    #[error("{cluster}: Kubernetes {kubernetes} is too new for Istio {target}; {suggestion}")]
    KubernetesTooNew {
        cluster: String,
        kubernetes: Minor,
        target: Minor,
        /// `choose Istio 1.26 or newer (the lowest release that supports it)` or why none does.
        suggestion: String,
    },

    #[error(
        "{cluster}: Kubernetes {kubernetes} is outside {} {version}'s supported Kubernetes {supported}; {fix}",
        .mesh.title()
    )]
    KubernetesOutsideMeshRange {
        cluster: String,
        kubernetes: Minor,
        mesh: Mesh,
        version: Minor,
        supported: String,
        fix: String,
    },

    #[error(
        "{cluster}: DaoCloud -mspider builds and upstream builds are mixed ({found}); DaoCloud does not support mixed upgrades, so make every Istio component one kind first"
    )]
    MixedFlavors { cluster: String, found: String },

    #[error(
        "{cluster}: the installed Istio is {installed} and --to asks for {wanted} builds, but DaoCloud does not support mixing -mspider and other builds in one upgrade (\"{rule}\", {rule_source}); use a target without a suffix, which keeps the installed builds"
    )]
    FlavorChange {
        cluster: String,
        installed: String,
        wanted: String,
        rule: String,
        rule_source: String,
    },

    #[error("{cluster}: {message}")]
    NoPath { cluster: String, message: String },

    #[error(
        "{cluster}: Istio {istio} is outside {} {version}'s supported Istio {supported}; {fix}",
        .mesh.title()
    )]
    OutsideMeshRange {
        cluster: String,
        istio: Minor,
        mesh: Mesh,
        version: Minor,
        supported: String,
        fix: String,
    },

    #[error(
        "{cluster}: node kernels {nodes} are older than {min}, the minimum Kmesh needs; upgrade those nodes (or move Kmesh off them) before upgrading Kmesh"
    )]
    KernelTooOld {
        cluster: String,
        nodes: String,
        min: Minor,
    },
}

impl PlanError {
    pub fn kind(&self) -> PlanErrorKind {
        match self {
            PlanError::NoTargets
            | PlanError::DuplicateTarget { .. }
            | PlanError::UnknownVersion { .. }
            | PlanError::DowngradeNotAllowed { .. } => PlanErrorKind::BadRequest,
            PlanError::MissingFact { .. }
            | PlanError::MeshNotInstalled { .. }
            | PlanError::KubernetesTooOld { .. }
            | PlanError::KubernetesUpgradeUnsupported { .. }
            | PlanError::KubernetesTooNew { .. }
            | PlanError::KubernetesOutsideMeshRange { .. }
            | PlanError::MixedFlavors { .. }
            | PlanError::FlavorChange { .. }
            | PlanError::NoPath { .. }
            | PlanError::OutsideMeshRange { .. }
            | PlanError::KernelTooOld { .. } => PlanErrorKind::Blocked,
        }
    }

    /// True when the environment or the matrices block the plan (the CLI exits 3); false for a bad
    /// request (exit 2).
    pub fn is_blocking(&self) -> bool {
        self.kind() == PlanErrorKind::Blocked
    }
}

/// `1.22, 1.23, 1.24` as `1.22–1.24` when contiguous, else the list.
pub(crate) fn minor_range(minors: &[Minor]) -> String {
    let mut sorted = minors.to_vec();
    sorted.sort();
    sorted.dedup();
    match (sorted.first(), sorted.last()) {
        (None, _) | (_, None) => "(none listed)".to_string(),
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => {
            let contiguous = sorted.windows(2).all(|w| w[0].minors_to(w[1]) == 1);
            if contiguous {
                format!("{a}–{b}")
            } else {
                sorted
                    .iter()
                    .map(Minor::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
    }
}
