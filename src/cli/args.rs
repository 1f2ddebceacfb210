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

/// Flags that work before or after any subcommand, as kubectl's. Help lists them apart from each
/// command's own options.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
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
    /// Time to wait for each request to the API server, whole answer included: 0 (no limit), 30s, 1m,
    /// 1h [default: 60s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = request_timeout)]
    pub request_timeout: Option<RequestTimeout>,
    /// Output format (each command lists the ones it writes)
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Compatibility data file to use instead of the built-in data
    #[arg(long, global = true, value_name = "FILE")]
    pub compat: Option<PathBuf>,
    /// When to colour output: auto (a terminal, TERM not dumb, NO_COLOR unset), always (even with
    /// NO_COLOR), never
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Never colour output (same as --color never; wins over --color always)
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

impl Command {
    /// The words after `kubectl meshup` that name this command in its usage line.
    pub fn path(&self) -> &'static [&'static str] {
        match self {
            Command::Check(_) => &["check"],
            Command::Snapshot(_) => &["snapshot"],
            Command::Plan(PlanArgs {
                action: Some(PlanAction::Show { .. }),
                ..
            }) => &["plan", "show"],
            Command::Plan(_) => &["plan"],
            Command::Apply(_) => &["apply"],
            Command::Version => &["version"],
            Command::Completion { .. } => &["completion"],
        }
    }

    /// The `-o` formats this command writes, its default first; empty when it writes none (`apply
    /// PLAN_FILE` reports its progress on stderr, `completion` writes a script).
    pub fn output_formats(&self) -> &'static [OutputFormat] {
        use OutputFormat::{Json, Markdown, Table, Yaml};
        match self {
            Command::Check(_) | Command::Version => &[Table, Json, Yaml],
            Command::Snapshot(_) => &[Yaml, Json],
            Command::Plan(_) => &[Table, Markdown, Yaml, Json],
            // `apply --to` shows the plan it is about to apply.
            Command::Apply(ApplyArgs {
                plan_file: None, ..
            }) => &[Table, Markdown],
            Command::Apply(_) | Command::Completion { .. } => &[],
        }
    }
}

const CHECK_HELP: &str = "\
Output formats: table (default), json, yaml (a CheckReport document).

Examples:
  kubectl meshup check
  kubectl meshup check --context prod -o json
  kubectl meshup check --all-contexts
  kubectl meshup check --snapshot cluster.yaml --date 2025-06-30
  kubectl meshup check --fail-on-unread -o json   # CI: what could not be read blocks too

Exit codes: 0 no failures, 1 could not check, 2 usage error, 3 a blocking problem was found
(with --fail-on-unread, also when a fact could not be read).";

const SNAPSHOT_HELP: &str = "\
Output formats: yaml (default), json (a ClusterSnapshot document).

Examples:
  kubectl meshup snapshot > cluster.yaml
  kubectl meshup snapshot --context mgmt,remote1 -o json --out fleet.json";

const PLAN_HELP: &str = "\
Output formats: table (default), markdown, yaml, json (an UpgradePlan document). With
--out FILE the plan file is written (YAML, or JSON for a .json name or -o json) and stdout
shows the plan.

Examples:
  kubectl meshup plan --to istio=1.24 --out plan.yaml
  kubectl meshup plan --to istio=1.24 --snapshot cluster.yaml -o markdown
  kubectl meshup --context mgmt,remote1 plan --to gloo-mesh=1.1.0 -o yaml > plan.yaml
  kubectl meshup plan show plan.yaml

Exit codes: 0 a plan was made; 1 could not plan (unreachable, unreadable file); 2 usage
error, or a request that cannot be planned (unknown version, downgrade not allowed); 3 no
allowed path (the mesh is not installed, or the cluster or the matrices block the upgrade).";

const PLAN_SHOW_HELP: &str = "\
Examples:
  kubectl meshup plan show plan.yaml
  kubectl meshup plan show plan.yaml -o markdown > UPGRADE.md

Exit codes: 0 shown; 1 the file cannot be read or fails its integrity check; 2 usage error.";

const APPLY_HELP: &str = "\
apply re-reads the plan's clusters (its contexts; --context must name the same ones),
refuses a plan the cluster drifted from, checks permissions, takes a lock, then runs each
step: it prints the step, asks (unless --yes), records it in a journal ConfigMap, acts,
waits and checks gates. Run it again with the same plan to resume after an interruption
(after a killed apply, add --break-lock). A manual step needs a person: on a terminal it is
confirmed when it comes; with --yes, do it ahead and name it with --confirm-manual STEP_ID,
or nothing starts.

Examples:
  kubectl meshup apply plan.yaml
  kubectl meshup apply plan.yaml --dry-run
  kubectl meshup apply plan.yaml --yes
  kubectl meshup apply plan.yaml --yes --confirm-manual mgmt-08-review-networking
  kubectl meshup apply plan.yaml --allow-chart-repo https://charts.example.internal/gloo-mesh
  kubectl meshup apply --to istio=1.24 --out plan.yaml

Exit codes: 0 applied; 1 could not apply (stale plan, missing permissions, locked, a step
failed); 2 usage error, including no terminal to confirm on without --yes; 4 declined at a
prompt (nothing more was changed); 130 interrupted (resume with the same plan).";

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
    /// Exit 3 when any fact could not be read (a `snapshot.unread` finding), for CI jobs that must not
    /// pass on what they could not see
    #[arg(long)]
    pub fail_on_unread: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Write to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// A new revision beside the old one; workloads move over; the old one is removed last
    Canary,
    /// The running control plane is upgraded where it is
    InPlace,
}

impl From<Strategy> for crate::plan::Strategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::Canary => crate::plan::Strategy::Canary,
            Strategy::InPlace => crate::plan::Strategy::InPlace,
        }
    }
}

/// What to plan: shared by `plan` and `apply --to`.
#[derive(Debug, Args)]
pub struct PlanRequestArgs {
    /// Target version, as MESH=VERSION (istio=1.24, gloo-mesh=1.1.0, kmesh=1.1); repeatable
    #[arg(long = "to", value_name = "MESH=VERSION", value_parser = parse_target)]
    pub to: Vec<crate::plan::Target>,
    /// How Istio moves between versions (default: canary)
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub strategy: Option<Strategy>,
    /// Plan a Kubernetes upgrade as a manual first step where a mesh target needs one, instead of refusing
    #[arg(long)]
    pub include_kubernetes_upgrade: bool,
    /// Allow a target older than what is installed (within Istio's downgrade limit; flagged in the plan)
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Take a mesh's charts from a mirror, as MESH=URL (istio=https://charts.example.internal/istio;
    /// https, or http on loopback); applying the plan file needs `--allow-chart-repo URL`; repeatable
    #[arg(long = "chart-repo", value_name = "MESH=URL", value_parser = parse_chart_repo)]
    pub chart_repo: Vec<(crate::plan::Mesh, String)>,
}

impl PlanRequestArgs {
    /// The chart repositories the plan's helm steps use: the vendors', or the mirrors given.
    pub fn chart_repos(&self) -> Result<crate::plan::ChartRepos, String> {
        use crate::plan::Mesh;
        let mut repos = crate::plan::ChartRepos::default();
        let mut seen = std::collections::BTreeSet::new();
        for (mesh, url) in &self.chart_repo {
            if !seen.insert(*mesh) {
                return Err(format!(
                    "--chart-repo names {mesh} twice: give one mirror per mesh"
                ));
            }
            match mesh {
                Mesh::Istio => repos.istio = url.clone(),
                Mesh::GlooMesh => repos.gloo_mesh = url.clone(),
                Mesh::Kmesh => return Err(kmesh_has_no_chart_repo()),
            }
        }
        Ok(repos)
    }
}

fn kmesh_has_no_chart_repo() -> String {
    "Kmesh's chart is an OCI artifact, not a chart repository: --chart-repo takes istio= or gloo-mesh=".to_string()
}

fn parse_target(text: &str) -> Result<crate::plan::Target, String> {
    text.parse()
}

/// `istio=https://charts.example.internal/istio`: a mesh with a Helm chart repository, and a URL
/// that `apply --allow-chart-repo` would accept.
fn parse_chart_repo(text: &str) -> Result<(crate::plan::Mesh, String), String> {
    use crate::plan::Mesh;
    let Some((mesh, url)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not MESH=URL: use, for example, istio=https://charts.example.internal/istio"
        ));
    };
    let mesh: Mesh = mesh.parse()?;
    if mesh == Mesh::Kmesh {
        return Err(format!("`{text}`: {}", kmesh_has_no_chart_repo()));
    }
    Ok((mesh, crate::plan::allowed_chart_repo(url.trim())?))
}

fn step_timeout(text: &str) -> Result<Duration, String> {
    parse_request_timeout(text)?.ok_or_else(|| {
        format!("invalid step timeout `{text}`: use a duration above 0, such as 90s, 10m, 1h")
    })
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub action: Option<PlanAction>,
    #[command(flatten)]
    pub request: PlanRequestArgs,
    /// Also write the plan file to FILE (YAML, or JSON for a .json name or -o json); stdout shows the plan
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan from a saved snapshot instead of reading clusters; `-` reads stdin
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Render a saved plan (checking its integrity): -o table (default), markdown, yaml or json
    #[command(after_help = PLAN_SHOW_HELP)]
    Show {
        /// The plan file
        #[arg(value_name = "PLAN_FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file written by `kubectl meshup plan --out` (or pass --to to plan and apply at once)
    #[arg(value_name = "PLAN_FILE", required_unless_present = "to", conflicts_with_all = ["to", "strategy", "include_kubernetes_upgrade", "allow_downgrade", "chart_repo"])]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub request: PlanRequestArgs,
    /// With --to: also write the plan to FILE, so an interrupted apply can be resumed with it
    #[arg(long, value_name = "FILE", requires = "to")]
    pub out: Option<PathBuf>,
    /// Do not prompt before each step
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Show what each step would do and send writes with dryRun=All; change nothing, run no tool
    #[arg(long)]
    pub dry_run: bool,
    /// Take ownership of fields another manager owns (server-side apply)
    #[arg(long)]
    pub force_conflicts: bool,
    /// Take the apply lock even if another apply holds it (after an apply was killed)
    #[arg(long)]
    pub break_lock: bool,
    /// Limit for every wait, gate and tool run, overriding the plan's (30s, 10m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = step_timeout)]
    pub step_timeout: Option<Duration>,
    /// A manual step (by its id in the plan) you have done ahead, so --yes can pass it; repeatable
    #[arg(long, value_name = "STEP_ID", value_delimiter = ',')]
    pub confirm_manual: Vec<String>,
    /// A chart repository (a mirror: https, or http on a loopback address) the plan's helm and CRD
    /// steps may use in place of the vendor's; repeatable
    #[arg(long, value_name = "URL", value_parser = crate::plan::allowed_chart_repo)]
    pub allow_chart_repo: Vec<String>,
    /// How often waits and gates re-read the cluster (tests use short ones)
    #[arg(long, value_name = "DURATION", value_parser = step_timeout, hide = true)]
    pub poll_interval: Option<Duration>,
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
    fn every_command_path_names_a_subcommand_and_output_defaults_come_first() {
        for argv in [
            &["check"][..],
            &["snapshot"],
            &["plan", "--to", "istio=1.24"],
            &["plan", "show", "p.yaml"],
            &["apply", "p.yaml"],
            &["apply", "--to", "istio=1.24"],
            &["version"],
            &["completion", "bash"],
        ] {
            let cli =
                Cli::try_parse_from(std::iter::once("kubectl-meshup").chain(argv.iter().copied()))
                    .unwrap();
            let mut command = Cli::command();
            for name in cli.command.path() {
                command = command
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("{argv:?}: no subcommand {name}"))
                    .clone();
            }
            assert_eq!(command.get_name(), *cli.command.path().last().unwrap());
        }
        let snapshot = Cli::try_parse_from(["kubectl-meshup", "snapshot"]).unwrap();
        assert_eq!(snapshot.command.output_formats()[0], OutputFormat::Yaml);
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
