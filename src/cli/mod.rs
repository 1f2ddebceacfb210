//! The command line: parse (`args`), resolve settings once (`settings`), run a command, return how it
//! ended. `main.rs` only wires these to the runtime and the exit code.

mod apply;
mod apply_ui;
pub mod args;
mod check;
pub mod clock;
mod compat;
pub mod complete;
mod fleet;
mod plan;
mod settings;
mod snapshot;
mod version;

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, ValueEnum};

pub use args::{Cli, Command, OutputFormat};
pub use settings::{Settings, Terminal, Verbosity, clap_color};

use crate::client::{ConnectionOptions, connect};
use crate::compat::CompatData;
use crate::error::{Error, Exit};
use crate::observe::{ObserveOptions, observe};
use crate::snapshot::{API_VERSION, ClusterSnapshot, SNAPSHOT_KIND};

/// Runs the parsed command line. Ctrl-C ends a command at once with 130, except `apply`, which stops at
/// its next safe point itself (and records where in its journal).
/// `format` is the command's `-o` format, from [`output_format`].
pub async fn run(cli: &Cli, format: OutputFormat, settings: &Settings) -> Result<Exit, Error> {
    if let Command::Apply(args) = &cli.command {
        return apply::run(&cli.global, args, format, settings).await;
    }
    tokio::select! {
        result = run_read_only(cli, format, settings) => result,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    }
}

/// The commands that change nothing in any cluster.
async fn run_read_only(
    cli: &Cli,
    format: OutputFormat,
    settings: &Settings,
) -> Result<Exit, Error> {
    match &cli.command {
        Command::Check(args) => check::run(&cli.global, args, format, settings).await,
        Command::Snapshot(args) => snapshot::run(&cli.global, args, format).await,
        Command::Plan(args) => plan::run(&cli.global, args, format, settings).await,
        Command::Fleet(args) => fleet::run(&cli.global, args, format).await,
        Command::Version => version::run(&cli.global, format),
        Command::Compat { action } => compat::run(&cli.global, action, format).await,
        Command::Completion { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "kubectl-meshup", &mut out);
            crate::output::write_stdout(&String::from_utf8_lossy(&out))?;
            Ok(Exit::Ok)
        }
        // Not reached: `run` starts apply outside the select, so apply handles Ctrl-C itself.
        Command::Apply(args) => apply::run(&cli.global, args, format, settings).await,
    }
}

/// Prints a clap parse failure (or `--help`/`--version`) and returns its exit code: 2 for usage errors.
pub fn parse_failure(err: clap::Error) -> ExitCode {
    let _ = err.print();
    if err.use_stderr() {
        Exit::Usage.into()
    } else {
        Exit::Ok.into()
    }
}

/// The `-o` format the command runs with: the one given, else the command's default (`table` for a
/// command that writes none). A format the command does not write is a usage error, reported as clap
/// reports a bad value: exit 2 with the command's usage line.
pub fn output_format(cli: &Cli) -> Result<OutputFormat, clap::Error> {
    let allowed = cli.command.output_formats();
    let default = allowed.first().copied().unwrap_or(OutputFormat::Table);
    let Some(format) = cli.global.output else {
        return Ok(default);
    };
    if allowed.contains(&format) {
        return Ok(format);
    }
    let mut root = Cli::command().color(settings::clap_color_of(&cli.global));
    root.build();
    let mut command = &mut root;
    for name in cli.command.path() {
        command = command
            .find_subcommand_mut(name)
            .expect("Command::path names defined subcommands");
    }
    let typed = cli.command.path().join(" ");
    let name = |format: &OutputFormat| {
        format
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    };
    let message = if allowed.is_empty() {
        format!(
            "`{typed}` writes no -o format; drop '--output {}'",
            name(&format)
        )
    } else {
        let names: Vec<String> = allowed.iter().map(name).collect();
        format!(
            "invalid value '{}' for '--output <FORMAT>': `{typed}` writes -o {}",
            name(&format),
            names.join("|")
        )
    };
    Err(command.error(clap::error::ErrorKind::InvalidValue, message))
}

fn load_compat(global: &args::GlobalArgs) -> Result<CompatData, Error> {
    Ok(compat::load(global)?.data)
}

fn connection_options(global: &args::GlobalArgs) -> ConnectionOptions {
    ConnectionOptions {
        kubeconfig: global.kubeconfig.clone(),
        contexts: global.context.clone(),
        all_contexts: global.all_contexts,
        cluster: global.cluster.clone(),
        user: global.user.clone(),
        namespace: global.namespace.clone(),
        // Not given: a bound all the same (a server that never answers must not hold the run);
        // `--request-timeout 0` lifts it, as kubectl's.
        request_timeout: match global.request_timeout {
            Some(t) => t.0,
            None => Some(crate::limits::DEFAULT_REQUEST_TIMEOUT),
        },
        exec_wrapper: std::env::current_exe().ok(),
        ..Default::default()
    }
}

/// Reads the clusters the flags select.
async fn observe_clusters(global: &args::GlobalArgs) -> Result<ClusterSnapshot, Error> {
    Ok(observe_targets(global).await?.1)
}

/// Reads the clusters the flags select, and keeps the clients (to write back to them).
async fn observe_targets(
    global: &args::GlobalArgs,
) -> Result<(Vec<crate::client::ConnectedCluster>, ClusterSnapshot), Error> {
    let targets = connect(&connection_options(global)).await?;
    let opts = ObserveOptions {
        istio_namespace: global.istio_namespace.clone(),
    };
    let mut snapshot = observe(&targets, &opts).await?;
    snapshot.observed_at = Some(clock::now_rfc3339());
    Ok((targets, snapshot))
}

/// Reads a snapshot file (YAML or JSON; `-` is stdin) and checks it is one.
fn read_snapshot(path: &Path) -> Result<ClusterSnapshot, Error> {
    let shown = path.display().to_string();
    let fail = |reason: String| Error::Snapshot {
        path: shown.clone(),
        reason,
    };
    let text = crate::limits::read_file(
        path,
        crate::limits::max_file_bytes(),
        crate::limits::MAX_FILE_ENV,
    )
    .map_err(|e| fail(e.to_string()))?;
    // Parse errors quote the file after their first line; the first says where and what.
    let first_line = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        let line = text.lines().next().unwrap_or_default();
        line.trim_start_matches("error: ").trim_end().to_string()
    };
    let mut snapshot: ClusterSnapshot = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| fail(first_line(&e)))?
    } else {
        serde_saphyr::from_str(&text).map_err(|e| fail(first_line(&e)))?
    };
    if snapshot.kind != SNAPSHOT_KIND || snapshot.api_version != API_VERSION {
        return Err(fail(format!(
            "it is a {} {}, not a {SNAPSHOT_KIND} {API_VERSION}",
            snapshot.api_version, snapshot.kind
        )));
    }
    // Clusters are told apart by name (findings, skew rules, plans); two of one name would be judged
    // against each other and every finding repeated.
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = snapshot.clusters.iter().find(|c| !names.insert(&c.name)) {
        return Err(fail(format!(
            "cluster name `{}` appears more than once; each cluster in a snapshot must have its own name",
            twice.name
        )));
    }
    // A hand-written snapshot may carry a server URL with credentials: they go no further.
    for cluster in &mut snapshot.clusters {
        if let Some(server) = &mut cluster.server {
            *server = crate::redact::url(server);
        }
    }
    tracing::info!(path = %shown, clusters = snapshot.clusters.len(), "read snapshot");
    Ok(snapshot)
}
