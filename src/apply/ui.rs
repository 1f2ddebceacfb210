//! How `apply` talks to the person running it: step lines, progress, prompts — the [`Ui`] trait. The
//! terminal's implementations live with the command (`cli::apply_ui`: spinners and prompts on a
//! terminal, one line per event otherwise); tests script their own [`Ui`]. Every confirmation, the
//! whole-plan question of `apply --to` included, goes through it.
//!
//! An irreversible step is confirmed by typing `yes` ([`Ui::confirm_irreversible`]); a bare Enter
//! declines it.

use std::io;

/// The typed answer to an irreversible step's question: `yes` runs it, `abort` stops and offers the
/// undo, anything else (a bare Enter included) declines.
pub fn typed_answer(typed: &str) -> Answer {
    match typed.trim().to_ascii_lowercase().as_str() {
        "yes" => Answer::Yes,
        "abort" => Answer::Abort,
        _ => Answer::No,
    }
}

/// The answer to "run this step?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Run the step.
    Yes,
    /// Do not run it; stop here. The journal keeps what was done, so `apply` can resume later.
    No,
    /// Stop here and offer to undo the steps already done.
    Abort,
}

/// A prompt could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Ctrl-C at the prompt.
    #[error("interrupted at the prompt")]
    Interrupted,
    #[error("cannot prompt: {0}")]
    Io(#[from] io::Error),
}

/// Where a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEnd {
    Done,
    /// Already done in an earlier run (resume).
    AlreadyDone,
    /// `--dry-run`: shown, sent with `dryRun=All`, or skipped.
    DryRun,
    Failed,
    Interrupted,
    Declined,
}

impl StepEnd {
    /// How a step line ends: `done`, `FAILED`, ...
    pub fn word(self) -> &'static str {
        match self {
            StepEnd::Done => "done",
            StepEnd::AlreadyDone => "already done",
            StepEnd::DryRun => "dry run",
            StepEnd::Failed => "FAILED",
            StepEnd::Interrupted => "interrupted",
            StepEnd::Declined => "declined",
        }
    }
}

/// The executor's view of the terminal. One step is active at a time.
pub trait Ui: Send {
    /// Whether [`Ui::confirm`] can ask a person. `apply` without `--yes` refuses to start when it cannot.
    fn can_prompt(&self) -> bool;
    /// Ask whether to run a step; `details` are the lines shown above the question.
    fn confirm(&mut self, question: &str, details: &[String]) -> Result<Answer, PromptError>;
    /// Ask whether to run an irreversible step: only the typed word `yes` runs it (see
    /// [`typed_answer`]). A Ui that cannot read typed text asks [`Ui::confirm`].
    fn confirm_irreversible(
        &mut self,
        question: &str,
        details: &[String],
    ) -> Result<Answer, PromptError> {
        self.confirm(question, details)
    }
    /// Ask once whether to apply a whole plan (`apply --to`, after the plan was shown): `true` for yes.
    fn confirm_plan(&mut self, question: &str) -> Result<bool, PromptError> {
        self.confirm(question, &[]).map(|a| a == Answer::Yes)
    }
    /// A line of information (not tied to the active step).
    fn line(&mut self, text: &str);
    /// Step `index` of `total` (1-based) starts.
    fn step_started(&mut self, index: usize, total: usize, description: &str);
    /// Progress of the active step (a wait's current state, a tool's output line).
    fn step_progress(&mut self, message: &str);
    /// The active step ended.
    fn step_finished(&mut self, end: StepEnd, note: &str);
    /// Put the terminal back as it was (cursor shown, bars cleared). Called on every exit path.
    fn restore(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_typed_yes_runs_an_irreversible_step() {
        assert_eq!(typed_answer("yes"), Answer::Yes);
        assert_eq!(typed_answer(" YES \n"), Answer::Yes);
        assert_eq!(typed_answer("abort"), Answer::Abort);
        for declined in ["", "\n", "y", "ye", "yes please", "no", "n"] {
            assert_eq!(typed_answer(declined), Answer::No, "{declined:?}");
        }
    }
}
