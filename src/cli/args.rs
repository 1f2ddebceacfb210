//! What the user typed: clap definitions. Settings derived from them are resolved in `settings.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use super::clock::parse_date;
use crate::client::parse_request_timeout;

const TOP_EXAMPLES: &str = "\
Examples:
  # Is this cluster inside every compatibility matrix?
  kubectl meshup check

  # Check two clusters at once, for a CI job
  kubectl meshup --context mgmt,remote1 check -o json

  # Save the facts, then judge them offline
  kubectl meshup snapshot --out cluster.yaml
  kubectl meshup check --snapshot cluster.yaml

Exit codes:
  0    ok
  1    the tool could not do its job (unreachable, forbidden, invalid input, a step failed)
  2    usage error
  3    check found a blocking problem, or plan found no allowed path
  4    declined at a prompt (nothing more was changed)
  130  interrupted";

/// Checks, plans and applies service-mesh upgrades (Istio, Gloo Mesh Open Source, Kmesh).
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-meshup",
    bin_name = "kubectl meshup",
    version,
    about,
    after_help = TOP_EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's `--request-timeout`: `None` is `0`, no timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTimeout(pub Option<Duration>);

fn request_timeout(text: &str) -> Result<RequestTimeout, String> {
    parse_request_timeout(text).map(RequestTimeout)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Flags that work before or after any subcommand, as kubectl's.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: KUBECONFIG, a list of files merged, else ~/.kube/config)
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kube context(s) to use; repeat or separate with commas (default: the current context)
    #[arg(long, global = true, value_name = "NAME", value_delimiter = ',', action = ArgAction::Append)]
    pub context: Vec<String>,
    /// Use every context in the kubeconfig
    #[arg(long, global = true, conflicts_with = "context")]
    pub all_contexts: bool,
    /// The kubeconfig cluster to use (overrides the context's)
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use (overrides the context's)
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Namespace for namespaced operations (default: the context's, else `default`)
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Time to wait for each request to the API server: 0 (no limit), 30s, 1m, 1h
    #[arg(long, global = true, value_name = "DURATION", value_parser = request_timeout)]
    pub request_timeout: Option<RequestTimeout>,
    /// Output format (each command lists the ones it writes)
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Compatibility data file to use instead of the built-in data
    #[arg(long, global = true, value_name = "FILE")]
    pub compat: Option<PathBuf>,
    /// When to colour output: auto (a terminal, and NO_COLOR unset), always, never
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Never colour output (same as --color never)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Namespace of the Istio control plane (default: istiod is searched in all namespaces)
    #[arg(long, global = true, value_name = "NAME")]
    pub istio_namespace: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge clusters against the Istio, Gloo Mesh and Kmesh compatibility matrices
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Write the facts observe reads (a ClusterSnapshot) for offline check and plan
    #[command(after_help = SNAPSHOT_HELP)]
    Snapshot(SnapshotArgs),
    /// Plan an ordered upgrade to target versions
    #[command(after_help = PLAN_HELP, args_conflicts_with_subcommands = true)]
    Plan(PlanArgs),
    /// Apply a saved plan step by step
    #[command(after_help = APPLY_HELP)]
    Apply(ApplyArgs),
    /// Show the tool version, its commit and the compatibility data it carries
    #[command(after_help = VERSION_HELP)]
    Version,
    /// Print a shell completion script (for `kubectl-meshup` called directly)
    #[command(after_help = COMPLETION_HELP)]
    Completion {
        /// The shell to write the script for
        shell: clap_complete::Shell,
    },
}

const CHECK_HELP: &str = "\
Output formats: table (default), json, yaml (a CheckReport document).

Examples:
  kubectl meshup check
  kubectl meshup check --context prod -o json
  kubectl meshup check --all-contexts
  kubectl meshup check --snapshot cluster.yaml --date 2025-06-30

Exit codes: 0 no failures, 1 could not check, 2 usage error, 3 a blocking problem was found.";

const SNAPSHOT_HELP: &str = "\
Output formats: yaml (default), json (a ClusterSnapshot document).

Examples:
  kubectl meshup snapshot > cluster.yaml
  kubectl meshup snapshot --context mgmt,remote1 -o json --out fleet.json";

const PLAN_HELP: &str = "\
Examples:
  kubectl meshup plan --to istio=1.24 -o yaml --out plan.yaml
  kubectl meshup plan --to istio=1.24 --snapshot cluster.yaml -o markdown
  kubectl meshup plan show plan.yaml";

const APPLY_HELP: &str = "\
Examples:
  kubectl meshup apply plan.yaml
  kubectl meshup apply plan.yaml --dry-run
  kubectl meshup apply plan.yaml --yes";

const VERSION_HELP: &str = "\
Examples:
  kubectl meshup version
  kubectl meshup version -o json";

const COMPLETION_HELP: &str = "\
Examples:
  kubectl-meshup completion bash > /etc/bash_completion.d/kubectl-meshup
  kubectl-meshup completion zsh > \"${fpath[1]}/_kubectl-meshup\"";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Judge a saved snapshot (`kubectl meshup snapshot`) instead of reading clusters; `-` reads stdin
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Evaluation date for end-of-life rules (default: today, UTC)
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub date: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Write to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    Canary,
    InPlace,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub action: Option<PlanAction>,
    /// Target version, as MESH=VERSION (istio=1.24, gloo-mesh=1.1, kmesh=1.0); repeatable
    #[arg(long = "to", value_name = "MESH=VERSION")]
    pub to: Vec<String>,
    /// How Istio moves between versions
    #[arg(long, value_enum)]
    pub strategy: Option<Strategy>,
    /// Write the plan to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan from a saved snapshot instead of reading clusters
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Also plan Kubernetes upgrades where a mesh target needs them
    #[arg(long)]
    pub include_kubernetes_upgrade: bool,
}

#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Render a saved plan
    Show {
        /// The plan file
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file written by `kubectl meshup plan --out`
    pub plan_file: PathBuf,
    /// Do not prompt before each step
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Show what each step would do; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Take ownership of fields another manager owns (server-side apply)
    #[arg(long)]
    pub force_conflicts: bool,
    /// Remove a stale lock left by an interrupted apply
    #[arg(long)]
    pub break_lock: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand_and_contexts_split_on_commas() {
        let cli = Cli::try_parse_from([
            "kubectl-meshup",
            "check",
            "--context",
            "a,b",
            "--context=c",
            "-o",
            "json",
            "--request-timeout",
            "1m",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.global.context, ["a", "b", "c"]);
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        assert_eq!(
            cli.global.request_timeout,
            Some(RequestTimeout(Some(Duration::from_secs(60))))
        );
        assert_eq!(cli.global.verbose, 2);
    }

    #[test]
    fn usage_errors() {
        for args in [
            vec!["kubectl-meshup"],
            vec!["kubectl-meshup", "check", "--date", "June"],
            vec!["kubectl-meshup", "check", "--request-timeout", "soon"],
            vec!["kubectl-meshup", "check", "-v", "-q"],
            vec![
                "kubectl-meshup",
                "check",
                "--all-contexts",
                "--context",
                "a",
            ],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["kubectl-meshup", "plan", "show", "p.yaml"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Plan(PlanArgs {
                action: Some(PlanAction::Show { .. }),
                ..
            })
        ));
    }
}
