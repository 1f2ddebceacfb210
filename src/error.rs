//! The top-level error, and the one place that maps outcomes to exit codes (documented in `--help`):
//! 0 ok, 1 the tool could not do its job, 2 usage, 3 blocking problems found, 4 declined, 130 interrupted.

use std::process::ExitCode;

use crate::client::ClusterError;
use crate::compat::CompatError;

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
    #[error(
        "`kubectl meshup {0}` is not implemented in this build yet; use `check` and `snapshot` meanwhile"
    )]
    NotImplemented(&'static str),
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Interrupted => Exit::Interrupted,
            Error::Cluster(_)
            | Error::Compat(_)
            | Error::Snapshot { .. }
            | Error::Write { .. }
            | Error::NotImplemented(_) => Exit::Failed,
        }
    }
}

/// Turns a command's result into the process exit code, printing an error as one line on stderr.
pub fn finish(result: Result<Exit, Error>) -> ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("error: {err}");
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
        assert_eq!(Error::NotImplemented("plan").exit(), Exit::Failed);
        assert_eq!(Error::Interrupted.exit(), Exit::Interrupted);
    }
}
