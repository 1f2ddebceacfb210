//! How `apply` talks to the person running it: step lines, progress, prompts. Everything goes to stderr.
//!
//! The caller picks the implementation once: [`TerminalUi`] when stdin and stderr are terminals
//! (indicatif spinners, dialoguer prompts; `NO_COLOR` only turns colour off), [`PlainUi`] otherwise
//! (one line per event, which is also what a CI log wants). Tests script their own [`Ui`].
//!
//! Both show every text through [`escape_control`]: step titles, reasons and arguments come from a
//! plan file, tool output from a tool, and neither may drive the terminal.
//!
//! An irreversible step is confirmed by typing `yes` ([`Ui::confirm_irreversible`]); a bare Enter
//! declines it.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{write_stderr, write_stderr_line};
use crate::text::escape_control;

/// Shown text, escaped.
fn safe(text: &str) -> String {
    escape_control(text).into_owned()
}

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
    fn word(self) -> &'static str {
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

/// One line per event on stderr: `[3/10] scale Deployment gloo-mesh/discovery 1 -> 0 ... done`.
#[derive(Debug, Default)]
pub struct PlainUi {
    active: Option<String>,
    /// The step's start line is still open (nothing printed after it), so the end can go on it.
    line_open: bool,
}

impl PlainUi {
    pub fn new() -> Self {
        Self::default()
    }

    fn close_line(&mut self) {
        if self.line_open {
            write_stderr_line("");
            self.line_open = false;
        }
    }
}

impl Ui for PlainUi {
    fn can_prompt(&self) -> bool {
        false
    }

    fn confirm(&mut self, _question: &str, _details: &[String]) -> Result<Answer, PromptError> {
        Err(PromptError::Io(io::Error::new(
            io::ErrorKind::NotConnected,
            "not a terminal",
        )))
    }

    fn line(&mut self, text: &str) {
        self.close_line();
        write_stderr_line(&safe(text));
    }

    fn step_started(&mut self, index: usize, total: usize, description: &str) {
        self.close_line();
        let prefix = format!("[{index}/{total}]");
        write_stderr(&format!("{prefix} {} ...", safe(description)));
        self.active = Some(prefix);
        self.line_open = true;
    }

    fn step_progress(&mut self, message: &str) {
        self.close_line();
        write_stderr_line(&format!("    {}", safe(message)));
    }

    fn step_finished(&mut self, end: StepEnd, note: &str) {
        // A step that never started (declined or interrupted at its prompt) has no line to end; the
        // error names it.
        if self.active.is_none() {
            return;
        }
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(" ({})", safe(note))
        };
        if self.line_open {
            write_stderr_line(&format!(" {}{note}", end.word()));
            self.line_open = false;
        } else {
            let prefix = self.active.as_deref().unwrap_or("");
            write_stderr_line(&format!("{prefix} {}{note}", end.word()));
        }
        self.active = None;
    }

    fn restore(&mut self) {
        self.close_line();
    }
}

/// Spinners (indicatif) and prompts (dialoguer) on the terminal's stderr.
pub struct TerminalUi {
    bar: Option<ProgressBar>,
    prefix: String,
    description: String,
    /// A step was started and has not finished.
    active: bool,
}

impl TerminalUi {
    pub fn new() -> Self {
        Self {
            bar: None,
            prefix: String::new(),
            description: String::new(),
            active: false,
        }
    }

    fn print_above(&self, text: &str) {
        let text = &safe(text);
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => write_stderr_line(text),
        }
    }
}

impl Default for TerminalUi {
    fn default() -> Self {
        Self::new()
    }
}

impl Ui for TerminalUi {
    fn can_prompt(&self) -> bool {
        true
    }

    fn confirm(&mut self, question: &str, details: &[String]) -> Result<Answer, PromptError> {
        let ask = || {
            let mut term = console::Term::stderr();
            for line in details {
                writeln!(term, "  {}", safe(line))?;
            }
            dialoguer::Select::new()
                .with_prompt(safe(question))
                .items([
                    "yes: run this step",
                    "no: stop here (resume later with the same plan)",
                    "abort: stop and offer to undo what was done",
                ])
                .default(0)
                .interact_opt()
                .map_err(|dialoguer::Error::IO(e)| e)
        };
        let picked = match &self.bar {
            Some(bar) => bar.suspend(ask),
            None => ask(),
        };
        match picked {
            Ok(Some(0)) => Ok(Answer::Yes),
            Ok(Some(1)) => Ok(Answer::No),
            Ok(Some(_)) | Ok(None) => Ok(Answer::Abort),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(PromptError::Interrupted),
            Err(e) => Err(PromptError::Io(e)),
        }
    }

    fn confirm_irreversible(
        &mut self,
        question: &str,
        details: &[String],
    ) -> Result<Answer, PromptError> {
        let ask = || {
            let mut term = console::Term::stderr();
            for line in details {
                writeln!(term, "  {}", safe(line))?;
            }
            let typed: String = dialoguer::Input::new()
                .with_prompt(format!(
                    "{} type yes to run it, abort to stop and offer the undo (Enter declines)",
                    safe(question)
                ))
                .allow_empty(true)
                .report(false)
                .interact_text_on(&term)
                .map_err(|dialoguer::Error::IO(e)| e)?;
            Ok(typed)
        };
        let typed: io::Result<String> = match &self.bar {
            Some(bar) => bar.suspend(ask),
            None => ask(),
        };
        let _ = console::Term::stderr().show_cursor();
        match typed {
            Ok(text) => Ok(typed_answer(&text)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                write_stderr_line(""); // the error goes below the unanswered question
                Err(PromptError::Interrupted)
            }
            Err(e) => Err(PromptError::Io(e)),
        }
    }

    fn line(&mut self, text: &str) {
        self.print_above(text);
    }

    fn step_started(&mut self, index: usize, total: usize, description: &str) {
        if let Some(old) = self.bar.take() {
            old.finish_and_clear();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.prefix = format!("[{index}/{total}]");
        self.description = safe(description);
        self.active = true;
        bar.set_prefix(self.prefix.clone());
        bar.set_message(self.description.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bar = Some(bar);
    }

    fn step_progress(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {}", self.description, safe(message))),
            None => write_stderr_line(&format!("    {}", safe(message))),
        }
    }

    fn step_finished(&mut self, end: StepEnd, note: &str) {
        // A step that never started (declined or interrupted at its prompt) has no line to end: the
        // prefix and description still name the step before it. The error names the step.
        if !std::mem::take(&mut self.active) {
            return;
        }
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(" ({})", safe(note))
        };
        let text = format!(
            "{} {} ... {}{note}",
            self.prefix,
            self.description,
            end.word()
        );
        match self.bar.take() {
            Some(bar) => {
                bar.finish_and_clear();
                write_stderr_line(&text);
            }
            None => write_stderr_line(&text),
        }
    }

    fn restore(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let _ = console::Term::stderr().show_cursor();
    }
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
