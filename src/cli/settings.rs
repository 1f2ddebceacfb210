//! Settings resolved once from the flags and the environment: colour, log level. Everything that
//! writes to the terminal asks these, never the environment again.
//!
//! Colour, as uv decides it: an explicit choice on the command line wins over the environment.
//! `--no-color` (the same as `--color never`) wins over `--color always`; `--color always` colours
//! even with `NO_COLOR` set or off a terminal; `--color auto` (the default) colours only a terminal
//! whose `TERM` is not `dumb`, and never when `NO_COLOR` is set (then `CLICOLOR_FORCE`/`FORCE_COLOR`
//! do not count either).

use std::io::IsTerminal;

use clap::ValueEnum as _;
use tracing_subscriber::EnvFilter;

use super::args::{ColorChoice, GlobalArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Colour the data written to stdout (tables).
    pub colour: bool,
    /// Colour log lines on stderr.
    pub log_colour: bool,
    pub verbosity: Verbosity,
    /// A person can answer prompts and watch spinners: stdin and stderr are terminals (`apply` then
    /// uses its terminal UI, else plain lines). `NO_COLOR` only turns colour off: it never makes
    /// `apply` refuse to prompt (which would steer people to `--yes`).
    pub interactive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Info,
    Debug,
    Trace,
}

/// What the environment says about colour, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    pub stdin_is_tty: bool,
    pub stdout_is_tty: bool,
    pub stderr_is_tty: bool,
    /// `NO_COLOR` is set and not empty (no-color.org).
    pub no_color_env: bool,
    /// `CLICOLOR_FORCE`/`FORCE_COLOR` ask for colour even off a terminal.
    pub force_color_env: bool,
    /// `TERM` is set and not `dumb`.
    pub term_supports_color: bool,
}

impl Terminal {
    pub fn detect() -> Self {
        Self {
            stdin_is_tty: std::io::stdin().is_terminal(),
            stdout_is_tty: std::io::stdout().is_terminal(),
            stderr_is_tty: std::io::stderr().is_terminal(),
            no_color_env: anstyle_query::no_color(),
            force_color_env: anstyle_query::clicolor_force()
                || std::env::var_os("FORCE_COLOR").is_some_and(|v| !v.is_empty()),
            term_supports_color: anstyle_query::term_supports_color(),
        }
    }
}

/// The colour the flags ask for: `--no-color` wins over `--color`.
fn color_choice(no_color: bool, color: ColorChoice) -> ColorChoice {
    if no_color { ColorChoice::Never } else { color }
}

impl From<ColorChoice> for clap::ColorChoice {
    fn from(choice: ColorChoice) -> Self {
        match choice {
            ColorChoice::Auto => clap::ColorChoice::Auto,
            ColorChoice::Always => clap::ColorChoice::Always,
            ColorChoice::Never => clap::ColorChoice::Never,
        }
    }
}

/// Clap's own colour (help, usage errors) from the raw arguments, which clap has not parsed yet when
/// it prints them: the colour flags as [`Settings::resolve_with`] reads them (`auto` leaves
/// `NO_COLOR` and the terminal to clap, which treats them alike).
pub fn clap_color(argv: &[std::ffi::OsString]) -> clap::ColorChoice {
    let mut color = ColorChoice::Auto;
    let mut no_color = false;
    let parse = |value: &str| ColorChoice::from_str(value, false).ok();
    let mut words = argv.iter().skip(1).map(|word| word.to_string_lossy());
    while let Some(word) = words.next() {
        match word.as_ref() {
            "--" => break,
            "--no-color" => no_color = true,
            "--color" => {
                if let Some(choice) = words.next().as_deref().and_then(parse) {
                    color = choice;
                }
            }
            other => {
                if let Some(choice) = other.strip_prefix("--color=").and_then(parse) {
                    color = choice;
                }
            }
        }
    }
    color_choice(no_color, color).into()
}

/// Clap's colour for errors about a parsed command line.
pub fn clap_color_of(args: &GlobalArgs) -> clap::ColorChoice {
    color_choice(args.no_color, args.color).into()
}

impl Settings {
    pub fn resolve(args: &GlobalArgs) -> Self {
        Self::resolve_with(args, Terminal::detect())
    }

    pub fn resolve_with(args: &GlobalArgs, term: Terminal) -> Self {
        let choice = color_choice(args.no_color, args.color);
        let wants = |is_tty: bool| match choice {
            ColorChoice::Never => false,
            ColorChoice::Always => true,
            ColorChoice::Auto if term.no_color_env => false,
            ColorChoice::Auto if term.force_color_env => true,
            ColorChoice::Auto => is_tty && term.term_supports_color,
        };
        let verbosity = match (args.quiet, args.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Info,
            (false, 2) => Verbosity::Debug,
            (false, _) => Verbosity::Trace,
        };
        Self {
            colour: wants(term.stdout_is_tty),
            log_colour: wants(term.stderr_is_tty),
            verbosity,
            interactive: term.stdin_is_tty && term.stderr_is_tty,
        }
    }

    /// Logs go to stderr through tracing. `-v` raises this crate's level; dependencies stay at most at
    /// `debug`, whose records carry URLs and timings but no credentials.
    pub fn init_logging(&self) {
        let (own, deps) = match self.verbosity {
            Verbosity::Quiet => ("error", "error"),
            Verbosity::Normal => ("warn", "warn"),
            Verbosity::Info => ("info", "warn"),
            Verbosity::Debug => ("debug", "info"),
            Verbosity::Trace => ("trace", "debug"),
        };
        // kube-rs logs every 5xx and transport failure at ERROR, once per attempt; the retry layer
        // logs retries at info and the failure ends as one `error:` line, so those show from -vv on;
        // so does its "Server cert bypassed" per connection (client.rs warns once per context).
        let per_request = match self.verbosity {
            Verbosity::Debug | Verbosity::Trace => deps,
            _ => "off",
        };
        let filter = EnvFilter::try_new(format!(
            "{deps},kube_client::client::builder={per_request},kube_client::client::tls={per_request},kubectl_meshup={own}"
        ))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(self.log_colour)
            .with_env_filter(filter)
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Cli;
    use clap::Parser;

    fn args(flags: &[&str]) -> GlobalArgs {
        let mut argv = vec!["kubectl-meshup", "version"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().global
    }

    const TTY: Terminal = Terminal {
        stdin_is_tty: true,
        stdout_is_tty: true,
        stderr_is_tty: true,
        no_color_env: false,
        force_color_env: false,
        term_supports_color: true,
    };

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(Settings::resolve_with(&args(&[]), TTY).colour);
        let pipe = Terminal {
            stdout_is_tty: false,
            ..TTY
        };
        assert!(!Settings::resolve_with(&args(&[]), pipe).colour);
        let no_color = Terminal {
            no_color_env: true,
            ..TTY
        };
        assert!(!Settings::resolve_with(&args(&[]), no_color).colour);
        let dumb = Terminal {
            term_supports_color: false,
            ..TTY
        };
        assert!(!Settings::resolve_with(&args(&[]), dumb).colour);
        assert!(!Settings::resolve_with(&args(&["--no-color"]), TTY).colour);
        assert!(!Settings::resolve_with(&args(&["--color", "never"]), TTY).colour);
        assert!(Settings::resolve_with(&args(&["--color=always"]), pipe).colour);
        assert!(
            !Settings::resolve_with(&args(&["--color=always", "--no-color"]), TTY).colour,
            "--no-color wins"
        );
        assert!(
            Settings::resolve_with(&args(&["--color=always"]), no_color).colour,
            "an explicit --color always wins over NO_COLOR"
        );
        let forced_but_no_color = Terminal {
            force_color_env: true,
            ..no_color
        };
        assert!(!Settings::resolve_with(&args(&[]), forced_but_no_color).colour);
    }

    #[test]
    fn interactive_needs_stdin_and_stderr_terminals_whatever_no_color_says() {
        assert!(Settings::resolve_with(&args(&[]), TTY).interactive);
        // NO_COLOR (and --no-color) turn colour off, never the prompts (issue 16).
        let no_color = Terminal {
            no_color_env: true,
            ..TTY
        };
        let resolved = Settings::resolve_with(&args(&[]), no_color);
        assert!(resolved.interactive && !resolved.colour && !resolved.log_colour);
        assert!(Settings::resolve_with(&args(&["--no-color"]), TTY).interactive);
        let piped_stdout = Terminal {
            stdout_is_tty: false,
            ..TTY
        };
        assert!(Settings::resolve_with(&args(&[]), piped_stdout).interactive);
        for term in [
            Terminal {
                stdin_is_tty: false,
                ..TTY
            },
            Terminal {
                stderr_is_tty: false,
                ..TTY
            },
        ] {
            assert!(
                !Settings::resolve_with(&args(&[]), term).interactive,
                "{term:?}"
            );
        }
    }

    #[test]
    fn clap_colours_its_help_and_errors_as_the_flags_say() {
        let argv = |words: &[&str]| -> Vec<std::ffi::OsString> {
            std::iter::once("kubectl-meshup")
                .chain(words.iter().copied())
                .map(Into::into)
                .collect()
        };
        assert_eq!(clap_color(&argv(&["--help"])), clap::ColorChoice::Auto);
        assert_eq!(
            clap_color(&argv(&["--no-color", "--help"])),
            clap::ColorChoice::Never
        );
        assert_eq!(
            clap_color(&argv(&["check", "--color", "always", "--bogus"])),
            clap::ColorChoice::Always
        );
        assert_eq!(
            clap_color(&argv(&["--color=never", "--help"])),
            clap::ColorChoice::Never
        );
        assert_eq!(
            clap_color(&argv(&["--color=always", "--no-color"])),
            clap::ColorChoice::Never
        );
        assert_eq!(
            clap_color(&argv(&["--", "--no-color"])),
            clap::ColorChoice::Auto
        );
        assert_eq!(
            clap_color_of(&args(&["--no-color"])),
            clap::ColorChoice::Never
        );
    }

    #[test]
    fn verbosity_levels() {
        assert_eq!(
            Settings::resolve_with(&args(&["-q"]), TTY).verbosity,
            Verbosity::Quiet
        );
        assert_eq!(
            Settings::resolve_with(&args(&["-vvv"]), TTY).verbosity,
            Verbosity::Trace
        );
    }
}
