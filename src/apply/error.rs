//! What can stop an apply ([`ApplyError`], each with the one line a person reads) and why one step did
//! not finish ([`StepError`], the executor's own). Exit codes: [`crate::error::apply_exit`].

use super::actions::ActionError;
use super::journal::{self, JournalError};
use super::lock::LockError;
use super::permissions::Permission;
use super::tools::ToolError;
use crate::plan::ScopeViolation;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("declined at step {step}; nothing more was changed; resume later with `{resume}`")]
    Declined { step: String, resume: String },
    #[error(
        "interrupted{}; the journal records where it stopped; resume with `{resume}`",
        at_step(.step)
    )]
    Interrupted {
        step: Option<String>,
        resume: String,
    },
    #[error(
        "no terminal to confirm the steps on; re-run with --yes to apply without prompts, or with --dry-run to only show them"
    )]
    NeedsConfirmation,
    #[error(
        "--confirm-manual names {}, which {} of this plan; {}; nothing was changed",
        .unknown.join(", "),
        if .unknown.len() == 1 { "is not a manual step" } else { "are not manual steps" },
        manual_list(.manual)
    )]
    UnknownManualStep {
        unknown: Vec<String>,
        /// The plan's manual step ids.
        manual: Vec<String>,
    },
    #[error("{}", unconfirmed_text(.steps))]
    ManualStepsUnconfirmed {
        /// (step id, title) of each manual step not done and not confirmed ahead.
        steps: Vec<(String, String)>,
    },
    #[error(
        "the plan is stale: the cluster changed since it was made ({}); make a new plan with `{replan}`",
        .changes.join("; ")
    )]
    StalePlan {
        changes: Vec<String>,
        replan: String,
    },
    #[error(
        "missing permissions, nothing was changed: {}; ask a cluster admin for them (kubectl auth can-i shows them)",
        .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    MissingPermissions { missing: Vec<Permission> },
    #[error("cannot check permissions in cluster {cluster}: {}", crate::client::brief(.source))]
    PermissionCheck {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0}")]
    OtherPlanInProgress(Box<UnfinishedApply>),
    #[error("in cluster {cluster}: {source}")]
    Journal {
        cluster: String,
        #[source]
        source: JournalError,
    },
    #[error(
        "the plan names cluster {cluster}, which was not given; pass its context (the plan's clusters are the kube contexts it was made for)"
    )]
    UnknownCluster { cluster: String },
    #[error("the plan is not valid: {0}; make a new plan")]
    InvalidPlan(String),
    #[error(
        "context {context} now names API server {actual}, not {expected}, the one the plan was made against; nothing was run there: point the context back at {expected}, or make a new plan for the cluster it names now with `{replan}`"
    )]
    ClusterMoved {
        context: String,
        expected: String,
        actual: String,
        replan: String,
    },
    #[error(
        "cannot tell which API server context {context} names now ({reason}); nothing was run there: fix the kubeconfig, then resume with `{resume}`"
    )]
    ClusterUnknown {
        context: String,
        reason: String,
        resume: String,
    },
    #[error(
        "the plan reaches outside its scope at {0}; nothing was changed: apply only runs what `kubectl meshup plan` writes for these clusters, so make a new plan instead of editing one"
    )]
    OutOfScope(ScopeViolation),
    #[error("step {step} failed: {reason}{}", undo_text(.undo))]
    StepFailed {
        step: String,
        reason: String,
        /// Commands that undo the steps done so far (newest first), when they were not undone.
        undo: Vec<String>,
    },
}

/// Another plan's apply that has not finished, found in a cluster's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedApply {
    pub cluster: String,
    pub namespace: String,
    /// The start of the other plan's hash.
    pub plan: String,
    pub targets: String,
    pub done: usize,
    pub total: usize,
    pub started_at: String,
    /// `kubectl --kubeconfig F --context C` for the delete hint.
    pub kubectl: String,
}

impl std::fmt::Display for UnfinishedApply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = journal::JOURNAL_NAME;
        write!(
            f,
            "cluster {c} has an unfinished apply of another plan ({t}, {d} of {n} steps done, started {s}, plan {p}) in ConfigMap {ns}/{name}; resume it with its own plan file, or if it is abandoned, delete it: `{k} -n {ns} delete configmap {name}`",
            c = self.cluster,
            t = self.targets,
            d = self.done,
            n = self.total,
            s = self.started_at,
            p = self.plan,
            ns = self.namespace,
            k = self.kubectl,
        )
    }
}

fn at_step(step: &Option<String>) -> String {
    step.as_ref()
        .map(|s| format!(" at step {s}"))
        .unwrap_or_default()
}

fn unconfirmed_text(steps: &[(String, String)]) -> String {
    let named: Vec<String> = steps
        .iter()
        .map(|(id, title)| format!("{id} ({title})"))
        .collect();
    let flags: Vec<String> = steps
        .iter()
        .map(|(id, _)| format!("--confirm-manual {id}"))
        .collect();
    let (step, it, as_they_come) = if steps.len() == 1 {
        ("step", "it", "when it comes")
    } else {
        ("steps", "them", "as they come")
    };
    format!(
        "--yes cannot do the plan's manual {step} {}; nothing was changed: do {it} first, then re-run with `{}`, or apply on a terminal without --yes to confirm {it} {as_they_come}",
        named.join(", "),
        flags.join(" ")
    )
}

fn manual_list(manual: &[String]) -> String {
    if manual.is_empty() {
        "the plan has no manual steps".to_string()
    } else {
        format!("its manual steps are: {}", manual.join(", "))
    }
}

fn undo_text(undo: &[String]) -> String {
    if undo.is_empty() {
        String::new()
    } else {
        format!("; to undo the steps done: {}", undo.join(" && "))
    }
}

/// Why one step did not finish.
#[derive(Debug)]
pub(super) enum StepError {
    /// The step did not do its job; the run stops there and offers the undo.
    Failed(StepFailure),
    Interrupted,
    Declined,
    /// Stopped before a tool ran, for a reason that is not the step's (the context moved): the whole
    /// apply ends with this error, and nothing is offered to undo (the hints would reach the same
    /// context).
    Refused(Box<ApplyError>),
}

/// What made a step fail, with its cause's own type; its message is the step's failure reason.
#[derive(Debug, thiserror::Error)]
pub(super) enum StepFailure {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The journal could not be saved, or the plan names a cluster apply has no client for.
    #[error(transparent)]
    Apply(Box<ApplyError>),
    #[error("cannot prompt: {0}")]
    Prompt(std::io::Error),
    /// The plan's carried configuration could not be written for the tool.
    #[error("{what}: {source}")]
    CarriedConfig {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// What the step waited for did not come (a gate or wait not met in time, a tool at another
    /// version, a manual step with no one to confirm it): the sentence that says so.
    #[error("{0}")]
    Unmet(String),
}

impl StepError {
    /// A step that did not get what it needs, said in `why`.
    pub(super) fn unmet(why: impl Into<String>) -> Self {
        StepError::Failed(StepFailure::Unmet(why.into()))
    }
}

impl From<ApplyError> for StepFailure {
    fn from(e: ApplyError) -> Self {
        StepFailure::Apply(Box::new(e))
    }
}

impl From<StepFailure> for StepError {
    fn from(e: StepFailure) -> Self {
        StepError::Failed(e)
    }
}

impl From<ActionError> for StepError {
    fn from(e: ActionError) -> Self {
        StepError::Failed(e.into())
    }
}

impl From<ToolError> for StepError {
    fn from(e: ToolError) -> Self {
        StepError::Failed(e.into())
    }
}

impl From<ApplyError> for StepError {
    fn from(e: ApplyError) -> Self {
        StepError::Failed(e.into())
    }
}

/// How an apply that did not finish ends, for the exit code: one kind per [`ApplyError`], named in
/// one exhaustive match ([`ApplyError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyErrorKind {
    /// The user said no at a prompt.
    Declined,
    /// Ctrl-C or the caller's interrupt.
    Interrupted,
    /// The invocation cannot work as given (no terminal without `--yes`, `--confirm-manual` naming a
    /// step that is not manual, manual steps an unattended run cannot do).
    Usage,
    /// Apply could not do its job.
    Failed,
}

impl ApplyError {
    pub fn kind(&self) -> ApplyErrorKind {
        match self {
            ApplyError::Declined { .. } => ApplyErrorKind::Declined,
            ApplyError::Interrupted { .. } => ApplyErrorKind::Interrupted,
            ApplyError::NeedsConfirmation
            | ApplyError::UnknownManualStep { .. }
            | ApplyError::ManualStepsUnconfirmed { .. } => ApplyErrorKind::Usage,
            ApplyError::StalePlan { .. }
            | ApplyError::MissingPermissions { .. }
            | ApplyError::PermissionCheck { .. }
            | ApplyError::Lock(_)
            | ApplyError::OtherPlanInProgress(_)
            | ApplyError::Journal { .. }
            | ApplyError::UnknownCluster { .. }
            | ApplyError::InvalidPlan(_)
            | ApplyError::ClusterMoved { .. }
            | ApplyError::ClusterUnknown { .. }
            | ApplyError::OutOfScope(_)
            | ApplyError::StepFailed { .. } => ApplyErrorKind::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_names_the_undo_commands_newest_first_joined_for_a_shell() {
        let e = ApplyError::StepFailed {
            step: "s3".into(),
            reason: "not met within 5s".into(),
            undo: vec!["kubectl scale a".into(), "kubectl scale b".into()],
        };
        assert_eq!(
            e.to_string(),
            "step s3 failed: not met within 5s; to undo the steps done: kubectl scale a && kubectl scale b"
        );
        let nothing = ApplyError::StepFailed {
            step: "s1".into(),
            reason: "boom".into(),
            undo: Vec::new(),
        };
        assert_eq!(nothing.to_string(), "step s1 failed: boom");
    }

    #[test]
    fn an_interruption_names_the_step_only_when_there_was_one() {
        let at = ApplyError::Interrupted {
            step: Some("s2".into()),
            resume: "kubectl meshup apply p.yaml".into(),
        };
        assert_eq!(
            at.to_string(),
            "interrupted at step s2; the journal records where it stopped; resume with `kubectl meshup apply p.yaml`"
        );
        let between = ApplyError::Interrupted {
            step: None,
            resume: "R".into(),
        };
        assert_eq!(
            between.to_string(),
            "interrupted; the journal records where it stopped; resume with `R`"
        );
    }

    #[test]
    fn unknown_manual_ids_are_named_with_the_plan_s_manual_steps() {
        let one = ApplyError::UnknownManualStep {
            unknown: vec!["x".into()],
            manual: Vec::new(),
        };
        assert_eq!(
            one.to_string(),
            "--confirm-manual names x, which is not a manual step of this plan; the plan has no manual steps; nothing was changed"
        );
        let two = ApplyError::UnknownManualStep {
            unknown: vec!["x".into(), "y".into()],
            manual: vec!["k8s-1".into()],
        };
        assert_eq!(
            two.to_string(),
            "--confirm-manual names x, y, which are not manual steps of this plan; its manual steps are: k8s-1; nothing was changed"
        );
    }

    #[test]
    fn unconfirmed_manual_steps_say_how_to_confirm_each() {
        let one = ApplyError::ManualStepsUnconfirmed {
            steps: vec![("k8s-1".into(), "upgrade Kubernetes".into())],
        };
        assert_eq!(
            one.to_string(),
            "--yes cannot do the plan's manual step k8s-1 (upgrade Kubernetes); nothing was changed: do it first, then re-run with `--confirm-manual k8s-1`, or apply on a terminal without --yes to confirm it when it comes"
        );
        let two = ApplyError::ManualStepsUnconfirmed {
            steps: vec![("a".into(), "A".into()), ("b".into(), "B".into())],
        };
        assert!(two.to_string().contains(
            "manual steps a (A), b (B); nothing was changed: do them first, then re-run with `--confirm-manual a --confirm-manual b`"
        ));
    }

    #[test]
    fn a_step_error_keeps_its_cause_s_type_and_message() {
        let StepError::Failed(failure) =
            StepError::from(ActionError::Invalid("cannot scale a DaemonSet".into()))
        else {
            panic!("an action error is a failed step");
        };
        assert_eq!(failure.to_string(), "cannot scale a DaemonSet");
        assert!(matches!(
            failure,
            StepFailure::Action(ActionError::Invalid(_))
        ));
        let StepError::Failed(failure) = StepError::from(ApplyError::UnknownCluster {
            cluster: "c".into(),
        }) else {
            panic!("an apply error inside a step is a failed step");
        };
        assert!(matches!(&failure, StepFailure::Apply(e) if e.kind() == ApplyErrorKind::Failed));
    }

    #[test]
    fn each_error_has_its_kind() {
        let kind = |e: ApplyError| e.kind();
        assert_eq!(
            kind(ApplyError::Declined {
                step: "s".into(),
                resume: "r".into()
            }),
            ApplyErrorKind::Declined
        );
        assert_eq!(
            kind(ApplyError::Interrupted {
                step: None,
                resume: "r".into()
            }),
            ApplyErrorKind::Interrupted
        );
        assert_eq!(kind(ApplyError::NeedsConfirmation), ApplyErrorKind::Usage);
        assert_eq!(
            kind(ApplyError::InvalidPlan("x".into())),
            ApplyErrorKind::Failed
        );
    }
}
