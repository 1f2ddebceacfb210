//! The terminal's side of `apply`'s [`Ui`]: [`TerminalUi`] when stdin and stderr are terminals
//! (indicatif spinners, dialoguer prompts; `NO_COLOR` only turns colour off), [`PlainUi`] otherwise
//! (one line per event, which is also what a CI log wants). The command picks one.
//!
//! Both show every text through [`escape_control`]: step titles, reasons and arguments come from a
//! plan file, tool output from a tool, and neither may drive the terminal.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::apply::ui::typed_answer;
use crate::apply::{Answer, PromptError, StepEnd, Ui};
use crate::output::{write_stderr, write_stderr_line};
use crate::text::escape_control;

/// Shown text, escaped.
fn safe(text: &str) -> String {
    escape_control(text).into_owned()
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

    /// A yes/no question (default no) on the terminal's stderr. The cursor the prompt hides is shown
    /// again however it ends; Ctrl-C is [`PromptError::Interrupted`].
    fn confirm_plan(&mut self, question: &str) -> Result<bool, PromptError> {
        let question = safe(question);
        let term = console::Term::stderr();
        // Ctrl-C must not kill the process with the prompt's cursor hidden: with SIGINT handled, the
        // prompt's read is interrupted instead and the cursor is shown below.
        let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
        // The first poll registers the handler; it is held until the prompt is answered.
        let _ = futures::FutureExt::now_or_never(&mut ctrl_c);
        let answer = tokio::task::block_in_place(|| {
            dialoguer::Confirm::new()
                .with_prompt(question)
                .default(false)
                .interact_on_opt(&term)
        });
        drop(ctrl_c);
        let _ = term.show_cursor();
        match answer {
            Ok(answer) => Ok(answer == Some(true)),
            Err(dialoguer::Error::IO(e)) if e.kind() == io::ErrorKind::Interrupted => {
                Err(PromptError::Interrupted)
            }
            Err(dialoguer::Error::IO(e)) => Err(PromptError::Io(e)),
        }
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
