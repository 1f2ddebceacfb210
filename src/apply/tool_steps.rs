//! External tools as a step uses them: found once per apply on an absolute `PATH` entry and asked their
//! version ([`Executor::locate`]), run pointed at the step's cluster after checking that its context
//! still names the plan's API server ([`Executor::run_tool`]), and the tool-version gate.

use std::ffi::OsString;
use std::path::PathBuf;

use super::TOOL_VERSION_TIMEOUT_SECONDS;
use super::describe::{self, hint_target, replan_command, resume_command};
use super::error::{ApplyError, StepError};
use super::executor::Executor;
use super::interrupt::or_interrupt;
use super::journal::ToolRecord;
use super::tools::{self, NotFound};
use crate::plan::{Step, Tool, server_identity};
use crate::version::Version;

/// A tool as this apply found it.
#[derive(Debug, Clone)]
pub(super) enum Located {
    Found(FoundTool),
    Missing(NotFound),
}

#[derive(Debug, Clone)]
pub(super) struct FoundTool {
    pub(super) path: PathBuf,
    version: VersionReading,
}

/// What the tool's version command gave.
#[derive(Debug, Clone)]
enum VersionReading {
    Found(Version),
    /// It ran and printed no version apply can read: its first line.
    NoVersion(String),
    /// It did not run to the end.
    Failed(String),
}

impl FoundTool {
    /// `/usr/local/bin/istioctl 1.24.6`, for the step line.
    pub(super) fn describe(&self) -> String {
        let version = match &self.version {
            VersionReading::Found(v) => v.to_string(),
            _ => "(version unknown)".to_string(),
        };
        format!("{} {version}", self.path.display())
    }

    pub(super) fn record(&self) -> ToolRecord {
        ToolRecord {
            path: self.path.display().to_string(),
            version: match &self.version {
                VersionReading::Found(v) => Some(v.to_string()),
                _ => None,
            },
        }
    }
}

/// A tool's command line as `-v` shows it: `KUBECONFIG=a:b` first when it lists several files (then
/// no `--kubeconfig` flag says which), the binary by its absolute path, every argument.
fn shown_command(path: &std::path::Path, args: &[String], env: &[(String, OsString)]) -> String {
    let line = crate::plan::command_line(&path.display().to_string(), args);
    if args.iter().any(|a| a == "--kubeconfig") {
        return line;
    }
    match env.iter().find(|(k, _)| k == "KUBECONFIG") {
        Some((k, v)) => format!("{k}={} {line}", v.to_string_lossy()),
        None => line,
    }
}

impl Executor<'_> {
    /// The tool-version gate: run the tool's own version command and compare what it reports with
    /// `want`. The tool's version does not change while we wait, so a mismatch fails at once. A tool
    /// not on the search path becomes a manual step on a terminal (the person runs it elsewhere) and
    /// fails with `--yes`.
    pub(super) async fn tool_version(
        &mut self,
        step: &Step,
        tool: Tool,
        want: Version,
    ) -> Result<String, StepError> {
        let name = tool.program();
        let url = tool.release_url(want);
        let command = describe::command(hint_target(self.options, &step.cluster), &step.action);
        let resume = resume_command(self.options);
        let found = match self.locate(&step.cluster, tool).await? {
            Located::Found(found) => found,
            Located::Missing(missing) => {
                let why = missing.describe(name);
                if self.options.yes || !self.ui.can_prompt() {
                    return Err(StepError::unmet(format!(
                        "{why}: put {name} {want} on PATH (download: {url}), then resume with `{resume}`"
                    )));
                }
                let instructions = format!(
                    "{why}: use {name} {want} (download: {url}) wherever you run the {name} steps, and check that `{command}` prints {want}"
                );
                self.manual(step, &instructions, Some(&command))?;
                return Ok("confirmed by hand".to_string());
            }
        };
        let at = found.path.display();
        match &found.version {
            VersionReading::Found(v) if v.satisfies(&want) => Ok(format!("{name} {v}")),
            VersionReading::Found(v) => Err(StepError::unmet(format!(
                "{name} on PATH ({at}) is {v}, the plan needs {want}: put {name} {want} first on PATH (download: {url}), then resume with `{resume}`"
            ))),
            VersionReading::NoVersion(first_line) => Err(StepError::unmet(format!(
                "`{command}` ({at}) printed no version (first line: {first_line:?}); put {name} {want} on PATH (download: {url}), then resume with `{resume}`"
            ))),
            VersionReading::Failed(why) => Err(StepError::unmet(why.clone())),
        }
    }

    /// The step's context must still name the API server the plan was made against, read afresh from
    /// the kubeconfig files the tool is given; otherwise the tool would act on another cluster.
    pub(super) fn check_server(&self, cluster: &str) -> Result<(), StepError> {
        let refuse = |e: ApplyError| Err(StepError::Refused(Box::new(e)));
        let Some(Some(expected)) = self.servers.get(cluster) else {
            return refuse(ApplyError::ClusterUnknown {
                context: cluster.to_string(),
                reason:
                    "neither the plan nor this apply's reading of the cluster names its API server"
                        .to_string(),
                resume: resume_command(self.options),
            });
        };
        match crate::client::context_server(&self.options.kubeconfig, cluster) {
            Ok(now) if server_identity(&now) == *expected => Ok(()),
            Ok(now) => refuse(ApplyError::ClusterMoved {
                context: cluster.to_string(),
                expected: expected.clone(),
                actual: server_identity(&now),
                replan: replan_command(self.plan, self.options),
            }),
            Err(e) => refuse(ApplyError::ClusterUnknown {
                context: cluster.to_string(),
                reason: e.to_string(),
                resume: resume_command(self.options),
            }),
        }
    }

    /// `tool` as this apply uses it: found on an absolute PATH entry and asked its version (pointed at
    /// `cluster`, after checking that the context still names the plan's server), once per apply.
    pub(super) async fn locate(&mut self, cluster: &str, tool: Tool) -> Result<Located, StepError> {
        let name = tool.program();
        if let Some(known) = self.tools.get(name) {
            return Ok(known.clone());
        }
        let path = match tools::locate(tool, self.options.tool_path.as_deref()) {
            Ok(path) => path,
            Err(missing) => {
                tracing::info!("{}", missing.describe(name));
                let located = Located::Missing(missing);
                self.tools.insert(name, located.clone());
                return Ok(located);
            }
        };
        self.check_server(cluster)?;
        let version_args: Vec<String> = tool.version_args().iter().map(|a| a.to_string()).collect();
        let (args, env) =
            tools::cluster_command(tool, &version_args, &self.options.kubeconfig, cluster);
        tracing::info!(
            "asking {name} its version: {}",
            shown_command(&path, &args, &env)
        );
        let timeout = self.timeout(Some(TOOL_VERSION_TIMEOUT_SECONDS));
        let ui = &mut *self.ui;
        let mut on_line = |line: &str| ui.step_progress(line);
        let output = or_interrupt(self.interrupt, async {
            Ok(tools::run(&path, name, &args, &env, timeout, true, &mut on_line).await)
        })
        .await?;
        let version = match output {
            Ok(out) => match tools::reported_version(&out.stdout) {
                Some(v) => VersionReading::Found(v),
                None => VersionReading::NoVersion(out.stdout.lines().next().unwrap_or("").into()),
            },
            Err(e) => VersionReading::Failed(e.to_string()),
        };
        let found = FoundTool { path, version };
        tracing::info!("{name}: using {}", found.describe());
        let located = Located::Found(found);
        self.tools.insert(name, located.clone());
        Ok(located)
    }

    /// Run a tool (stdout streamed, or captured and returned when `capture`), pointed at the step's
    /// cluster. A tool that is not on the search path becomes a manual step; `Ok(None)` then means the
    /// person confirmed doing it.
    pub(super) async fn run_tool(
        &mut self,
        step: &Step,
        tool: Tool,
        args: &[String],
        planned_timeout: Option<u64>,
        capture: bool,
    ) -> Result<Option<String>, StepError> {
        let found = match self.locate(&step.cluster, tool).await? {
            Located::Found(found) => found,
            Located::Missing(missing) => {
                let command =
                    describe::command(hint_target(self.options, &step.cluster), &step.action);
                let instructions = format!("{}; run it yourself", missing.describe(tool.program()));
                self.manual(step, &instructions, Some(&command))?;
                return Ok(None);
            }
        };
        self.check_server(&step.cluster)?;
        let (full, env) =
            tools::cluster_command(tool, args, &self.options.kubeconfig, &step.cluster);
        tracing::info!("running {}", shown_command(&found.path, &full, &env));
        let timeout = self.timeout(planned_timeout);
        let ui = &mut *self.ui;
        let mut on_line = |line: &str| ui.step_progress(line);
        let output = tools::run(
            &found.path,
            tool.program(),
            &full,
            &env,
            timeout,
            capture,
            &mut on_line,
        )
        .await?;
        Ok(Some(output.stdout))
    }
}
