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

//!
//! Where each part lives: [`preflight`] (the checks before anything changes, the journal opened),
//! [`executor`] (the steps in order), [`action`] (one file per action kind: everything a step of that
//! kind does, for real and in a dry run, its hand command, permissions and undo), [`undo`], [`awaited`]
//! (what waits and gates poll), [`tool_steps`] (tools found, checked and run), [`interrupt`], [`error`].

mod action;
pub mod actions;
mod awaited;
pub mod describe;
mod error;
mod executor;
pub mod gates;
mod interrupt;
pub mod journal;
pub mod lock;
pub mod permissions;
mod preflight;
#[cfg(test)]
mod test_plans;
pub mod timing;
mod tool_steps;
pub mod tools;
pub mod ui;
mod undo;
pub mod wait;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::client::KubeconfigFiles;
use crate::plan::{Fingerprint, ScopeViolation, Target, UpgradePlan, server_identity};
use crate::snapshot::ClusterSnapshot;

pub use describe::{replan_command, resume_command};
pub use error::{ApplyError, ApplyErrorKind, UnfinishedApply};
use executor::Executor;
use interrupt::Interrupt;
use journal::StepState;
use lock::LockGuard;
pub use preflight::{check_confirmed_ids, manual_step_ids, unconfirmed_manual_steps};
use preflight::{clusters_in_order, expected_servers, open_journal, unfinished_journals};
pub use ui::{Answer, PromptError, StepEnd, Ui};

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
        journals: BTreeMap::new(),
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
            executor.journals.insert(c.clone(), book);
        }
        executor.run_steps().await
    })
    .await
}

async fn release(locks: Vec<LockGuard>) {
    lock::release_all(locks).await;
}
