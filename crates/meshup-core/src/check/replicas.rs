//! Whether a mesh component runs: the one judgement of replica state, which each mesh's rules apply to
//! its own components under its own rule id (`istio.replicas-ready`, `gloo-mesh.replicas-ready`,
//! `kmesh.replicas-ready`).
//!
//! No ready replica (or none desired) is a failure: a control plane at zero serves no configuration,
//! certificates or injection, and an upgrade gate must not pass over it. Some ready, fewer than desired,
//! is a warning.

use super::{Findings, Rule, plural};
use crate::report::Severity;
use crate::snapshot::{Cluster, REPLICAS_BEFORE_ANNOTATION, Workload};

/// Judges one workload. `role` says what it does, for the message: `the Istio control plane of
/// revision 1-22`.
pub(super) fn judge(
    cluster: &Cluster,
    rule: Rule,
    subject: &str,
    role: &str,
    w: &Workload,
    out: &mut Findings,
) {
    let object = format!("{} {}/{}", w.kind, w.namespace, w.name);
    let kind = w.kind.to_ascii_lowercase();
    let describe = format!("kubectl -n {} describe {kind} {}", w.namespace, w.name);
    let (one, many) = if w.kind == "DaemonSet" {
        ("pod", "pods")
    } else {
        ("replica", "replicas")
    };
    let (severity, message) = if w.desired == 0 {
        let message = if w.kind == "DaemonSet" {
            format!(
                "{object} ({role}) is scheduled on no node (0 desired); check its node selector and \
                 tolerations: {describe}"
            )
        } else {
            let scale = |n: u32| {
                format!(
                    "kubectl -n {} scale {kind} {} --replicas={n}",
                    w.namespace, w.name
                )
            };
            match w.replicas_before.filter(|n| *n > 0) {
                Some(n) => format!(
                    "{object} ({role}) is scaled to 0 replicas, so it is down; an unfinished `kubectl meshup apply` \
                     scaled it down from {n} (annotation {REPLICAS_BEFORE_ANNOTATION}): resume that apply, or \
                     scale it back: {}",
                    scale(n)
                ),
                None => format!(
                    "{object} ({role}) is scaled to 0 replicas, so it is down; scale it back to the replicas it \
                     usually runs (at least 1): {}",
                    scale(1)
                ),
            }
        };
        (Severity::Fail, message)
    } else if w.ready == 0 {
        (
            Severity::Fail,
            format!(
                "{object} ({role}) has 0 of {} ready, so it is down; look at its pods: {describe}",
                plural(u64::from(w.desired), one, many)
            ),
        )
    } else if w.ready < w.desired {
        (
            Severity::Warn,
            format!(
                "{object} ({role}) has {} of {} ready; look at its pods: {describe}",
                w.ready,
                plural(u64::from(w.desired), one, many)
            ),
        )
    } else {
        return;
    };
    out.push(
        &cluster.name,
        rule,
        severity,
        subject,
        message,
        "the snapshot",
    );
}
