//! `apply`: execute a reviewed `UpgradePlan` step by step — the act part of observe → decide → act.
//!
//! Order of business, nothing changed until the last of the checks passed:
//! 1. the plan names only clusters we have clients for, and step ids are unique; every step stays in
//!    the plan's scope ([`crate::plan::check_scope`] against the fresh snapshot, dry runs included);
//! 2. without `--yes` (and not `--dry-run`) the [`Ui`] must be able to prompt, or we refuse;
//! 3. the caller's fresh snapshot gives the same fingerprint as the plan's, or the plan is stale
//!    (unless a journal shows this plan's apply unfinished: its own steps changed those facts);
//! 4. per cluster, one SelfSubjectAccessReview per permission the plan needs; all missing ones listed;
//! 5. the lock (a Lease) in every cluster the plan touches, then the journal (a ConfigMap) read: the
//!    same plan resumes, an unfinished different plan is refused, a finished one is replaced.
//!
//! Then each step: describe it, ask (unless `--yes`; waits and gates are not asked), record it
//! `in-progress` with its undo values in the journal, act, wait, gate, record it `done`.
//!
//! Resume: steps recorded `done` are skipped; a step recorded `in-progress` is run again. The kube
//! actions are idempotent (scale to N, delete a collection, label, restart with the recorded
//! `restartedAt`, server-side apply), and the undo values recorded before the first attempt are kept,
//! so a scale-down interrupted after the change still remembers the replicas to restore. `run` steps
//! (helm, istioctl, meshctl) are run again unless recorded `done`; the runbooks' commands (`helm
//! upgrade`, `meshctl install`, `istioctl install`) converge to the same state when repeated.
//!
//! Interruption (Ctrl-C, or the caller's interrupt channel) is honoured at safe points: between steps,
//! at prompts, and during waits, gates and kube requests; an external tool is left to finish (a
//! terminal's Ctrl-C reaches it directly). The journal then shows the step `in-progress`, and
//! [`ApplyError::Interrupted`] is returned. Dropping the future (or SIGKILL) leaves the same journal.
//!
//! Failure: a failed step or gate stops the run; the steps already done that can be undone are listed
//! newest first. On a terminal the user is asked whether to undo them now; with `--yes` nothing is undone
//! automatically and the exact commands are printed instead (an unattended run should not take a second
//! decision on its own).
//!
//! Tools: each is found once per apply on an absolute `PATH` entry ([`tools::locate`]), asked its
//! version once, and run with the plan step's cluster spelled out (`--kubeconfig` with apply's file,
//! the context flag, `KUBECONFIG` set to apply's files: [`tools::cluster_command`]). Before a tool runs,
//! the step's context must still name the API server the plan was made against (read afresh from the
//! kubeconfig, as the tool will), or apply stops with [`ApplyError::ClusterMoved`]. The step line shows
//! the binary's path and version, and the journal records them.
//!
//! Exit codes are mapped in [`crate::error::apply_exit`]: declined 4, interrupted 130, no terminal
//! without `--yes` 2, everything else 1.

pub mod actions;
pub mod describe;
pub mod gates;
pub mod journal;
pub mod lock;
pub mod permissions;
pub mod timing;
pub mod tools;
pub mod ui;
pub mod wait;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;

use crate::client::KubeconfigFiles;
use crate::plan::{
    Action, Fingerprint, Gate, ReplicasBefore, ScopeViolation, Step, Target, Tool, UpgradePlan,
    WaitCondition, recorded_server, server_identity,
};
use crate::snapshot::{ClusterSnapshot, REPLICAS_BEFORE_ANNOTATION};
use crate::version::Version;

use describe::HintTarget;
use journal::{
    Confirmation, ConfirmedBy, Journal, JournalError, JournalStore, StepState, ToolRecord,
    UndoRecord,
};
use lock::{LockError, LockGuard};
use permissions::Permission;
use tools::{NotFound, ToolError};
pub use ui::{Answer, PlainUi, PromptError, StepEnd, TerminalUi, Ui};
use wait::Progress;

/// How long a tool may take to print its own version.
const TOOL_VERSION_TIMEOUT_SECONDS: u64 = 60;

/// The clusters a plan acts on: plan cluster name (kube context) -> client.
#[derive(Clone, Default)]
pub struct ApplyTarget {
    clients: BTreeMap<String, kube::Client>,
}

impl ApplyTarget {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, cluster: impl Into<String>, client: kube::Client) -> Self {
        self.clients.insert(cluster.into(), client);
        self
    }

    pub fn insert(&mut self, cluster: impl Into<String>, client: kube::Client) {
        self.clients.insert(cluster.into(), client);
    }

    fn client(&self, cluster: &str) -> Result<&kube::Client, ApplyError> {
        self.clients
            .get(cluster)
            .ok_or_else(|| ApplyError::UnknownCluster {
                cluster: cluster.to_string(),
            })
    }
}

/// How `apply` tells whether the cluster drifted from the plan: the planner's fingerprint of a snapshot
/// for the plan's targets, and its list of changed facts. Wire `plan::fingerprint` and
/// `plan::fingerprint_diff` here.
#[derive(Clone, Copy)]
pub struct Staleness {
    pub fingerprint: fn(&ClusterSnapshot, &[Target]) -> Fingerprint,
    /// `cluster-a/istio/revision/1-20/version: 1.20.3 -> 1.20.4`, one line per changed fact.
    pub diff: fn(&Fingerprint, &Fingerprint) -> Vec<String>,
}

/// `check-passes` gates: re-observe the named cluster and run the check rules; `Ok` with the failing
/// findings' messages (empty when it passes), `Err` when the check itself could not run.
pub type HealthCheck =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Vec<String>, String>> + Send + Sync>;

pub struct ApplyOptions {
    /// `--yes`: answer yes to every step; never prompt.
    pub yes: bool,
    /// `--dry-run`: show every step, send kube writes with `dryRun=All`, run no tool, write no journal.
    pub dry_run: bool,
    /// `--force-conflicts`: server-side apply takes over fields owned by other managers.
    pub force_conflicts: bool,
    /// `--break-lock`: take the lock even if another apply holds it.
    pub break_lock: bool,
    /// Overrides every wait, gate and tool timeout.
    pub step_timeout: Option<Duration>,
    /// Where helm, istioctl and meshctl are looked up (`PATH` syntax); `None`: the process's `PATH`.
    /// Only absolute entries are used.
    pub tool_path: Option<OsString>,
    /// The kubeconfig file(s) apply reads (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`):
    /// every tool is given exactly these, with the plan step's context.
    pub kubeconfig: KubeconfigFiles,
    /// The plan file, for the resume and re-plan commands in messages.
    pub plan_file: Option<PathBuf>,
    pub staleness: Staleness,
    /// Whether every step stays inside what `kubectl meshup plan` writes for the observed clusters
    /// (`plan::check_scope` with the fresh snapshot and `allowed_chart_repos`); checked before
    /// anything else, dry runs included.
    pub scope: fn(&UpgradePlan, &ClusterSnapshot, &[String]) -> Result<(), ScopeViolation>,
    /// `--allow-chart-repo URL`: chart repositories (mirrors) the operator approves, at apply time, in
    /// place of the vendors' for helm `--repo` and `apply-crds` steps. The plan file cannot add one.
    pub allowed_chart_repos: Vec<String>,
    pub health_check: Option<HealthCheck>,
    /// Set to `true` to interrupt; `None`: listen for Ctrl-C.
    pub interrupt: Option<watch::Receiver<bool>>,
    /// How often waits and gates re-read the cluster.
    pub poll_interval: Duration,
    /// Default timeout of gates and of the rollouts after a restart.
    pub gate_timeout: Duration,
    /// How long the lock lease lasts without renewal.
    pub lock_duration: Duration,
    /// `--confirm-manual STEP_ID`: manual steps a person confirms done ahead of the run, so that an
    /// unattended (`--yes`) run can pass them. Each must name a manual step of the plan.
    pub confirmed_manual: BTreeSet<String>,
    /// How many times a gate re-reads the cluster when only a person can change what it waits for
    /// (pods of a running Job, a pod without a controller), before it fails saying what to do.
    pub hand_work_polls: u32,
}

impl ApplyOptions {
    pub fn new(staleness: Staleness) -> Self {
        Self {
            yes: false,
            dry_run: false,
            force_conflicts: false,
            break_lock: false,
            step_timeout: None,
            tool_path: None,
            kubeconfig: KubeconfigFiles::resolve(None),
            plan_file: None,
            staleness,
            scope: |plan, current, mirrors| crate::plan::check_scope(plan, Some(current), mirrors),
            allowed_chart_repos: Vec::new(),
            health_check: None,
            interrupt: None,
            poll_interval: Duration::from_secs(2),
            gate_timeout: Duration::from_secs(600),
            lock_duration: Duration::from_secs(60),
            confirmed_manual: BTreeSet::new(),
            hand_work_polls: 15,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub steps: usize,
    /// Steps run now.
    pub ran: usize,
    /// Steps skipped because the journal records them done (a resumed apply).
    pub already_done: usize,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("declined at step {step}; nothing more was changed; resume later with `{resume}`")]
    Declined { step: String, resume: String },
    #[error(
        "interrupted{}; the journal records where it stopped; resume with `{resume}`",
        at_step(.step)
    )]
    Interrupted {
        step: Option<String>,
        resume: String,
    },
    #[error(
        "no terminal to confirm the steps on; re-run with --yes to apply without prompts, or with --dry-run to only show them"
    )]
    NeedsConfirmation,
    #[error(
        "--confirm-manual names {}, which {} of this plan; {}; nothing was changed",
        .unknown.join(", "),
        if .unknown.len() == 1 { "is not a manual step" } else { "are not manual steps" },
        manual_list(.manual)
    )]
    UnknownManualStep {
        unknown: Vec<String>,
        /// The plan's manual step ids.
        manual: Vec<String>,
    },
    #[error("{}", unconfirmed_text(.steps))]
    ManualStepsUnconfirmed {
        /// (step id, title) of each manual step not done and not confirmed ahead.
        steps: Vec<(String, String)>,
    },
    #[error(
        "the plan is stale: the cluster changed since it was made ({}); make a new plan with `{replan}`",
        .changes.join("; ")
    )]
    StalePlan {
        changes: Vec<String>,
        replan: String,
    },
    #[error(
        "missing permissions, nothing was changed: {}; ask a cluster admin for them (kubectl auth can-i shows them)",
        .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    MissingPermissions { missing: Vec<Permission> },
    #[error("cannot check permissions in cluster {cluster}: {}", crate::client::brief(.source))]
    PermissionCheck {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0}")]
    OtherPlanInProgress(Box<UnfinishedApply>),
    #[error("in cluster {cluster}: {source}")]
    Journal {
        cluster: String,
        #[source]
        source: JournalError,
    },
    #[error(
        "the plan names cluster {cluster}, which was not given; pass its context (the plan's clusters are the kube contexts it was made for)"
    )]
    UnknownCluster { cluster: String },
    #[error("the plan is not valid: {0}; make a new plan")]
    InvalidPlan(String),
    #[error(
        "context {context} now names API server {actual}, not {expected}, the one the plan was made against; nothing was run there: point the context back at {expected}, or make a new plan for the cluster it names now with `{replan}`"
    )]
    ClusterMoved {
        context: String,
        expected: String,
        actual: String,
        replan: String,
    },
    #[error(
        "cannot tell which API server context {context} names now ({reason}); nothing was run there: fix the kubeconfig, then resume with `{resume}`"
    )]
    ClusterUnknown {
        context: String,
        reason: String,
        resume: String,
    },
    #[error(
        "the plan reaches outside its scope at {0}; nothing was changed: apply only runs what `kubectl meshup plan` writes for these clusters, so make a new plan instead of editing one"
    )]
    OutOfScope(ScopeViolation),
    #[error("step {step} failed: {reason}{}", undo_text(.undo))]
    StepFailed {
        step: String,
        reason: String,
        /// Commands that undo the steps done so far (newest first), when they were not undone.
        undo: Vec<String>,
    },
}

/// Another plan's apply that has not finished, found in a cluster's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedApply {
    pub cluster: String,
    pub namespace: String,
    /// The start of the other plan's hash.
    pub plan: String,
    pub targets: String,
    pub done: usize,
    pub total: usize,
    pub started_at: String,
    /// `kubectl --kubeconfig F --context C` for the delete hint.
    pub kubectl: String,
}

impl std::fmt::Display for UnfinishedApply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = journal::JOURNAL_NAME;
        write!(
            f,
            "cluster {c} has an unfinished apply of another plan ({t}, {d} of {n} steps done, started {s}, plan {p}) in ConfigMap {ns}/{name}; resume it with its own plan file, or if it is abandoned, delete it: `{k} -n {ns} delete configmap {name}`",
            c = self.cluster,
            t = self.targets,
            d = self.done,
            n = self.total,
            s = self.started_at,
            p = self.plan,
            ns = self.namespace,
            k = self.kubectl,
        )
    }
}

fn at_step(step: &Option<String>) -> String {
    step.as_ref()
        .map(|s| format!(" at step {s}"))
        .unwrap_or_default()
}

fn unconfirmed_text(steps: &[(String, String)]) -> String {
    let named: Vec<String> = steps
        .iter()
        .map(|(id, title)| format!("{id} ({title})"))
        .collect();
    let flags: Vec<String> = steps
        .iter()
        .map(|(id, _)| format!("--confirm-manual {id}"))
        .collect();
    let (step, it, as_they_come) = if steps.len() == 1 {
        ("step", "it", "when it comes")
    } else {
        ("steps", "them", "as they come")
    };
    format!(
        "--yes cannot do the plan's manual {step} {}; nothing was changed: do {it} first, then re-run with `{}`, or apply on a terminal without --yes to confirm {it} {as_they_come}",
        named.join(", "),
        flags.join(" ")
    )
}

fn manual_list(manual: &[String]) -> String {
    if manual.is_empty() {
        "the plan has no manual steps".to_string()
    } else {
        format!("its manual steps are: {}", manual.join(", "))
    }
}

fn undo_text(undo: &[String]) -> String {
    if undo.is_empty() {
        String::new()
    } else {
        format!("; to undo the steps done: {}", undo.join(" && "))
    }
}

/// Why one step did not finish.
#[derive(Debug)]
enum StepError {
    Failed(String),
    Interrupted,
    Declined,
    /// Stopped before a tool ran, for a reason that is not the step's (the context moved): the whole
    /// apply ends with this error, and nothing is offered to undo (the hints would reach the same
    /// context).
    Refused(Box<ApplyError>),
}

impl From<actions::ActionError> for StepError {
    fn from(e: actions::ActionError) -> Self {
        StepError::Failed(e.to_string())
    }
}

impl From<ToolError> for StepError {
    fn from(e: ToolError) -> Self {
        StepError::Failed(e.to_string())
    }
}

/// Execute `plan` against `target`. `current` is a snapshot the caller observed just now.
pub async fn apply(
    target: &ApplyTarget,
    plan: &UpgradePlan,
    current: &ClusterSnapshot,
    options: &ApplyOptions,
    ui: &mut dyn Ui,
) -> Result<ApplyOutcome, ApplyError> {
    let mut interrupt = Interrupt::new(options.interrupt.clone());
    let result = run(target, plan, current, options, ui, &mut interrupt).await;
    ui.restore();
    result
}

async fn run(
    target: &ApplyTarget,
    plan: &UpgradePlan,
    current: &ClusterSnapshot,
    options: &ApplyOptions,
    ui: &mut dyn Ui,
    interrupt: &mut Interrupt,
) -> Result<ApplyOutcome, ApplyError> {
    let clusters = clusters_in_order(plan)?;
    for c in &clusters {
        target.client(c)?;
    }
    (options.scope)(plan, current, &options.allowed_chart_repos).map_err(ApplyError::OutOfScope)?;
    if !options.dry_run && !options.yes && !ui.can_prompt() {
        return Err(ApplyError::NeedsConfirmation);
    }
    check_confirmed_ids(plan, &options.confirmed_manual)?;
    let servers = expected_servers(plan, current, &clusters);
    for c in &clusters {
        let observed = journal::snapshot_cluster(current, c).and_then(|o| o.server.as_deref());
        if let (Some(expected), Some(observed)) = (&servers[c], observed)
            && server_identity(observed) != *expected
        {
            return Err(ApplyError::ClusterMoved {
                context: c.clone(),
                expected: expected.clone(),
                actual: server_identity(observed),
                replan: replan_command(plan, options),
            });
        }
    }
    let namespaces: BTreeMap<String, String> = clusters
        .iter()
        .map(|c| {
            let observed = journal::snapshot_cluster(current, c);
            (c.clone(), journal::journal_namespace(plan, observed))
        })
        .collect();
    // Resuming this very plan: its own finished steps changed the facts it was made from, so the
    // fingerprint cannot match any more; the journal says where to go on.
    let unfinished = unfinished_journals(target, &clusters, &namespaces, plan).await;
    let resuming = unfinished
        .values()
        .any(|j| j.steps.values().any(|r| r.state != StepState::Pending));
    if resuming {
        ui.line("resuming an unfinished apply of this plan (its journal records the steps done)");
    }
    let now = (options.staleness.fingerprint)(current, &plan.targets);
    if !resuming && now.value != plan.fingerprint.value {
        let mut changes = (options.staleness.diff)(&plan.fingerprint, &now);
        if changes.is_empty() {
            changes.push("the fingerprint differs".to_string());
        }
        return Err(ApplyError::StalePlan {
            changes,
            replan: replan_command(plan, options),
        });
    }

    if options.yes && !options.dry_run {
        let steps = unconfirmed_manual_steps(plan, &options.confirmed_manual, &unfinished);
        if !steps.is_empty() {
            return Err(ApplyError::ManualStepsUnconfirmed { steps });
        }
    }

    let mut missing = Vec::new();
    for c in &clusters {
        let journal_ns = (!options.dry_run).then(|| namespaces[c].as_str());
        let wanted = permissions::required(plan, c, journal_ns);
        let refused = permissions::missing(target.client(c)?, &wanted)
            .await
            .map_err(|source| ApplyError::PermissionCheck {
                cluster: c.clone(),
                source,
            })?;
        missing.extend(refused);
    }
    if !missing.is_empty() {
        return Err(ApplyError::MissingPermissions { missing });
    }

    let mut executor = Executor {
        target,
        plan,
        options,
        ui,
        interrupt,
        books: BTreeMap::new(),
        servers,
        tools: BTreeMap::new(),
    };
    if options.dry_run {
        return executor.run_steps().await;
    }

    let holder = lock::holder_identity();
    let mut locks: Vec<LockGuard> = Vec::new();
    for c in &clusters {
        match lock::acquire(
            target.client(c)?.clone(),
            c,
            &namespaces[c],
            &holder,
            options.lock_duration,
            options.break_lock,
        )
        .await
        {
            Ok(guard) => locks.push(guard),
            Err(e) => {
                release(locks).await;
                return Err(e.into());
            }
        }
    }
    lock::while_held(locks, async {
        for c in &clusters {
            let book = open_journal(target.client(c)?, c, &namespaces[c], plan, options).await?;
            executor.books.insert(c.clone(), book);
        }
        executor.run_steps().await
    })
    .await
}

/// The journals of an unfinished apply of this very plan, per cluster. A journal that cannot be read
/// counts as none (the staleness check then applies, and opening the journal later reports it).
async fn unfinished_journals(
    target: &ApplyTarget,
    clusters: &[String],
    namespaces: &BTreeMap<String, String>,
    plan: &UpgradePlan,
) -> BTreeMap<String, Journal> {
    let hash = journal::plan_hash(plan);
    let mut found = BTreeMap::new();
    for c in clusters {
        let Ok(client) = target.client(c) else {
            continue;
        };
        let mut store = JournalStore::new(client.clone(), &namespaces[c]);
        if let Ok(Some(j)) = store.load().await
            && j.plan == hash
            && !j.is_finished()
        {
            found.insert(c.clone(), j);
        }
    }
    found
}

/// The ids of the plan's manual steps, in plan order.
pub fn manual_step_ids(plan: &UpgradePlan) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| matches!(s.action, Action::Manual { .. }))
        .map(|s| s.id.clone())
        .collect()
}

/// Every id given to `--confirm-manual` names a manual step of the plan. Pure.
pub fn check_confirmed_ids(
    plan: &UpgradePlan,
    confirmed: &BTreeSet<String>,
) -> Result<(), ApplyError> {
    let manual = manual_step_ids(plan);
    let unknown: Vec<String> = confirmed
        .iter()
        .filter(|id| !manual.contains(id))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::UnknownManualStep { unknown, manual })
    }
}

/// The manual steps an unattended run would stop at: not confirmed ahead and not recorded done in
/// this plan's unfinished journal, as (id, title). Pure.
pub fn unconfirmed_manual_steps(
    plan: &UpgradePlan,
    confirmed: &BTreeSet<String>,
    journals: &BTreeMap<String, Journal>,
) -> Vec<(String, String)> {
    plan.steps
        .iter()
        .filter(|s| matches!(s.action, Action::Manual { .. }))
        .filter(|s| !confirmed.contains(&s.id))
        .filter(|s| {
            journals
                .get(&s.cluster)
                .is_none_or(|j| j.state(&s.id) != StepState::Done)
        })
        .map(|s| (s.id.clone(), s.title.clone()))
        .collect()
}

async fn release(locks: Vec<LockGuard>) {
    lock::release_all(locks).await;
}

/// The plan's clusters that have steps, in the plan's order; and the plan's basic soundness.
fn clusters_in_order(plan: &UpgradePlan) -> Result<Vec<String>, ApplyError> {
    let mut seen_ids = std::collections::BTreeSet::new();
    for step in &plan.steps {
        if !seen_ids.insert(step.id.as_str()) {
            return Err(ApplyError::InvalidPlan(format!(
                "step id {} appears twice",
                step.id
            )));
        }
    }
    let mut clusters: Vec<String> = Vec::new();
    for name in plan
        .clusters
        .iter()
        .chain(plan.steps.iter().map(|s| &s.cluster))
    {
        if plan.steps.iter().any(|s| &s.cluster == name) && !clusters.contains(name) {
            clusters.push(name.clone());
        }
    }
    Ok(clusters)
}

fn plan_file_text(options: &ApplyOptions) -> String {
    options
        .plan_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "PLAN_FILE".to_string())
}

/// The command that resumes this apply (with the `--kubeconfig` it was given).
pub fn resume_command(options: &ApplyOptions) -> String {
    format!(
        "kubectl meshup{} apply {}",
        kubeconfig_flag(options),
        plan_file_text(options)
    )
}

/// ` --kubeconfig FILE` when apply was given one, else nothing.
fn kubeconfig_flag(options: &ApplyOptions) -> String {
    options
        .kubeconfig
        .flag()
        .map(|f| {
            format!(
                " {}",
                crate::plan::command_line("--kubeconfig", &[f.display().to_string()])
            )
        })
        .unwrap_or_default()
}

/// The API server each cluster must name for tools to run: the one the plan recorded, else (a plan
/// made before servers were recorded) the one apply observed the cluster at just now.
fn expected_servers(
    plan: &UpgradePlan,
    current: &ClusterSnapshot,
    clusters: &[String],
) -> BTreeMap<String, Option<String>> {
    clusters
        .iter()
        .map(|c| {
            let recorded = recorded_server(&plan.fingerprint, c).map(String::from);
            let observed = journal::snapshot_cluster(current, c)
                .and_then(|o| o.server.as_deref())
                .map(server_identity);
            (c.clone(), recorded.or(observed))
        })
        .collect()
}

/// Where hints for `cluster` point: its context, and `--kubeconfig` when apply was given one.
fn hint_target<'a>(options: &'a ApplyOptions, cluster: &'a str) -> HintTarget<'a> {
    HintTarget {
        context: cluster,
        kubeconfig: options.kubeconfig.flag(),
    }
}

/// The command that makes a fresh plan for the same targets and clusters.
pub fn replan_command(plan: &UpgradePlan, options: &ApplyOptions) -> String {
    let kubeconfig = kubeconfig_flag(options);
    let contexts: String = plan
        .clusters
        .iter()
        .map(|c| format!(" --context {c}"))
        .collect();
    let targets: String = plan
        .targets
        .iter()
        .map(|t| format!(" --to {}={}", t.mesh, t.version))
        .collect();
    format!(
        "kubectl meshup{kubeconfig}{contexts} plan{targets} -o yaml > {}",
        plan_file_text(options)
    )
}

/// What a scale step found before acting: the live replicas, and the count the object's
/// `meshup.dev/replicas-before` annotation recorded (read only for scales that keep their count).
#[derive(Debug, Clone, Copy, Default)]
struct ScaleFacts {
    live: u32,
    annotated: Option<u32>,
}

/// One cluster's journal and where it lives.
struct Book {
    store: JournalStore,
    journal: Journal,
}

async fn open_journal(
    client: &kube::Client,
    cluster: &str,
    namespace: &str,
    plan: &UpgradePlan,
    options: &ApplyOptions,
) -> Result<Book, ApplyError> {
    let journal_err = |source| ApplyError::Journal {
        cluster: cluster.to_string(),
        source,
    };
    let mut store = JournalStore::new(client.clone(), namespace);
    let existing = store.load().await.map_err(journal_err)?;
    let hash = journal::plan_hash(plan);
    let journal = match existing {
        Some(j) if j.plan == hash => j,
        Some(j) if !j.is_finished() => {
            return Err(ApplyError::OtherPlanInProgress(Box::new(UnfinishedApply {
                cluster: cluster.to_string(),
                namespace: namespace.to_string(),
                plan: j.plan.chars().take(12).collect(),
                targets: j.targets.clone(),
                done: j.done_count(),
                total: j.steps.len(),
                started_at: j.started_at.clone(),
                kubectl: hint_target(options, cluster).kubectl(),
            })));
        }
        _ => {
            let fresh = Journal::new(plan, cluster, Timestamp::now().to_string());
            store.save(&fresh).await.map_err(journal_err)?;
            fresh
        }
    };
    Ok(Book { store, journal })
}

/// Ctrl-C or the caller's channel.
struct Interrupt {
    rx: watch::Receiver<bool>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Interrupt {
    fn new(given: Option<watch::Receiver<bool>>) -> Self {
        match given {
            Some(rx) => Self { rx, listener: None },
            None => {
                let (tx, rx) = watch::channel(false);
                let listener = tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        let _ = tx.send(true);
                    }
                });
                Self {
                    rx,
                    listener: Some(listener),
                }
            }
        }
    }

    fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when interrupted (never, if the sender is gone without interrupting).
    async fn triggered(&mut self) {
        if self.rx.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

struct Executor<'a> {
    target: &'a ApplyTarget,
    plan: &'a UpgradePlan,
    options: &'a ApplyOptions,
    ui: &'a mut dyn Ui,
    interrupt: &'a mut Interrupt,
    /// Per cluster; empty in a dry run.
    books: BTreeMap<String, Book>,
    /// The API server each cluster must still name when a tool runs ([`expected_servers`]).
    servers: BTreeMap<String, Option<String>>,
    /// Each tool as found once for this apply, by program name.
    tools: BTreeMap<&'static str, Located>,
}

/// A tool as this apply found it.
#[derive(Debug, Clone)]
enum Located {
    Found(FoundTool),
    Missing(NotFound),
}

#[derive(Debug, Clone)]
struct FoundTool {
    path: PathBuf,
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
    fn describe(&self) -> String {
        let version = match &self.version {
            VersionReading::Found(v) => v.to_string(),
            _ => "(version unknown)".to_string(),
        };
        format!("{} {version}", self.path.display())
    }

    fn record(&self) -> ToolRecord {
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

/// The tool a step runs, if any.
fn step_tool(action: &Action) -> Option<Tool> {
    match action {
        Action::Run { tool, .. } => Some(*tool),
        Action::ApplyCrds { .. } => Some(Tool::Helm),
        Action::Gate {
            gate: Gate::ToolVersion { tool, .. },
        } => Some(*tool),
        _ => None,
    }
}

/// Run `fut` unless interrupted first.
async fn or_interrupt<T>(
    interrupt: &mut Interrupt,
    fut: impl std::future::Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    if interrupt.is_set() {
        return Err(StepError::Interrupted);
    }
    tokio::select! {
        biased;
        _ = interrupt.triggered() => Err(StepError::Interrupted),
        out = fut => out,
    }
}

impl Executor<'_> {
    fn dry(&self) -> bool {
        self.options.dry_run
    }

    fn client(&self, cluster: &str) -> Result<kube::Client, StepError> {
        self.target
            .client(cluster)
            .cloned()
            .map_err(|e| StepError::Failed(e.to_string()))
    }

    fn timeout(&self, planned_seconds: Option<u64>) -> Duration {
        timing::step_timeout(
            self.options.step_timeout,
            planned_seconds,
            self.options.gate_timeout,
        )
    }

    fn state(&self, step: &Step) -> StepState {
        self.books
            .get(&step.cluster)
            .map(|b| b.journal.state(&step.id))
            .unwrap_or(StepState::Pending)
    }

    async fn save(&mut self, cluster: &str) -> Result<(), ApplyError> {
        if let Some(book) = self.books.get_mut(cluster) {
            book.store
                .save(&book.journal)
                .await
                .map_err(|source| ApplyError::Journal {
                    cluster: cluster.to_string(),
                    source,
                })?;
        }
        Ok(())
    }

    fn record(&mut self, step: &Step) -> Option<&mut journal::StepRecord> {
        self.books
            .get_mut(&step.cluster)
            .map(|b| b.journal.record_mut(&step.id))
    }

    async fn run_steps(&mut self) -> Result<ApplyOutcome, ApplyError> {
        let plan = self.plan;
        let total = plan.steps.len();
        let mut outcome = ApplyOutcome {
            steps: total,
            ran: 0,
            already_done: 0,
            dry_run: self.dry(),
        };
        let multi_cluster = self.target.clients.len() > 1 || plan.clusters.len() > 1;
        for (i, step) in plan.steps.iter().enumerate() {
            let index = i + 1;
            let state = self.state(step);
            let mut description = describe::action(&step.action, None);
            if multi_cluster {
                description = format!("[{}] {description}", step.cluster);
            }
            if state == StepState::Done {
                self.ui.step_started(index, total, &description);
                self.ui.step_finished(StepEnd::AlreadyDone, "");
                outcome.already_done += 1;
                continue;
            }
            if self.interrupt.is_set() {
                return Err(self.interrupted(None));
            }
            match self
                .run_step(index, total, step, state, multi_cluster)
                .await
            {
                Ok(()) => outcome.ran += 1,
                Err(StepError::Interrupted) => {
                    self.ui.step_finished(StepEnd::Interrupted, "");
                    return Err(self.interrupted(Some(step.id.clone())));
                }
                Err(StepError::Declined) => {
                    self.ui.step_finished(StepEnd::Declined, "");
                    return Err(ApplyError::Declined {
                        step: step.id.clone(),
                        resume: resume_command(self.options),
                    });
                }
                Err(StepError::Failed(reason)) => {
                    self.ui.step_finished(StepEnd::Failed, &reason);
                    return Err(self.fail(step, reason).await);
                }
                Err(StepError::Refused(error)) => {
                    self.ui
                        .step_finished(StepEnd::Failed, "refused before the tool ran");
                    return Err(*error);
                }
            }
        }
        if !self.dry() {
            let clusters: Vec<String> = self.books.keys().cloned().collect();
            for c in clusters {
                if let Some(book) = self.books.get_mut(&c) {
                    book.journal.finished_at = Some(Timestamp::now().to_string());
                }
                self.save(&c).await?;
            }
        }
        Ok(outcome)
    }

    fn interrupted(&self, step: Option<String>) -> ApplyError {
        ApplyError::Interrupted {
            step,
            resume: resume_command(self.options),
        }
    }

    /// One step not yet done: describe, ask, record in-progress, act (wait, gate), record done.
    async fn run_step(
        &mut self,
        index: usize,
        total: usize,
        step: &Step,
        state: StepState,
        multi_cluster: bool,
    ) -> Result<(), StepError> {
        let client = self.client(&step.cluster)?;
        // Live facts for the description: the replicas a scale starts from (and, for a scale that
        // keeps its count, what the object's annotation recorded).
        let scale_facts = match &step.action {
            Action::Scale {
                target,
                replicas_before,
                ..
            } => Some(
                or_interrupt(self.interrupt, async {
                    let live = actions::current_replicas(&client, target).await?;
                    let annotated = match replicas_before {
                        Some(_) => actions::recorded_replicas(&client, target).await?,
                        None => None,
                    };
                    Ok(ScaleFacts { live, annotated })
                })
                .await?,
            ),
            _ => None,
        };
        let live_replicas = scale_facts.map(|f| f.live);
        let (action, restored_from) = self.effective_action(step, scale_facts);
        let mut description = describe::action(&action, live_replicas);
        if multi_cluster {
            description = format!("[{}] {description}", step.cluster);
        }
        let tool = match step_tool(&step.action) {
            Some(tool) if !self.dry() => match self.locate(&step.cluster, tool).await {
                Ok(located) => Some(located),
                Err(e) => {
                    // The step line first, so that its end (refused, interrupted) has a step to end.
                    self.ui.step_started(index, total, &description);
                    return Err(e);
                }
            },
            _ => None,
        };
        if let Some(Located::Found(found)) = &tool {
            description = format!("{description} (using {})", found.describe());
        }

        if describe::changes_cluster(&step.action) && !self.options.yes && !self.dry() {
            let mut details = vec![
                format!("step {}: {}", step.id, step.title),
                format!("why: {}", step.reason.text),
                format!("does: {description}"),
            ];
            if step.irreversible {
                details.push("irreversible: this step cannot be rolled back".to_string());
            }
            if state == StepState::InProgress {
                details.push(
                    "an earlier run started this step and did not finish it; it is run again"
                        .to_string(),
                );
            }
            let question = format!("[{index}/{total}] run this step?");
            let answer = if step.irreversible {
                self.ui.confirm_irreversible(&question, &details)
            } else {
                self.ui.confirm(&question, &details)
            };
            match answer {
                Ok(Answer::Yes) => {}
                Ok(Answer::No) => return Err(StepError::Declined),
                Ok(Answer::Abort) => {
                    for command in self.offer_undo(step).await {
                        self.ui.line(&format!("to undo: {command}"));
                    }
                    return Err(StepError::Declined);
                }
                Err(PromptError::Interrupted) => return Err(StepError::Interrupted),
                Err(PromptError::Io(e)) => {
                    return Err(StepError::Failed(format!("cannot prompt: {e}")));
                }
            }
        } else if step.irreversible && !self.dry() {
            self.ui.line(&format!(
                "note: step {} is irreversible ({})",
                step.id, step.title
            ));
        }

        self.ui.step_started(index, total, &description);
        if self.dry() {
            self.dry_run_step(&client, step).await?;
            self.ui.step_finished(StepEnd::DryRun, "");
            return Ok(());
        }

        // Record in-progress, with undo values, before changing anything.
        let now = Timestamp::now().to_string();
        if let Some(record) = self.record(step) {
            record.state = StepState::InProgress;
            record.attempts += 1;
            record.started_at = Some(now.clone());
            record.finished_at = None;
            record.error = None;
            if let (
                Action::Scale {
                    target,
                    replicas_before,
                    ..
                },
                Some(facts),
            ) = (&step.action, scale_facts)
                && record.undo.is_none()
            {
                let before = match replicas_before {
                    Some(ReplicasBefore::Record) => {
                        actions::count_before(facts.annotated, facts.live)
                    }
                    _ => facts.live,
                };
                record.undo = Some(UndoRecord::Scale {
                    target: target.clone(),
                    replicas: before,
                });
            }
            if matches!(step.action, Action::RestartWorkloads { .. })
                && record.restarted_at.is_none()
            {
                record.restarted_at = Some(now);
            }
            if let Some(Located::Found(found)) = &tool {
                record.tool = Some(found.record());
            }
        }
        self.save(&step.cluster)
            .await
            .map_err(|e| StepError::Failed(e.to_string()))?;

        let mut note = self.execute(&client, step, &action, scale_facts).await?;
        match (&action, restored_from, scale_facts) {
            (Action::Scale { replicas, .. }, Some(from), _) => {
                note = format!("{replicas} restored from {}", from.as_str());
            }
            (
                Action::Scale {
                    replicas_before: Some(ReplicasBefore::Record),
                    ..
                },
                _,
                Some(facts),
            ) => {
                let before = actions::count_before(facts.annotated, facts.live);
                note = format!("{before} recorded in the journal and {REPLICAS_BEFORE_ANNOTATION}");
            }
            _ => {}
        }

        if let Some(record) = self.record(step) {
            record.state = StepState::Done;
            record.finished_at = Some(Timestamp::now().to_string());
        }
        self.save(&step.cluster)
            .await
            .map_err(|e| StepError::Failed(e.to_string()))?;
        self.ui.step_finished(StepEnd::Done, &note);
        Ok(())
    }

    /// The action a step takes now: a restoring scale-up goes to the count the journal recorded, else
    /// the object's annotation, else the plan's (and says which); every other action as planned.
    fn effective_action(
        &self,
        step: &Step,
        facts: Option<ScaleFacts>,
    ) -> (Action, Option<actions::RestoredFrom>) {
        match &step.action {
            Action::Scale {
                target,
                replicas,
                replicas_before: Some(ReplicasBefore::Restore),
            } => {
                let journal = self
                    .books
                    .get(&step.cluster)
                    .and_then(|b| b.journal.replicas_before(self.plan, target));
                let annotated = facts.and_then(|f| f.annotated);
                let (count, from) = actions::restore_count(journal, annotated, *replicas);
                let action = Action::Scale {
                    target: target.clone(),
                    replicas: count,
                    replicas_before: Some(ReplicasBefore::Restore),
                };
                (action, Some(from))
            }
            other => (other.clone(), None),
        }
    }

    /// Carry out the step's action (`action`: the step's, with a restored count resolved) and its
    /// wait; returns a short note for the step line.
    async fn execute(
        &mut self,
        client: &kube::Client,
        step: &Step,
        action: &Action,
        scale_facts: Option<ScaleFacts>,
    ) -> Result<String, StepError> {
        let dry_run = false;
        match action {
            Action::Scale {
                target,
                replicas,
                replicas_before,
            } => {
                let facts = scale_facts.unwrap_or_default();
                or_interrupt(self.interrupt, async {
                    match replicas_before {
                        Some(ReplicasBefore::Record) => {
                            // The count goes on the object before the scale, so a lost journal
                            // still knows it; an earlier scale-down's count is kept.
                            let before = actions::count_before(facts.annotated, facts.live);
                            if facts.annotated != Some(before) && before > 0 {
                                actions::record_replicas(client, target, Some(before), dry_run)
                                    .await?;
                            }
                            actions::scale(client, target, *replicas, dry_run).await?;
                        }
                        Some(ReplicasBefore::Restore) => {
                            actions::scale(client, target, *replicas, dry_run).await?;
                            if facts.annotated.is_some() {
                                actions::record_replicas(client, target, None, dry_run).await?;
                            }
                        }
                        None => actions::scale(client, target, *replicas, dry_run).await?,
                    }
                    Ok(())
                })
                .await?;
                Ok(String::new())
            }
            Action::DeleteCollection {
                group,
                version,
                resource,
                namespace,
            } => {
                let n = or_interrupt(self.interrupt, async {
                    Ok(actions::delete_collection(
                        client,
                        group,
                        version,
                        resource,
                        namespace.as_deref(),
                        dry_run,
                    )
                    .await?)
                })
                .await?;
                Ok(format!("{n} deleted"))
            }
            Action::ApplyCrds {
                chart,
                repo,
                version,
            } => {
                let args = describe::helm_show_crds_args(chart, repo, version);
                let Some(manifests) = self
                    .run_tool(step, Tool::Helm, &args, Some(300), true)
                    .await?
                else {
                    return Ok("applied by hand".to_string());
                };
                let force = self.options.force_conflicts;
                let names = or_interrupt(self.interrupt, async {
                    Ok(actions::apply_crds(client, &manifests, dry_run, force).await?)
                })
                .await?;
                Ok(format!("{} CRDs applied", names.len()))
            }
            Action::Run {
                tool,
                args,
                timeout_seconds,
                config,
            } => {
                // The carried configuration goes to the tool as a private file that lives as long as
                // the step: the file is what the reviewer saw in the plan, byte for byte.
                let carried = config.as_ref().map(carried_file).transpose()?;
                let mut args = args.clone();
                if let (Some(config), Some(file)) = (config, &carried) {
                    args.push(config.kind.flag().to_string());
                    args.push(file.path().display().to_string());
                }
                let done = self
                    .run_tool(step, *tool, &args, Some(*timeout_seconds), false)
                    .await?;
                if self.interrupt.is_set() {
                    return Err(StepError::Interrupted);
                }
                Ok(if done.is_some() {
                    String::new()
                } else {
                    "run by hand".to_string()
                })
            }
            Action::Wait {
                condition,
                timeout_seconds,
            } => {
                let timeout = self.timeout(Some(*timeout_seconds));
                let check = match condition {
                    WaitCondition::RolloutComplete { target } => Check::Rollout(target.clone()),
                    WaitCondition::ResourcesPresent {
                        group,
                        version,
                        resources,
                    } => Check::Resources {
                        group: group.clone(),
                        version: version.clone(),
                        resources: resources.clone(),
                    },
                };
                let note = self.poll(client, &step.cluster, &check, timeout).await?;
                Ok(note.unwrap_or_default())
            }
            Action::LabelNamespace { namespace, labels } => {
                or_interrupt(self.interrupt, async {
                    Ok(actions::label_namespace(client, namespace, labels, dry_run).await?)
                })
                .await?;
                Ok(String::new())
            }
            Action::RestartWorkloads {
                namespace,
                workloads,
            } => {
                let at = self
                    .record(step)
                    .and_then(|r| r.restarted_at.clone())
                    .unwrap_or_else(|| Timestamp::now().to_string());
                let targets = workloads
                    .iter()
                    .map(|w| actions::parse_workload(namespace, w))
                    .collect::<Result<Vec<_>, _>>()?;
                for t in &targets {
                    or_interrupt(self.interrupt, async {
                        Ok(actions::restart(client, t, &at, dry_run).await?)
                    })
                    .await?;
                }
                let timeout = self.timeout(None);
                for t in &targets {
                    self.poll(client, &step.cluster, &Check::Rollout(t.clone()), timeout)
                        .await?;
                }
                Ok(format!("{} rolled out", targets.len()))
            }
            Action::Gate { gate } => {
                let timeout = self.timeout(None);
                let check = match gate {
                    Gate::ProxiesAtVersion {
                        version,
                        namespaces,
                    } => Check::Proxies {
                        version: *version,
                        namespaces: namespaces.clone(),
                    },
                    Gate::RevisionUnused { revision } => Check::RevisionUnused(revision.clone()),
                    Gate::CheckPasses => Check::Health,
                    Gate::NodeKernelsAtLeast { min } => Check::NodeKernels(*min),
                    Gate::IstiodAmbientEnabled {
                        namespace,
                        revision,
                    } => Check::IstiodAmbient {
                        namespace: namespace.clone(),
                        revision: revision.clone(),
                    },
                    Gate::ToolVersion { tool, version } => {
                        return self.tool_version(step, *tool, *version).await;
                    }
                };
                let note = self.poll(client, &step.cluster, &check, timeout).await?;
                Ok(note.map_or_else(|| "passed".to_string(), |n| format!("passed; {n}")))
            }
            Action::Manual {
                instructions,
                command,
            } => {
                let by = if self.options.confirmed_manual.contains(&step.id) {
                    self.ui.step_progress(&format!(
                        "confirmed done ahead with --confirm-manual {}: {instructions}",
                        step.id
                    ));
                    ConfirmedBy::ConfirmManualFlag
                } else {
                    let command = command.as_ref().map(|argv| argv.join(" "));
                    self.manual(step, instructions, command.as_deref())?;
                    ConfirmedBy::Terminal
                };
                if let Some(record) = self.record(step) {
                    record.confirmed = Some(Confirmation {
                        by,
                        at: Timestamp::now().to_string(),
                    });
                }
                Ok(match by {
                    ConfirmedBy::ConfirmManualFlag => "confirmed by --confirm-manual".to_string(),
                    ConfirmedBy::Terminal => "confirmed".to_string(),
                })
            }
        }
    }

    /// A step a person must do: show it and wait for their confirmation. With `--yes` there is no one
    /// to confirm, so the step fails with the instructions.
    fn manual(
        &mut self,
        step: &Step,
        instructions: &str,
        command: Option<&str>,
    ) -> Result<(), StepError> {
        let mut details = vec![format!("step {}: {instructions}", step.id)];
        if let Some(c) = command {
            details.push(format!("command: {c}"));
        }
        if self.options.yes || !self.ui.can_prompt() {
            return Err(StepError::Failed(format!(
                "a manual step needs a person: {}; do it, then run `{}` on a terminal and confirm it",
                details.join("; "),
                resume_command(self.options)
            )));
        }
        details.push("do this now (in another terminal); answer yes once it is done".to_string());
        match self.ui.confirm("has it been done?", &details) {
            Ok(Answer::Yes) => Ok(()),
            Ok(_) => Err(StepError::Declined),
            Err(PromptError::Interrupted) => Err(StepError::Interrupted),
            Err(PromptError::Io(e)) => Err(StepError::Failed(format!("cannot prompt: {e}"))),
        }
    }

    /// The tool-version gate: run the tool's own version command and compare what it reports with
    /// `want`. The tool's version does not change while we wait, so a mismatch fails at once. A tool
    /// not on the search path becomes a manual step on a terminal (the person runs it elsewhere) and
    /// fails with `--yes`.
    async fn tool_version(
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
                    return Err(StepError::Failed(format!(
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
            VersionReading::Found(v) => Err(StepError::Failed(format!(
                "{name} on PATH ({at}) is {v}, the plan needs {want}: put {name} {want} first on PATH (download: {url}), then resume with `{resume}`"
            ))),
            VersionReading::NoVersion(first_line) => Err(StepError::Failed(format!(
                "`{command}` ({at}) printed no version (first line: {first_line:?}); put {name} {want} on PATH (download: {url}), then resume with `{resume}`"
            ))),
            VersionReading::Failed(why) => Err(StepError::Failed(why.clone())),
        }
    }

    /// The step's context must still name the API server the plan was made against, read afresh from
    /// the kubeconfig files the tool is given; otherwise the tool would act on another cluster.
    fn check_server(&self, cluster: &str) -> Result<(), StepError> {
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
    async fn locate(&mut self, cluster: &str, tool: Tool) -> Result<Located, StepError> {
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
    async fn run_tool(
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

    /// Poll `check` until it is met (with the check's note, if it left something aside), fails, or
    /// `timeout` passes. Read errors are retried until the timeout (a flaky API server is not a
    /// failed step); the last one is reported.
    async fn poll(
        &mut self,
        client: &kube::Client,
        cluster: &str,
        check: &Check,
        timeout: Duration,
    ) -> Result<Option<String>, StepError> {
        let deadline = timing::deadline(tokio::time::Instant::now(), timeout);
        let mut last = String::from("not checked yet");
        // Since when only a person can change what is awaited.
        let mut needs_person_since: Option<tokio::time::Instant> = None;
        loop {
            let health = self.options.health_check.clone();
            let reading = or_interrupt(self.interrupt, async {
                Ok(evaluate(client, cluster, check, health).await)
            })
            .await?;
            match reading {
                Ok(Progress::Met) => return Ok(None),
                Ok(Progress::MetWithNote(note)) => return Ok(Some(note)),
                Ok(Progress::Failed(why)) => return Err(StepError::Failed(why)),
                Ok(Progress::Waiting(why)) => {
                    needs_person_since = None;
                    if why != last {
                        self.ui.step_progress(&why);
                    }
                    last = why;
                }
                Ok(Progress::NeedsPerson(why)) => {
                    let since = *needs_person_since.get_or_insert_with(tokio::time::Instant::now);
                    let grace = timing::grace(
                        self.options.poll_interval,
                        self.options.hand_work_polls,
                        timeout,
                    );
                    if since.elapsed() >= grace {
                        return Err(StepError::Failed(format!(
                            "{why}; then resume with `{}`",
                            resume_command(self.options)
                        )));
                    }
                    if why != last {
                        self.ui.step_progress(&why);
                    }
                    last = why;
                }
                Err(e) => {
                    let why = format!("reading the cluster failed, retrying: {e}");
                    self.ui.step_progress(&why);
                    last = why;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StepError::Failed(format!(
                    "not met within {}s: {last}",
                    timeout.as_secs()
                )));
            }
            let pause = self.options.poll_interval;
            or_interrupt(self.interrupt, async {
                tokio::time::sleep(pause).await;
                Ok(())
            })
            .await?;
        }
    }

    /// `--dry-run` of one step: writes with `dryRun=All`, tools shown, waits and gates skipped.
    async fn dry_run_step(&mut self, client: &kube::Client, step: &Step) -> Result<(), StepError> {
        let dry_run = true;
        match &step.action {
            Action::Scale {
                target, replicas, ..
            } => {
                actions::scale(client, target, *replicas, dry_run).await?;
            }
            Action::DeleteCollection {
                group,
                version,
                resource,
                namespace,
            } => {
                let n = actions::delete_collection(
                    client,
                    group,
                    version,
                    resource,
                    namespace.as_deref(),
                    dry_run,
                )
                .await?;
                self.ui.step_progress(&format!("would delete {n}"));
            }
            Action::LabelNamespace { namespace, labels } => {
                actions::label_namespace(client, namespace, labels, dry_run).await?;
            }
            Action::RestartWorkloads {
                namespace,
                workloads,
            } => {
                let at = Timestamp::now().to_string();
                for w in workloads {
                    let t = actions::parse_workload(namespace, w)?;
                    actions::restart(client, &t, &at, dry_run).await?;
                }
            }
            Action::ApplyCrds { .. } | Action::Run { .. } => {
                let command =
                    describe::command(hint_target(self.options, &step.cluster), &step.action);
                self.ui.step_progress(&format!("would run: {command}"));
            }
            Action::Gate {
                gate: Gate::ToolVersion { version, .. },
            } => {
                let command =
                    describe::command(hint_target(self.options, &step.cluster), &step.action);
                self.ui
                    .step_progress(&format!("would check that `{command}` prints {version}"));
            }
            Action::Wait { .. } | Action::Gate { .. } => {
                self.ui
                    .step_progress("skipped: nothing was changed to wait for");
            }
            Action::Manual { instructions, .. } => {
                self.ui.step_progress(&format!("manual: {instructions}"));
            }
        }
        Ok(())
    }

    /// The undo of each step done so far that has one, newest first: (step, action).
    fn undoable(&self, upto: &Step) -> Vec<(Step, Action)> {
        let mut found = Vec::new();
        for step in &self.plan.steps {
            if step.id == upto.id {
                break;
            }
            if self.state(step) != StepState::Done {
                continue;
            }
            let recorded = self
                .books
                .get(&step.cluster)
                .and_then(|b| b.journal.undo(&step.id));
            let undo = match recorded {
                Some(UndoRecord::Scale { target, replicas }) => Some(Action::Scale {
                    target: target.clone(),
                    replicas: *replicas,
                    // The undo of a recording scale-down also removes the recorded count.
                    replicas_before: match &step.action {
                        Action::Scale {
                            replicas_before: Some(ReplicasBefore::Record),
                            ..
                        } => Some(ReplicasBefore::Restore),
                        _ => None,
                    },
                }),
                None => step.undo.clone(),
            };
            if let Some(action) = undo {
                found.push((step.clone(), action));
            }
        }
        found.reverse();
        found
    }

    /// Offer to undo what was done before `failed`: on a terminal, ask and undo; with `--yes`, return
    /// the commands. Returns the commands still to run by hand.
    async fn offer_undo(&mut self, failed: &Step) -> Vec<String> {
        let mut undoable = self.undoable(failed);
        if undoable.is_empty() {
            return Vec::new();
        }
        // A restoring undo takes the same sources as a restoring step: the journal, the object's
        // annotation, the plan.
        for (step, action) in &mut undoable {
            if let Action::Scale {
                target,
                replicas,
                replicas_before: Some(ReplicasBefore::Restore),
            } = action
            {
                let journal = self
                    .books
                    .get(&step.cluster)
                    .and_then(|b| b.journal.replicas_before(self.plan, target));
                let annotated = match self.target.client(&step.cluster) {
                    Ok(client) => actions::recorded_replicas(client, target)
                        .await
                        .ok()
                        .flatten(),
                    Err(_) => None,
                };
                *replicas = actions::restore_count(journal, annotated, *replicas).0;
            }
        }
        let commands: Vec<String> = undoable
            .iter()
            .map(|(s, a)| describe::command(hint_target(self.options, &s.cluster), a))
            .collect();
        if self.options.yes || !self.ui.can_prompt() {
            return commands;
        }
        let details: Vec<String> = undoable
            .iter()
            .map(|(s, a)| format!("{}: {}", s.id, describe::action(a, None)))
            .collect();
        let answer = self.ui.confirm(
            &format!("undo the {} step(s) above, newest first?", undoable.len()),
            &details,
        );
        if answer.ok() != Some(Answer::Yes) {
            return commands;
        }
        let mut left = Vec::new();
        for ((step, action), command) in undoable.into_iter().zip(commands) {
            let Ok(client) = self.client(&step.cluster) else {
                left.push(command);
                continue;
            };
            let undone = match &action {
                Action::Scale {
                    target,
                    replicas,
                    replicas_before,
                } => match actions::scale(&client, target, *replicas, false).await {
                    Ok(()) if replicas_before.is_some() => {
                        actions::record_replicas(&client, target, None, false).await
                    }
                    done => done,
                },
                Action::LabelNamespace { namespace, labels } => {
                    actions::label_namespace(&client, namespace, labels, false).await
                }
                _ => {
                    left.push(command);
                    continue;
                }
            };
            match undone {
                Ok(()) => {
                    self.ui.line(&format!(
                        "undone {}: {}",
                        step.id,
                        describe::action(&action, None)
                    ));
                    if let Some(record) = self.record(&step) {
                        record.state = StepState::Undone;
                    }
                    let _ = self.save(&step.cluster).await;
                }
                Err(e) => {
                    self.ui.line(&format!("could not undo {}: {e}", step.id));
                    left.push(command);
                }
            }
        }
        left
    }

    /// Record the failure, offer the undo, and build the error.
    async fn fail(&mut self, step: &Step, reason: String) -> ApplyError {
        if let Some(record) = self.record(step) {
            record.state = StepState::Failed;
            record.error = Some(reason.clone());
            record.finished_at = Some(Timestamp::now().to_string());
        }
        let saved = self.save(&step.cluster).await;
        let undo = if self.dry() {
            Vec::new()
        } else {
            self.offer_undo(step).await
        };
        let reason = match saved {
            Ok(()) => reason,
            Err(e) => format!("{reason} (and the journal could not record it: {e})"),
        };
        ApplyError::StepFailed {
            step: step.id.clone(),
            reason,
            undo,
        }
    }
}

/// What a wait or gate polls.
enum Check {
    Rollout(crate::plan::ObjectRef),
    Resources {
        group: String,
        version: Option<String>,
        resources: Vec<String>,
    },
    Proxies {
        version: crate::version::Version,
        namespaces: Vec<String>,
    },
    RevisionUnused(String),
    Health,
    NodeKernels(crate::version::Minor),
    IstiodAmbient {
        namespace: String,
        revision: String,
    },
}

async fn evaluate(
    client: &kube::Client,
    cluster: &str,
    check: &Check,
    health: Option<HealthCheck>,
) -> Result<Progress, String> {
    let kube = |e: kube::Error| crate::client::brief(&e);
    match check {
        Check::Rollout(target) => wait::rollout(client, target).await.map_err(kube),
        Check::Resources {
            group,
            version,
            resources,
        } => wait::resources_present(client, group, version.as_deref(), resources)
            .await
            .map_err(kube),
        Check::Proxies {
            version,
            namespaces,
        } => gates::proxies_at_version(client, version, namespaces)
            .await
            .map_err(kube),
        Check::RevisionUnused(revision) => {
            gates::revision_unused(client, revision).await.map_err(kube)
        }
        Check::NodeKernels(min) => gates::node_kernels_at_least(client, *min)
            .await
            .map_err(kube),
        Check::IstiodAmbient {
            namespace,
            revision,
        } => gates::istiod_ambient(client, namespace, revision)
            .await
            .map_err(kube),
        Check::Health => {
            let Some(health) = health else {
                return Ok(Progress::Failed(
                    "no health check is wired into this apply; run `kubectl meshup check` yourself"
                        .to_string(),
                ));
            };
            let failures = health(cluster.to_string()).await?;
            Ok(if failures.is_empty() {
                Progress::Met
            } else {
                Progress::Waiting(failures.join("; "))
            })
        }
    }
}

/// Writes a plan's carried configuration to a file only this user can read (`tempfile` creates it
/// 0600), removed when the returned handle is dropped.
fn carried_file(config: &crate::plan::CarriedConfig) -> Result<tempfile::NamedTempFile, StepError> {
    use std::io::Write;
    let text = serde_saphyr::to_string(&config.document)
        .map_err(|e| StepError::Failed(format!("the plan's carried configuration: {e}")))?;
    let mut file = tempfile::Builder::new()
        .prefix("meshup-config-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| StepError::Failed(format!("a file for the carried configuration: {e}")))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| StepError::Failed(format!("a file for the carried configuration: {e}")))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::KubeconfigSource;

    fn no_fingerprint(_: &ClusterSnapshot, _: &[Target]) -> Fingerprint {
        Fingerprint {
            algorithm: "none".into(),
            value: String::new(),
            facts: BTreeMap::new(),
        }
    }

    fn options(source: KubeconfigSource) -> ApplyOptions {
        let mut o = ApplyOptions::new(Staleness {
            fingerprint: no_fingerprint,
            diff: |_, _| Vec::new(),
        });
        o.plan_file = Some(PathBuf::from("plan.yaml"));
        o.kubeconfig = KubeconfigFiles {
            files: vec![PathBuf::from("/work/my config")],
            source,
        };
        o
    }

    #[test]
    fn the_resume_command_repeats_the_kubeconfig_flag_only_when_it_was_given() {
        assert_eq!(
            resume_command(&options(KubeconfigSource::Flag)),
            "kubectl meshup --kubeconfig '/work/my config' apply plan.yaml"
        );
        assert_eq!(
            resume_command(&options(KubeconfigSource::Env)),
            "kubectl meshup apply plan.yaml"
        );
    }
}
