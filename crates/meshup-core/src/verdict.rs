//! Compatibility verdicts shared by `check` (which turns them into findings), `plan` (refusals and
//! warnings) and `apply`'s gates (progress): each judgement is one pure function over snapshot facts,
//! in the manner of kube-runtime's `Condition`s, so the three cannot disagree. Pure.

use crate::snapshot::KmeshMode;
use crate::version::{KernelVersion, Minor};

/// Where a cluster's Kubernetes minor stands against a mesh release's row: the minors it lists, or
/// (a row that lists none) the minimum it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K8sRange {
    Listed,
    NotListed,
    /// The row lists no minors, only a minimum, and the cluster meets it.
    AtLeastMinimum(Minor),
    BelowMinimum(Minor),
    /// The row lists neither.
    NoData,
}

impl K8sRange {
    /// `Some(true)` inside the row's range, `Some(false)` outside, `None` when the row says nothing.
    pub fn fits(self) -> Option<bool> {
        match self {
            K8sRange::Listed | K8sRange::AtLeastMinimum(_) => Some(true),
            K8sRange::NotListed | K8sRange::BelowMinimum(_) => Some(false),
            K8sRange::NoData => None,
        }
    }
}

/// The Kubernetes range rule of a mesh row (Gloo Mesh's, Kmesh's): `listed` minors when there are any,
/// else `minimum`.
pub fn k8s_range(listed: &[Minor], minimum: Option<Minor>, k8s: Minor) -> K8sRange {
    match (listed.is_empty(), minimum) {
        (false, _) if listed.contains(&k8s) => K8sRange::Listed,
        (false, _) => K8sRange::NotListed,
        (true, Some(min)) if k8s >= min => K8sRange::AtLeastMinimum(min),
        (true, Some(min)) => K8sRange::BelowMinimum(min),
        (true, None) => K8sRange::NoData,
    }
}

/// The Kmesh mode whose compatibility rows judge an installation: its own, and for a mode the data
/// does not know, Dual-Engine's (the stricter rows).
pub fn kmesh_rows_mode(mode: &KmeshMode) -> &KmeshMode {
    match mode {
        KmeshMode::Unknown(_) => &KmeshMode::DualEngine,
        known => known,
    }
}

/// What Kmesh's kernel minimum says about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelVerdict {
    /// The node reports an operating system other than Linux (Windows): no Linux kernel rule applies.
    NotLinux,
    /// A Linux node (or one that reports no operating system) whose kernel cannot be read: unjudged by
    /// check and plan, failed by the gate until it reports one.
    Unreadable,
    /// Older than the minimum.
    Below(KernelVersion),
    /// At least the minimum.
    AtLeast(KernelVersion),
}

/// Whether the Linux kernel rules judge a node that reports `operating_system`: every node that does
/// not report another operating system, so that a node with none reported (its status not filled in
/// yet) is judged, not passed over.
pub fn judged_as_linux(operating_system: &str) -> bool {
    operating_system.is_empty() || operating_system.eq_ignore_ascii_case("linux")
}

/// Kmesh's kernel minimum `min` for a node that reports `operating_system` and whose kernel, as
/// parsed, is `kernel` (`None`: unreadable or not reported).
pub fn kmesh_kernel(
    operating_system: &str,
    kernel: Option<&KernelVersion>,
    min: Minor,
) -> KernelVerdict {
    if !judged_as_linux(operating_system) {
        return KernelVerdict::NotLinux;
    }
    match kernel {
        None => KernelVerdict::Unreadable,
        Some(k) if k.at_least(min) => KernelVerdict::AtLeast(k.clone()),
        Some(k) => KernelVerdict::Below(k.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_range_wins_over_a_minimum_and_no_data_is_no_verdict() {
        let m = |minor| Minor::new(1, minor);
        let listed = [m(28), m(29)];
        assert_eq!(k8s_range(&listed, Some(m(20)), m(29)), K8sRange::Listed);
        assert_eq!(k8s_range(&listed, Some(m(20)), m(30)), K8sRange::NotListed);
        assert_eq!(
            k8s_range(&[], Some(m(20)), m(30)),
            K8sRange::AtLeastMinimum(m(20))
        );
        assert_eq!(
            k8s_range(&[], Some(m(20)), m(19)),
            K8sRange::BelowMinimum(m(20))
        );
        assert_eq!(k8s_range(&[], None, m(19)), K8sRange::NoData);
        assert_eq!(k8s_range(&[], None, m(19)).fits(), None);
        assert_eq!(k8s_range(&listed, None, m(30)).fits(), Some(false));
    }

    #[test]
    fn an_unknown_kmesh_mode_is_judged_by_the_dual_engine_rows() {
        assert_eq!(
            kmesh_rows_mode(&KmeshMode::Unknown("turbo".into())),
            &KmeshMode::DualEngine
        );
        assert_eq!(
            kmesh_rows_mode(&KmeshMode::KernelNative),
            &KmeshMode::KernelNative
        );
    }

    const MIN: Minor = Minor::new(5, 10);

    fn kernel(s: &str) -> Option<KernelVersion> {
        KernelVersion::parse(s)
    }

    #[test]
    fn the_kernel_minimum_compares_numerically() {
        assert_eq!(
            kmesh_kernel("linux", kernel("5.9.16").as_ref(), MIN),
            KernelVerdict::Below(KernelVersion::parse("5.9.16").unwrap())
        );
        assert!(matches!(
            kmesh_kernel("Linux", kernel("5.10.0-1").as_ref(), MIN),
            KernelVerdict::AtLeast(_)
        ));
        assert_eq!(kmesh_kernel("linux", None, MIN), KernelVerdict::Unreadable);
    }

    #[test]
    fn windows_is_not_judged_and_a_node_with_no_operating_system_is() {
        assert_eq!(
            kmesh_kernel("windows", kernel("10.0.20348").as_ref(), MIN),
            KernelVerdict::NotLinux
        );
        assert!(matches!(
            kmesh_kernel("", kernel("5.4.0").as_ref(), MIN),
            KernelVerdict::Below(_)
        ));
        assert_eq!(kmesh_kernel("", None, MIN), KernelVerdict::Unreadable);
    }
}
