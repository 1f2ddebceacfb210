//! The top-level error, and the one place that maps outcomes to exit codes (documented in `--help`):
//! 0 ok, 1 the tool could not do its job, 2 usage, 3 blocking problems found, 4 declined, 130 interrupted.

use std::process::ExitCode;

use crate::apply::{ApplyError, ApplyErrorKind};
use crate::client::ClusterError;
use crate::compat::CompatError;
use crate::plan::{PlanError, PlanErrorKind, PlanFileError};

/// How a command ended when it did its job; errors map to their own codes through [`Error::exit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    /// The tool could not do its job.
    Failed,
    Usage,
    /// `check` found a blocking problem, or `plan` found no allowed path.
    Blocking,
    /// The user declined at a prompt; nothing more was changed.
    Declined,
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Blocking => 3,
            Exit::Declined => 4,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag combination clap cannot express (for example `-o markdown` on `check`).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Compat(#[from] CompatError),
    #[error(
        "cannot read snapshot {path}: {reason}; pass a file written by `kubectl meshup snapshot`"
    )]
    Snapshot { path: String, reason: String },
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot plan: {0}")]
    Plan(#[from] PlanError),
    #[error("cannot use plan file {path}: {source}")]
    PlanFile {
        path: String,
        #[source]
        source: PlanFileError,
    },
    #[error(
        "cannot read plan file {path}: {reason}; pass a file written by `kubectl meshup plan --out`"
    )]
    ReadPlan { path: String, reason: String },
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(
        "cannot update the compatibility data: {reason}; nothing was changed ({in_use} stays in use)"
    )]
    CompatUpdate { reason: String, in_use: String },
    #[error("cannot read contexts file {path}: {reason}; pass a file of context names, one a line")]
    ContextsFile { path: String, reason: String },
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error(transparent)]
    Push(#[from] crate::metrics::PushError),
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Interrupted => Exit::Interrupted,
            Error::Plan(e) => match e.kind() {
                PlanErrorKind::BadRequest => Exit::Usage,
                PlanErrorKind::Blocked => Exit::Blocking,
            },
            Error::Apply(e) => apply_exit(e),
            Error::Cluster(_)
            | Error::Compat(_)
            | Error::Snapshot { .. }
            | Error::Write { .. }
            | Error::Publish(_)
            | Error::ContextsFile { .. }
            | Error::Push(_)
            | Error::PlanFile { .. }
            | Error::ReadPlan { .. }
            | Error::CompatUpdate { .. } => Exit::Failed,
        }
    }
}

impl From<crate::output::WriteError> for Error {
    fn from(e: crate::output::WriteError) -> Self {
        Error::Write {
            what: e.what,
            source: e.source,
        }
    }
}

/// How an apply that did not finish ends: declined 4, interrupted 130, no terminal without `--yes` 2
/// (its message names `--yes`: a usage error), anything else 1.
pub fn apply_exit(e: &ApplyError) -> Exit {
    match e.kind() {
        ApplyErrorKind::Declined => Exit::Declined,
        ApplyErrorKind::Interrupted => Exit::Interrupted,
        ApplyErrorKind::Usage => Exit::Usage,
        ApplyErrorKind::Failed => Exit::Failed,
    }
}

/// Turns a command's result into the process exit code, printing an error as one line on stderr.
pub fn finish(result: Result<Exit, Error>) -> ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            let line = format!("error: {err}");
            crate::output::write_stderr_line(&crate::text::escape_control(&line));
            err.exit().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes: Vec<u8> = [
            Exit::Ok,
            Exit::Failed,
            Exit::Usage,
            Exit::Blocking,
            Exit::Declined,
            Exit::Interrupted,
        ]
        .into_iter()
        .map(Exit::code)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 130]);
        assert_eq!(Error::Usage("x".into()).exit(), Exit::Usage);
        assert_eq!(Error::Interrupted.exit(), Exit::Interrupted);
    }

    #[test]
    fn plan_errors_split_into_bad_requests_and_blocked_paths() {
        let bad = Error::Plan(PlanError::NoTargets);
        assert_eq!(bad.exit(), Exit::Usage);
        let blocked = Error::Plan(PlanError::MixedFlavors {
            cluster: "prod".into(),
            found: "1.20.3-mspider, 1.20.3".into(),
        });
        assert_eq!(blocked.exit(), Exit::Blocking);
        let tampered = Error::PlanFile {
            path: "plan.yaml".into(),
            source: PlanFileError::IntegrityMismatch,
        };
        assert_eq!(tampered.exit(), Exit::Failed);
    }

    #[test]
    fn apply_outcomes_map_to_their_codes() {
        let declined = ApplyError::Declined {
            step: "s".into(),
            resume: "r".into(),
        };
        assert_eq!(Error::Apply(declined).exit(), Exit::Declined);
        let interrupted = ApplyError::Interrupted {
            step: None,
            resume: "r".into(),
        };
        assert_eq!(Error::Apply(interrupted).exit(), Exit::Interrupted);
        let no_terminal = ApplyError::NeedsConfirmation;
        assert!(no_terminal.to_string().contains("--yes"));
        assert_eq!(Error::Apply(no_terminal).exit(), Exit::Usage);
        let stale = ApplyError::StalePlan {
            changes: vec![],
            replan: "p".into(),
        };
        assert_eq!(Error::Apply(stale).exit(), Exit::Failed);
    }
}
