//! `kubectl meshup __complete ARGS... WORD`: the protocol kubectl's plugin completion speaks through a
//! `kubectl_complete-meshup` script. One candidate per line (a TAB, then a description, may follow),
//! then `:N`, a cobra ShellCompDirective: `:4` (no file completion) or `:0` where a file path goes.
//!
//! Candidates come from the clap definition itself ([`Cli::command`]): subcommands, flags, the values
//! of enum flags, and for `--context` the kubeconfig's contexts.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::ValueHint;
use clap::{Arg, Command, CommandFactory};

use super::args::Cli;
use crate::client::kubeconfig_contexts;

/// The hidden subcommand name kubectl's completion shim calls.
pub const SUBCOMMAND: &str = "__complete";

/// cobra's ShellCompDirectiveDefault: the shell may complete file names.
const FILES: u8 = 0;
/// cobra's ShellCompDirectiveNoFileComp.
const NO_FILES: u8 = 4;

/// What to print: candidates (`value`, description) and the directive.
#[derive(Debug, PartialEq, Eq)]
pub struct Completion {
    pub candidates: Vec<(String, String)>,
    pub directive: u8,
}

impl Completion {
    fn none(directive: u8) -> Self {
        Self {
            candidates: Vec::new(),
            directive,
        }
    }

    /// The protocol's text: `value\tdescription` lines, then `:directive`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (value, help) in &self.candidates {
            out.push_str(value);
            if !help.is_empty() {
                out.push('\t');
                out.push_str(help);
            }
            out.push('\n');
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }
}

/// Prints the completion of `words` (the last being the word under the cursor) and exits 0.
pub fn main(words: &[OsString]) -> ExitCode {
    let words: Vec<String> = words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let completion = complete(&words, &|kubeconfig| {
        kubeconfig_contexts(kubeconfig.as_deref())
    });
    let _ = crate::output::write_stdout(&completion.to_text());
    ExitCode::SUCCESS
}

/// Where the cursor is: in which (sub)command, and what is being completed.
enum Slot<'a> {
    /// The value of this flag.
    FlagValue(&'a Arg),
    /// A flag name, or a subcommand or positional value.
    Word,
}

/// Completes `words` against the command line definition. `contexts` lists the kubeconfig's contexts
/// (given the `--kubeconfig` typed so far).
pub fn complete(words: &[String], contexts: &dyn Fn(Option<PathBuf>) -> Vec<String>) -> Completion {
    let mut root = Cli::command();
    root.build();
    let (typed, current) = match words.split_last() {
        Some((last, before)) => (before, last.as_str()),
        None => (&[][..], ""),
    };

    let mut command: &Command = &root;
    let mut positionals = 0usize;
    let mut kubeconfig: Option<PathBuf> = None;
    let mut pending: Option<&Arg> = None;
    let mut after_dashes = false;
    for word in typed {
        if let Some(arg) = pending.take() {
            if arg.get_id() == "kubeconfig" {
                kubeconfig = Some(PathBuf::from(word));
            }
            continue;
        }
        if !after_dashes && word == "--" {
            after_dashes = true;
        } else if !after_dashes && word.starts_with('-') && word.len() > 1 {
            let (name, inline) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (word.as_str(), None),
            };
            if let Some(arg) = find_flag(command, name) {
                match inline {
                    Some(v) if arg.get_id() == "kubeconfig" => kubeconfig = Some(PathBuf::from(v)),
                    Some(_) => {}
                    None if takes_value(arg) => pending = Some(arg),
                    None => {}
                }
            }
        } else if let Some(sub) = (positionals == 0 && !after_dashes)
            .then(|| command.find_subcommand(word))
            .flatten()
        {
            command = sub;
        } else {
            positionals += 1;
        }
    }

    let slot = match pending {
        Some(arg) => Slot::FlagValue(arg),
        None => Slot::Word,
    };
    match slot {
        Slot::FlagValue(arg) => values_of(arg, current, "", &kubeconfig, contexts),
        Slot::Word if !after_dashes && current.starts_with("--") && current.contains('=') => {
            let (name, value) = current.split_once('=').unwrap_or((current, ""));
            match find_flag(command, name) {
                Some(arg) if takes_value(arg) => {
                    values_of(arg, value, &format!("{name}="), &kubeconfig, contexts)
                }
                _ => Completion::none(NO_FILES),
            }
        }
        Slot::Word if !after_dashes && current.starts_with('-') => Completion {
            candidates: flags_of(command)
                .into_iter()
                .filter(|(f, _)| f.starts_with(current))
                .collect(),
            directive: NO_FILES,
        },
        Slot::Word => {
            let mut candidates: Vec<(String, String)> = Vec::new();
            if positionals == 0 {
                candidates.extend(
                    command
                        .get_subcommands()
                        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                        .map(|s| (s.get_name().to_string(), about(s))),
                );
            }
            let mut directive = NO_FILES;
            if let Some(arg) = command
                .get_positionals()
                .filter(|a| !a.is_hide_set())
                .nth(positionals)
            {
                let values = values_of(arg, current, "", &kubeconfig, contexts);
                candidates.extend(values.candidates);
                directive = values.directive;
            }
            candidates.retain(|(c, _)| c.starts_with(current));
            Completion {
                candidates,
                directive,
            }
        }
    }
}

fn find_flag<'a>(command: &'a Command, name: &str) -> Option<&'a Arg> {
    command.get_arguments().find(|a| {
        if let Some(long) = name.strip_prefix("--") {
            a.get_long() == Some(long)
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&long))
        } else {
            let mut chars = name.chars().skip(1);
            match (chars.next(), chars.next()) {
                (Some(c), None) => a.get_short() == Some(c),
                _ => false,
            }
        }
    })
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values()) && !arg.is_positional()
}

fn about(command: &Command) -> String {
    command
        .get_about()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

fn help_of(arg: &Arg) -> String {
    arg.get_help().map(|h| h.to_string()).unwrap_or_default()
}

fn flags_of(command: &Command) -> Vec<(String, String)> {
    let mut flags: Vec<(String, String)> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .filter_map(|a| a.get_long().map(|l| (format!("--{l}"), help_of(a))))
        .collect();
    flags.sort();
    flags
}

/// Whether the argument names a file (the shell then completes paths).
fn is_path(arg: &Arg) -> bool {
    matches!(
        arg.get_value_hint(),
        ValueHint::FilePath | ValueHint::AnyPath | ValueHint::DirPath
    ) || arg
        .get_value_names()
        .is_some_and(|names| names.iter().any(|n| n.as_str().ends_with("FILE")))
}

fn values_of(
    arg: &Arg,
    current: &str,
    prefix: &str,
    kubeconfig: &Option<PathBuf>,
    contexts: &dyn Fn(Option<PathBuf>) -> Vec<String>,
) -> Completion {
    if arg.get_id() == "context" {
        // `--context a,b`: complete the word after the last comma.
        let (done, partial) = match current.rsplit_once(',') {
            Some((d, p)) => (format!("{d},"), p),
            None => (String::new(), current),
        };
        let candidates = contexts(kubeconfig.clone())
            .into_iter()
            .filter(|c| c.starts_with(partial))
            .map(|c| (format!("{prefix}{done}{c}"), String::new()))
            .collect();
        return Completion {
            candidates,
            directive: NO_FILES,
        };
    }
    if is_path(arg) {
        return Completion::none(FILES);
    }
    let candidates = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set() && v.get_name().starts_with(current))
        .map(|v| {
            let help = v.get_help().map(|h| h.to_string()).unwrap_or_default();
            (format!("{prefix}{}", v.get_name()), help)
        })
        .collect();
    Completion {
        candidates,
        directive: NO_FILES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn run(words: &[&str]) -> Completion {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        complete(&words, &|kubeconfig| match kubeconfig {
            Some(path) if path == Path::new("fleet.yaml") => vec!["fleet-a".into()],
            _ => vec!["prod".into(), "staging".into()],
        })
    }

    fn values(c: &Completion) -> Vec<&str> {
        c.candidates.iter().map(|(v, _)| v.as_str()).collect()
    }

    #[test]
    fn an_empty_word_lists_the_subcommands_but_not_the_hidden_or_help() {
        let c = run(&[""]);
        assert_eq!(
            values(&c),
            [
                "check",
                "snapshot",
                "plan",
                "apply",
                "fleet",
                "version",
                "compat",
                "completion"
            ]
        );
        assert_eq!(c.directive, NO_FILES);
        assert!(c.candidates.iter().all(|(_, help)| !help.is_empty()));
        assert_eq!(values(&run(&["pl"])), ["plan"]);
    }

    #[test]
    fn flags_of_the_subcommand_include_the_global_ones() {
        let c = run(&["apply", "--"]);
        let flags = values(&c);
        for f in [
            "--yes",
            "--dry-run",
            "--break-lock",
            "--step-timeout",
            "--context",
        ] {
            assert!(flags.contains(&f), "{f} in {flags:?}");
        }
        assert_eq!(values(&run(&["apply", "--dr"])), ["--dry-run"]);
    }

    #[test]
    fn enum_values_and_context_names() {
        assert_eq!(
            values(&run(&["plan", "--strategy", ""])),
            ["canary", "in-place"]
        );
        assert_eq!(values(&run(&["check", "-o", "j"])), ["json"]);
        assert_eq!(values(&run(&["--context", ""])), ["prod", "staging"]);
        assert_eq!(values(&run(&["--context", "prod,st"])), ["prod,staging"]);
        assert_eq!(
            values(&run(&["check", "--context=st"])),
            ["--context=staging"]
        );
        assert_eq!(
            values(&run(&[
                "--kubeconfig",
                "fleet.yaml",
                "plan",
                "--context",
                ""
            ])),
            ["fleet-a"]
        );
        assert_eq!(values(&run(&["completion", ""])).first(), Some(&"bash"));
    }

    #[test]
    fn file_arguments_let_the_shell_complete_paths() {
        for words in [
            &["apply", ""][..],
            &["plan", "show", ""],
            &["plan", "--snapshot", ""],
            &["plan", "--to", "istio=1.24", "--out", ""],
            &["--kubeconfig", ""],
        ] {
            let c = run(words);
            assert_eq!(c.directive, FILES, "{words:?}");
            assert!(c.candidates.is_empty(), "{words:?}");
        }
        // After the plan file, nothing more is positional.
        assert_eq!(run(&["apply", "plan.yaml", ""]).directive, NO_FILES);
        assert!(
            run(&["plan", ""])
                .candidates
                .iter()
                .any(|(v, _)| v == "show")
        );
    }

    #[test]
    fn the_protocol_text_ends_with_the_directive() {
        let c = Completion {
            candidates: vec![
                ("plan".into(), "Plan an upgrade".into()),
                ("x".into(), String::new()),
            ],
            directive: NO_FILES,
        };
        assert_eq!(c.to_text(), "plan\tPlan an upgrade\nx\n:4\n");
    }
}
