//! `apply` end to end against the fake API server, with stand-in helm, meshctl and istioctl that
//! record their arguments. The tests play the controllers a real cluster runs: rollouts complete on
//! their own (the fake's auto-rollout), Gloo Mesh discovery writes its resources back once it is
//! scaled up, and the sidecar injector gives restarted pods the proxy of their namespace's revision.
//! The plans are the planner's, made from what `observe` reads of each test's cluster (Harness::plan);
//! where a test needs a gate alone or in another place, it narrows or reorders the planner's steps.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use k8s_openapi::api::coordination::v1::Lease;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::sync::Notify;

use kubectl_meshup::apply::journal::{Journal, StepState, UndoRecord};
use kubectl_meshup::apply::lock::LockError;
use kubectl_meshup::apply::{
    Answer, ApplyError, ApplyOptions, ApplyOutcome, ApplyTarget, PromptError, Staleness, StepEnd,
    Ui, apply, manual_step_ids,
};
use kubectl_meshup::client::{ConnectedCluster, KubeconfigFiles, KubeconfigSource};
use kubectl_meshup::compat::CompatData;
use kubectl_meshup::error::apply_exit;
use kubectl_meshup::observe::{ObserveOptions, observe};
use kubectl_meshup::plan::{self, Action, Gate, ObjectRef, PlanRequest, Tool, UpgradePlan};
use kubectl_meshup::snapshot::ClusterSnapshot;

use crate::support;
use crate::support::{
    FIXTURES, cluster_flags, discovery_replicas_and_recorded, gloo_mesh_server,
    gloo_mesh_tool_files, injected_pod, play_gloo_discovery, play_injector, read_journal,
    seed_bookinfo_pods, stand_in_tools, storage_versions, tool_calls, write_istio_install,
    write_kubeconfig,
};

const CLUSTER: &str = "mgmt-cluster";
const GLOO_REPO: &str = "https://storage.googleapis.com/gloo-mesh/gloo-mesh";

// ---------------------------------------------------------------------------------------------
// Harness

/// A fake cluster, a client for it, a directory with the stand-in tools (and what they read), and a
/// kubeconfig naming the cluster's context, as a user's KUBECONFIG would.
struct Harness {
    server: FakeApiServer,
    client: Client,
    bin: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Harness {
    /// A cluster on the fake API server's Kubernetes (1.29) seeded with the fixture `seed`.
    async fn start(seed: &str) -> Self {
        Self::serve(FakeApiServer::builder().auto_rollout(true).start(), &[seed]).await
    }

    async fn serve(server: FakeApiServer, seeds: &[&str]) -> Self {
        server
            .seed_paths(seeds.iter().map(|seed| Path::new(FIXTURES).join(seed)))
            .expect("seed fixtures");
        let bin = stand_in_tools(&["helm", "meshctl", "istioctl"]);
        let home = tempfile::tempdir().expect("tempdir");
        write_kubeconfig(&home.path().join("config"), &[(CLUSTER, &server)], CLUSTER);
        let kubeconfig = Kubeconfig::read_from(home.path().join("config")).expect("kubeconfig");
        let options = KubeConfigOptions {
            context: Some(CLUSTER.to_string()),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .expect("config");
        let client = Client::try_from(config).expect("client");
        Self {
            server,
            client,
            bin,
            home,
        }
    }

    /// The kubeconfig the apply reads, as `KUBECONFIG` names it.
    fn kubeconfig(&self) -> PathBuf {
        self.home.path().join("config")
    }

    /// The cluster as `observe` reads it now through the context's client: what `kubectl meshup plan`
    /// starts from.
    async fn observe(&self) -> ClusterSnapshot {
        let cluster = ConnectedCluster {
            context: CLUSTER.into(),
            server: self.server.url(),
            proxy: None,
            client: self.client.clone(),
        };
        observe(&[cluster], &ObserveOptions::default())
            .await
            .expect("observe")
    }

    /// The real planner's plan to `to` (`gloo-mesh=1.0.0`) for the cluster as observed now, with the
    /// built-in compatibility data, as `kubectl meshup plan --to TO` makes it; and that snapshot.
    async fn plan(&self, to: &str) -> (UpgradePlan, ClusterSnapshot) {
        let snapshot = self.observe().await;
        let request = PlanRequest {
            targets: vec![to.parse().expect("target")],
            tool_version: "0.1.0".into(),
            ..PlanRequest::default()
        };
        let plan = plan::plan(&snapshot, &CompatData::embedded(), &request)
            .unwrap_or_else(|e| panic!("the planner plans {to}: {e}"));
        (plan, snapshot)
    }

    /// `TOOL ARGS` as the stand-in records a call apply made: with the flags that point it at the
    /// plan's cluster.
    fn call(&self, tool_and_args: &str) -> String {
        let tool = tool_and_args.split(' ').next().unwrap_or_default();
        format!(
            "{tool_and_args} {}",
            cluster_flags(tool, &self.kubeconfig(), CLUSTER)
        )
    }

    /// The version the stand-in `tool` reports as its own (`TOOL.version` beside it).
    fn set_tool_version(&self, tool: Tool, version: &str) {
        std::fs::write(
            self.bin.path().join(format!("{}.version", tool.program())),
            version,
        )
        .expect("write the stand-in tool's version");
    }

    fn target(&self) -> ApplyTarget {
        ApplyTarget::new().with(CLUSTER, self.client.clone())
    }

    /// Options as `kubectl meshup apply PLAN --yes` sets them: the planner's fingerprint and scope
    /// check, the plan's manual steps (the Gloo Mesh runbook's review of the networking resources)
    /// confirmed done ahead as `--confirm-manual` names them, and the tools found in the harness's
    /// bin directory only (then the system's, for `sh`).
    fn options(&self, plan: &UpgradePlan) -> ApplyOptions {
        let mut options = ApplyOptions::new(Staleness {
            fingerprint: plan::fingerprint,
            diff: |planned, now| {
                plan::fingerprint_diff(planned, now)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            },
        });
        options.confirmed_manual = manual_step_ids(plan).into_iter().collect();
        options.yes = true;
        options.tool_path = Some(self.bin.path().as_os_str().to_owned());
        options.kubeconfig = KubeconfigFiles {
            files: vec![self.kubeconfig()],
            source: KubeconfigSource::Env,
        };
        options.plan_file = Some(PathBuf::from("plan.yaml"));
        options.poll_interval = Duration::from_millis(40);
        options.gate_timeout = Duration::from_secs(20);
        options.health_check = Some(Arc::new(|_cluster| Box::pin(async { Ok(Vec::new()) })));
        options
    }

    fn tool_calls(&self) -> Vec<String> {
        tool_calls(self.bin.path())
    }

    fn journal(&self, namespace: &str) -> Option<Journal> {
        read_journal(&self.server, namespace)
    }

    fn replicas(&self, namespace: &str, name: &str) -> Option<i64> {
        self.server.get("deployments", namespace, name)?["spec"]["replicas"].as_i64()
    }
}

fn deployment(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        kind: "Deployment".into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Plans: the planner's, for the test's cluster as observed (Harness::plan).

/// A Gloo Mesh 0.10.6 management cluster on Kubernetes 1.21 (inside Gloo Mesh 1.0's range), registered
/// to itself, with the stand-in tools, the 1.0.0 CRDs `helm show crds` prints and meshctl 1.0.0 on
/// PATH (as runbook step 1 asks); nobody plays discovery yet.
async fn gloo_cluster() -> Harness {
    let server = gloo_mesh_server(FakeApiServer::builder().auto_rollout(true));
    let h = Harness::serve(server, &["gloo-mesh/registered.yaml"]).await;
    gloo_mesh_tool_files(h.bin.path());
    h
}

/// [`gloo_cluster`] with Gloo Mesh discovery played: once scaled up, it writes its resources back.
async fn gloo_harness() -> Harness {
    let h = gloo_cluster().await;
    play_gloo_discovery(&h.server, Duration::from_millis(300));
    h
}

/// The planner's plan of the Gloo Mesh pre-1.0 runbook (shared/seeds/gloo-mesh-upgrading.md),
/// 0.10.6 -> 1.0.0, for the harness's cluster as observed now, and that snapshot. Its eighteen steps:
/// the meshctl version gate (1), the scale-downs (2, 3), the deletions of discovery's resources (4-6),
/// the CRDs (7), runbook step 5's review of the networking resources, a manual step (8), the helm
/// upgrade (9), discovery and networking held at zero (10, 11), the re-registration (12), the
/// scale-ups and their waits (13-16), `meshctl check` (17) and the closing `check passes` gate (18).
///
/// The tests hand apply this snapshot as the one it observes: the cluster as the plan was made (the
/// stale-plan test observes its changed cluster afresh).
async fn gloo_plan(h: &Harness) -> (UpgradePlan, ClusterSnapshot) {
    h.plan("gloo-mesh=1.0.0").await
}

/// [`gloo_plan`] with its closing `check passes` gate moved where runbook step 5 has a person review
/// the networking resources: a gate that can fail after the scale-downs, the deletions and the CRDs
/// (the planner puts its gate last, and a person's review cannot fail). Seventeen steps, the gate
/// the eighth.
async fn gloo_plan_gated_at_review(h: &Harness) -> (UpgradePlan, ClusterSnapshot) {
    let (mut plan, snapshot) = gloo_plan(h).await;
    let gate = plan
        .steps
        .iter()
        .position(|s| {
            matches!(
                s.action,
                Action::Gate {
                    gate: Gate::CheckPasses
                }
            )
        })
        .expect("the planner's check gate");
    let gate = plan.steps.remove(gate);
    let review = plan
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::Manual { .. }))
        .expect("the planner's networking review");
    plan.steps[review] = gate;
    (plan, snapshot)
}

/// Makes the `check passes` gate fail within 300 ms: `check` finds `finding` and keeps finding it.
fn fail_check_soon(options: &mut ApplyOptions, finding: &'static str) {
    options.gate_timeout = Duration::from_millis(300);
    options.health_check = Some(Arc::new(move |_cluster| {
        Box::pin(async move { Ok(vec![finding.to_string()]) })
    }));
}

/// The id of the plan's step that ends in `-SUFFIX`.
fn step_id(plan: &UpgradePlan, suffix: &str) -> String {
    plan.steps
        .iter()
        .map(|s| s.id.clone())
        .find(|id| id.ends_with(&format!("-{suffix}")))
        .unwrap_or_else(|| panic!("no step ending in -{suffix}: {:?}", plan.steps))
}

/// Where the step [`step_id`] finds is in the plan, counted from 1 as the Ui counts.
fn step_number(plan: &UpgradePlan, suffix: &str) -> usize {
    let id = step_id(plan, suffix);
    plan.steps
        .iter()
        .position(|s| s.id == id)
        .map_or(0, |i| i + 1)
}

/// What an apply leaves behind that matters: workloads, CRDs, discovery objects, tool calls made.
fn gloo_state(h: &Harness) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    for d in h.server.list("deployments", "gloo-mesh") {
        state.insert(
            format!(
                "deployment/{}",
                d["metadata"]["name"].as_str().unwrap_or("")
            ),
            d["spec"]["replicas"].to_string(),
        );
    }
    let mut crds: Vec<String> = h
        .server
        .list("customresourcedefinitions", "")
        .iter()
        .map(|c| {
            let versions: Vec<&str> = c["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["name"].as_str())
                .collect();
            format!(
                "{}={}",
                c["metadata"]["name"].as_str().unwrap_or(""),
                versions.join(",")
            )
        })
        .collect();
    crds.sort();
    state.insert("crds".into(), crds.join(" "));
    for r in ["meshes", "traffictargets", "destinations", "workloads"] {
        let plural = format!("{r}.discovery.mesh.gloo.solo.io");
        if h.server.serves(&plural) {
            state.insert(plural.clone(), h.server.count(&plural, "").to_string());
        }
    }
    // The kubeconfig's path differs from run to run; the calls name it.
    let kubeconfig = h.kubeconfig().display().to_string();
    let calls: BTreeSet<String> = h
        .tool_calls()
        .into_iter()
        .map(|c| c.replace(&kubeconfig, "KUBECONFIG"))
        .collect();
    state.insert(
        "tool calls".into(),
        calls.into_iter().collect::<Vec<_>>().join(" | "),
    );
    state
}

// ---------------------------------------------------------------------------------------------
// A scripted Ui: answers prompts from a list, records what it was told, and can signal the test
// to kill the apply at a chosen point.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillAt {
    /// Right after step N finished (a step boundary).
    AfterStep(usize),
    /// As step N starts (before its journal entry and its change).
    StepStart(usize),
    /// At the first progress report of step N (in the middle of its wait).
    MidStep(usize),
}

struct ScriptedUi {
    answers: VecDeque<Answer>,
    prompts: bool,
    log: Arc<Mutex<Vec<String>>>,
    kill: Option<(KillAt, Arc<Notify>)>,
    current: usize,
}

impl ScriptedUi {
    fn unattended() -> Self {
        Self {
            answers: VecDeque::new(),
            prompts: false,
            log: Arc::default(),
            kill: None,
            current: 0,
        }
    }

    fn answering(answers: &[Answer]) -> Self {
        Self {
            answers: answers.iter().copied().collect(),
            prompts: true,
            ..Self::unattended()
        }
    }

    fn killing_at(at: KillAt, signal: Arc<Notify>) -> Self {
        Self {
            kill: Some((at, signal)),
            ..Self::unattended()
        }
    }

    fn fire(&self, point: KillAt) {
        if let Some((at, signal)) = &self.kill
            && *at == point
        {
            signal.notify_one();
        }
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn push(&self, line: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(line);
        }
    }
}

impl Ui for ScriptedUi {
    fn can_prompt(&self) -> bool {
        self.prompts
    }

    fn confirm(&mut self, question: &str, details: &[String]) -> Result<Answer, PromptError> {
        self.push(format!("? {question} {}", details.join(" / ")));
        self.answers
            .pop_front()
            .ok_or_else(|| PromptError::Io(std::io::Error::other("the script has no more answers")))
    }

    fn line(&mut self, text: &str) {
        self.push(text.to_string());
    }

    fn step_started(&mut self, index: usize, total: usize, description: &str) {
        self.current = index;
        self.push(format!("[{index}/{total}] {description}"));
        self.fire(KillAt::StepStart(index));
    }

    fn step_progress(&mut self, message: &str) {
        self.push(format!("    {message}"));
        self.fire(KillAt::MidStep(self.current));
    }

    fn step_finished(&mut self, end: StepEnd, note: &str) {
        self.push(format!("[{}] {end:?} {note}", self.current));
        if end == StepEnd::Done {
            self.fire(KillAt::AfterStep(self.current));
        }
    }

    fn restore(&mut self) {}
}

async fn run(
    h: &Harness,
    plan: &UpgradePlan,
    snapshot: &ClusterSnapshot,
    options: &ApplyOptions,
    ui: &mut ScriptedUi,
) -> Result<ApplyOutcome, ApplyError> {
    tokio::time::timeout(
        Duration::from_secs(60),
        apply(&h.target(), plan, snapshot, options, ui),
    )
    .await
    .expect("apply finishes within a minute")
}

/// [`run`] with the options `apply PLAN --yes` has ([`Harness::options`]) and nobody at the terminal.
async fn run_yes(
    h: &Harness,
    plan: &UpgradePlan,
    snapshot: &ClusterSnapshot,
) -> Result<ApplyOutcome, ApplyError> {
    run(
        h,
        plan,
        snapshot,
        &h.options(plan),
        &mut ScriptedUi::unattended(),
    )
    .await
}

/// Run until the Ui signals the kill point, then drop the apply future mid-flight (as SIGKILL would
/// stop the process). Returns whether the kill happened before the apply ended on its own.
async fn run_until_killed(
    h: &Harness,
    plan: &UpgradePlan,
    snapshot: &ClusterSnapshot,
    options: &ApplyOptions,
    at: KillAt,
) -> bool {
    let signal = Arc::new(Notify::new());
    let mut ui = ScriptedUi::killing_at(at, signal.clone());
    let target = h.target();
    tokio::select! {
        biased;
        _ = signal.notified() => true,
        result = apply(&target, plan, snapshot, options, &mut ui) => {
            panic!("apply ended before the kill at {at:?}: {result:?}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn gloo_mesh_pre_1_0_upgrade_runs_all_ten_runbook_steps() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    let mut ui = ScriptedUi::unattended();

    let outcome = run(&h, &plan, &snapshot, &h.options(&plan), &mut ui)
        .await
        .expect("the upgrade completes");

    assert_eq!(outcome.ran, plan.steps.len());
    assert_eq!(outcome.already_done, 0);
    // The tools ran with exactly the plan's argument vectors, in order, each pointed at the plan's
    // cluster (helm asked its version once, when first used). `cluster register` names its contexts
    // itself and has no --kubecontext.
    assert_eq!(
        h.tool_calls(),
        vec![
            h.call("meshctl version"),
            h.call("helm version --short"),
            h.call(&format!("helm show crds gloo-mesh --repo {GLOO_REPO} --version 1.0.0")),
            h.call(&format!("helm upgrade gloo-mesh gloo-mesh --repo {GLOO_REPO} --version 1.0.0 --namespace gloo-mesh --reset-then-reuse-values")),
            format!(
                "meshctl cluster register community mgmt-cluster --remote-context mgmt-cluster --mgmt-context mgmt-cluster --kubeconfig {}",
                h.kubeconfig().display()
            ),
            h.call("meshctl check"),
        ]
    );
    // Control plane back at one replica each, discovery resources written back by the new version.
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(1));
    assert_eq!(h.replicas("gloo-mesh", "networking"), Some(1));
    assert_eq!(
        h.server
            .count("traffictargets.discovery.mesh.gloo.solo.io", ""),
        0
    );
    assert_eq!(
        h.server
            .count("destinations.discovery.mesh.gloo.solo.io", ""),
        1
    );
    assert_eq!(h.server.count("meshes.discovery.mesh.gloo.solo.io", ""), 1);
    // CRDs server-side applied with our field manager; the new version is served.
    let crd = h
        .server
        .get(
            "customresourcedefinitions",
            "",
            "meshes.discovery.mesh.gloo.solo.io",
        )
        .expect("meshes CRD");
    assert_eq!(storage_versions(&crd), vec!["v1"]);
    let managers: Vec<&str> = crd["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl-meshup"), "{managers:?}");
    // The journal records every step done, the replicas before each scale-down, and the end.
    let journal = h
        .journal("gloo-mesh")
        .expect("journal in the mesh namespace");
    assert!(journal.finished_at.is_some());
    assert!(journal.steps.values().all(|r| r.state == StepState::Done));
    assert_eq!(
        journal.undo(&step_id(&plan, "scale-down-discovery")),
        Some(&UndoRecord::Scale {
            target: deployment("gloo-mesh", "discovery"),
            replicas: 1
        })
    );
    // The lock was given back.
    assert!(
        h.server
            .get("leases", "gloo-mesh", "kubectl-meshup-lock")
            .is_none()
    );
    // Plain progress lines name the step and the live replica counts.
    assert!(
        ui.lines()
            .iter()
            .any(|l| l == "[2/18] scale Deployment gloo-mesh/discovery 1 -> 0"),
        "{:#?}",
        ui.lines()
    );
}

#[tokio::test]
async fn killed_at_step_boundaries_and_mid_wait_then_resumed_reaches_the_same_state() {
    let baseline = gloo_harness().await;
    let (baseline_plan, snapshot) = gloo_plan(&baseline).await;
    run(
        &baseline,
        &baseline_plan,
        &snapshot,
        &baseline.options(&baseline_plan),
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect("uninterrupted run");
    let expected = gloo_state(&baseline);

    let step = |suffix| step_number(&baseline_plan, suffix);
    let kill_points = [
        KillAt::AfterStep(step("scale-down-discovery")),
        KillAt::StepStart(step("scale-down-networking")),
        KillAt::AfterStep(step("scale-down-networking")),
        KillAt::AfterStep(step("delete-workloads")),
        KillAt::AfterStep(step("crds-1-0-0")),
        KillAt::StepStart(step("scale-up-discovery")),
        KillAt::MidStep(step("wait-discovery-complete")),
        KillAt::AfterStep(step("wait-discovery-complete")),
    ];
    for at in kill_points {
        // Each cluster is planned for itself (a plan names its API server); the steps are the same.
        let h = gloo_harness().await;
        let (plan, snapshot) = gloo_plan(&h).await;
        assert_eq!(plan.steps, baseline_plan.steps);
        assert!(run_until_killed(&h, &plan, &snapshot, &h.options(&plan), at).await);

        // Never a component at zero replicas without the count to restore in the journal.
        let journal = h
            .journal("gloo-mesh")
            .expect("journal written before any change");
        for name in ["discovery", "networking"] {
            if h.replicas("gloo-mesh", name) == Some(0) {
                let recorded = journal.steps.values().any(|r| {
                    matches!(&r.undo, Some(UndoRecord::Scale { target, replicas })
                        if target.name == name && *replicas == 1)
                });
                assert!(
                    recorded,
                    "killed at {at:?}: {name} at 0 without its recorded replicas"
                );
            }
        }
        // The lease of the killed run is still there: a resume without --break-lock is refused...
        let mut ui = ScriptedUi::unattended();
        let refused = run(&h, &plan, &snapshot, &h.options(&plan), &mut ui).await;
        assert!(
            matches!(&refused, Err(ApplyError::Lock(_))),
            "killed at {at:?}: {refused:?}"
        );
        // ...and with it, the apply resumes after the last done step.
        let mut options = h.options(&plan);
        options.break_lock = true;
        let outcome = run(&h, &plan, &snapshot, &options, &mut ui)
            .await
            .unwrap_or_else(|e| panic!("resume after a kill at {at:?}: {e}"));
        assert!(outcome.already_done >= 1, "killed at {at:?}: {outcome:?}");
        assert_eq!(outcome.already_done + outcome.ran, plan.steps.len());
        assert_eq!(gloo_state(&h), expected, "killed at {at:?}");
        let journal = h.journal("gloo-mesh").expect("journal");
        assert!(journal.steps.values().all(|r| r.state == StepState::Done));
    }
}

#[tokio::test]
async fn a_resume_keeps_the_replicas_recorded_before_the_first_scale_down() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    let scale_down = step_id(&plan, "scale-down-discovery");
    // Killed right after step 2: discovery is at zero.
    assert!(
        run_until_killed(
            &h,
            &plan,
            &snapshot,
            &h.options(&plan),
            KillAt::AfterStep(2)
        )
        .await
    );
    let journal = h.journal("gloo-mesh").expect("journal");
    assert_eq!(journal.state(&scale_down), StepState::Done);
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(0));

    // Someone re-runs the same plan after the scale: the recorded count is not overwritten by 0.
    let mut options = h.options(&plan);
    options.break_lock = true;
    run(
        &h,
        &plan,
        &snapshot,
        &options,
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect("resume");
    let journal = h.journal("gloo-mesh").expect("journal");
    assert_eq!(
        journal.undo(&scale_down),
        Some(&UndoRecord::Scale {
            target: deployment("gloo-mesh", "discovery"),
            replicas: 1
        })
    );
    assert_eq!(journal.steps[&scale_down].attempts, 1);
}

#[tokio::test]
async fn a_stale_plan_is_refused_with_the_changed_facts_and_the_replan_command() {
    let h = gloo_harness().await;
    let (plan, _) = gloo_plan(&h).await;
    // Someone upgraded discovery by hand since the plan was made.
    h.server
        .modify("deployments", "gloo-mesh", "discovery", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                json!("gcr.io/gloo-mesh/gloo-mesh:0.10.7");
        })
        .expect("discovery is seeded");
    let now = h.observe().await;
    let err = run(
        &h,
        &plan,
        &now,
        &h.options(&plan),
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect_err("stale");
    assert!(matches!(err, ApplyError::StalePlan { .. }));
    assert_eq!(apply_exit(&err).code(), 1);
    let message = err.to_string();
    assert!(
        message.contains(
            "mgmt-cluster/gloo-mesh/discovery: Deployment/gloo-mesh/discovery 0.10.6 replicas=1 -> \
             Deployment/gloo-mesh/discovery 0.10.7 replicas=1"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "kubectl meshup --context mgmt-cluster plan --to gloo-mesh=1.0.0 -o yaml > plan.yaml"
        ),
        "{message}"
    );
    assert!(h.server.mutating_requests().is_empty());
}

#[tokio::test]
async fn a_second_apply_is_refused_while_another_holds_the_lock() {
    let h = gloo_harness().await;
    let now = k8s_openapi::jiff::Timestamp::now();
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "kubectl-meshup-lock", "namespace": "gloo-mesh"},
        "spec": {"holderIdentity": "ops-laptop-4242-1a2b3c4d", "leaseDurationSeconds": 60,
                 "acquireTime": now.to_string(), "renewTime": now.to_string()}
    }))
    .expect("lease");
    h.server.seed(&lease).expect("seed lease");
    let (plan, snapshot) = gloo_plan(&h).await;
    let err = run_yes(&h, &plan, &snapshot).await.expect_err("locked");
    let message = err.to_string();
    assert!(message.contains("ops-laptop-4242-1a2b3c4d"), "{message}");
    assert!(message.contains("--break-lock"), "{message}");
    assert_eq!(apply_exit(&err).code(), 1);
    assert!(h.server.mutating_requests().is_empty());
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(1));
}

#[tokio::test]
async fn two_applies_at_once_one_wins_the_lock() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    let (o1, o2) = (h.options(&plan), h.options(&plan));
    let (mut u1, mut u2) = (ScriptedUi::unattended(), ScriptedUi::unattended());
    let target = h.target();
    let (a, b) = tokio::join!(
        apply(&target, &plan, &snapshot, &o1, &mut u1),
        apply(&target, &plan, &snapshot, &o2, &mut u2)
    );
    let refused = [&a, &b].iter().filter(|r| r.is_err()).count();
    assert_eq!(refused, 1, "{a:?} {b:?}");
    let err = a.as_ref().err().or(b.as_ref().err());
    assert!(
        matches!(err, Some(ApplyError::Lock(LockError::Held { .. }))),
        "{err:?}"
    );
}

#[tokio::test]
async fn declining_a_step_exits_4_and_changes_nothing_more() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    let mut options = h.options(&plan);
    options.yes = false;
    // The meshctl version gate is not asked about (it changes nothing); no to scaling discovery down.
    let mut ui = ScriptedUi::answering(&[Answer::No]);
    let err = run(&h, &plan, &snapshot, &options, &mut ui)
        .await
        .expect_err("declined");
    assert!(matches!(err, ApplyError::Declined { .. }), "{err}");
    assert_eq!(apply_exit(&err).code(), 4);
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(1));
    assert_eq!(h.tool_calls(), vec![h.call("meshctl version")]);
    // The only writes: the lock and the journal (and giving the lock back).
    for r in h.server.mutating_requests() {
        assert!(
            r.path.contains("/configmaps") || r.path.contains("/leases"),
            "unexpected write {} {}",
            r.method,
            r.path
        );
    }
    let journal = h.journal("gloo-mesh").expect("journal");
    assert_eq!(
        journal.state(&step_id(&plan, "meshctl-version")),
        StepState::Done
    );
    assert_eq!(
        journal.state(&step_id(&plan, "scale-down-discovery")),
        StepState::Pending
    );
    // The prompt showed what the step would do, with the live replica count.
    assert!(
        ui.lines()
            .iter()
            .any(|l| l.contains("scale Deployment gloo-mesh/discovery 1 -> 0")),
        "{:#?}",
        ui.lines()
    );
}

#[tokio::test]
async fn without_a_terminal_and_without_yes_nothing_starts() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    // What the planner read is behind us: from here on, not one request.
    h.server.clear_requests();
    let mut options = h.options(&plan);
    options.yes = false;
    let err = run(
        &h,
        &plan,
        &snapshot,
        &options,
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("--yes"), "{err}");
    assert!(h.server.requests().is_empty());
}

#[tokio::test]
async fn missing_permissions_are_all_listed_before_any_change() {
    let h = gloo_harness().await;
    h.server.deny("patch", "apps", "deployments/scale");
    h.server.deny(
        "deletecollection",
        "discovery.mesh.gloo.solo.io",
        "traffictargets",
    );
    let (plan, snapshot) = gloo_plan(&h).await;
    let err = run_yes(&h, &plan, &snapshot).await.expect_err("forbidden");
    let ApplyError::MissingPermissions { missing } = &err else {
        panic!("expected missing permissions, got {err}");
    };
    let listed: Vec<String> = missing.iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        vec![
            "patch deployments/scale.apps in namespace gloo-mesh in cluster mgmt-cluster",
            "deletecollection traffictargets.discovery.mesh.gloo.solo.io (cluster-wide) in cluster mgmt-cluster",
        ]
        .into_iter()
        .map(String::from)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(apply_exit(&err).code(), 1);
    assert!(h.server.mutating_requests().is_empty());
    assert!(h.tool_calls().is_empty());
}

#[tokio::test]
async fn dry_run_shows_every_step_and_writes_nothing() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    let mut options = h.options(&plan);
    options.dry_run = true;
    let mut ui = ScriptedUi::unattended();
    let outcome = run(&h, &plan, &snapshot, &options, &mut ui)
        .await
        .expect("dry run");
    assert!(outcome.dry_run);
    assert_eq!(outcome.ran, plan.steps.len());
    assert!(h.server.mutating_requests().is_empty());
    assert!(h.tool_calls().is_empty(), "tools are shown, not run");
    let dry_writes: Vec<_> = h
        .server
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert!(dry_writes.iter().all(|r| r.is_dry_run()));
    assert!(
        dry_writes
            .iter()
            .any(|r| r.path.ends_with("/deployments/discovery/scale"))
    );
    assert!(h.journal("gloo-mesh").is_none());
    let lines = ui.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("would run: helm show crds gloo-mesh")),
        "{lines:#?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("DryRun ")).count(),
        plan.steps.len()
    );
}

#[tokio::test]
async fn a_missing_tool_with_yes_fails_its_version_gate_naming_the_tool_and_where_to_get_it() {
    let h = gloo_harness().await;
    std::fs::remove_file(h.bin.path().join("meshctl")).expect("remove meshctl");
    let (plan, snapshot) = gloo_plan(&h).await;
    let err = run_yes(&h, &plan, &snapshot).await.expect_err("no meshctl");
    let message = err.to_string();
    assert!(
        message.contains("step mgmt-cluster-01-meshctl-version failed"),
        "{message}"
    );
    assert!(
        message.contains("meshctl is not on PATH: put meshctl 1.0.0 on PATH (download: https://github.com/solo-io/gloo-mesh/releases/tag/v1.0.0)"),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(1));
}

#[tokio::test]
async fn a_tool_of_another_version_fails_its_gate_naming_both_versions_before_any_change() {
    let h = gloo_harness().await;
    h.set_tool_version(Tool::Meshctl, "0.10.6");
    let (plan, snapshot) = gloo_plan(&h).await;
    let err = run_yes(&h, &plan, &snapshot)
        .await
        .expect_err("meshctl 0.10.6 cannot upgrade to 1.0.0");
    let message = err.to_string();
    assert!(
        message.contains("is 0.10.6, the plan needs 1.0.0: put meshctl 1.0.0 first on PATH (download: https://github.com/solo-io/gloo-mesh/releases/tag/v1.0.0)"),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    assert_eq!(h.tool_calls(), vec![h.call("meshctl version")]);
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(1));

    // With the right meshctl on PATH the same plan resumes and passes the gate.
    h.set_tool_version(Tool::Meshctl, "1.0.0");
    run_yes(&h, &plan, &snapshot)
        .await
        .expect("resumed with meshctl 1.0.0");
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(1));
}

#[tokio::test]
async fn a_failed_gate_stops_the_run_and_the_undo_restores_the_recorded_replicas() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan_gated_at_review(&h).await;
    let gate = step_id(&plan, "check-passes");
    let mut options = h.options(&plan);
    options.yes = false;
    fail_check_soon(
        &mut options,
        "VirtualMesh gloo-mesh/virtual-mesh: unknown field",
    );
    // Yes to the seven changing steps before the gate, then yes to the undo offer.
    let mut ui = ScriptedUi::answering(&[Answer::Yes; 8]);
    let err = run(&h, &plan, &snapshot, &options, &mut ui)
        .await
        .expect_err("gate fails");
    let message = err.to_string();
    assert!(message.contains(&gate), "{message}");
    assert!(message.contains("unknown field"), "{message}");
    // Undone: both control plane deployments back at their recorded replica count.
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(1));
    assert_eq!(h.replicas("gloo-mesh", "networking"), Some(1));
    let journal = h.journal("gloo-mesh").expect("journal");
    assert_eq!(journal.state(&gate), StepState::Failed);
    assert_eq!(
        journal.state(&step_id(&plan, "scale-down-discovery")),
        StepState::Undone
    );
}

#[tokio::test]
async fn a_failed_step_with_yes_prints_the_undo_commands_instead_of_undoing() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan_gated_at_review(&h).await;
    let mut options = h.options(&plan);
    fail_check_soon(&mut options, "TrafficPolicy bookinfo/reviews: invalid");
    let err = run(
        &h,
        &plan,
        &snapshot,
        &options,
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect_err("gate fails");
    let ApplyError::StepFailed { undo, .. } = &err else {
        panic!("expected a failed step, got {err}");
    };
    // The planner's scale-downs keep their count on the object too: the undo takes it off again.
    assert_eq!(
        undo,
        &vec![
            "kubectl --context mgmt-cluster -n gloo-mesh scale deployment/networking --replicas=1 \
             && kubectl --context mgmt-cluster -n gloo-mesh annotate deployment/networking meshup.dev/replicas-before-"
                .to_string(),
            "kubectl --context mgmt-cluster -n gloo-mesh scale deployment/discovery --replicas=1 \
             && kubectl --context mgmt-cluster -n gloo-mesh annotate deployment/discovery meshup.dev/replicas-before-"
                .to_string(),
        ]
    );
    assert_eq!(h.replicas("gloo-mesh", "discovery"), Some(0));
}

#[tokio::test]
async fn a_lost_journal_still_undoes_a_scale_down_to_the_three_replicas_its_annotation_kept() {
    let h = gloo_harness().await;
    h.server
        .modify("deployments", "gloo-mesh", "discovery", |d| {
            d["spec"]["replicas"] = json!(3);
            d["status"]["readyReplicas"] = json!(3);
        })
        .expect("discovery is seeded");
    // Planned with discovery at 3: the scale-down records the count, its undo restores it.
    let (plan, snapshot) = gloo_plan_gated_at_review(&h).await;
    let scale_down = step_id(&plan, "scale-down-discovery");
    // Killed right after both scale-downs: the count is in the journal and on the object.
    assert!(
        run_until_killed(
            &h,
            &plan,
            &snapshot,
            &h.options(&plan),
            KillAt::AfterStep(3)
        )
        .await
    );
    assert_eq!(
        discovery_replicas_and_recorded(&h.server),
        (Some(0), Some("3".to_string()))
    );
    assert_eq!(
        h.journal("gloo-mesh").expect("journal").undo(&scale_down),
        Some(&UndoRecord::Scale {
            target: deployment("gloo-mesh", "discovery"),
            replicas: 3
        })
    );
    // The journal is lost.
    assert!(
        h.server
            .remove("configmaps", "gloo-mesh", "kubectl-meshup-journal")
            .is_some()
    );

    // The rerun starts over, its gate fails, and the undo is accepted at the prompt.
    let mut options = h.options(&plan);
    options.yes = false;
    options.break_lock = true;
    fail_check_soon(
        &mut options,
        "VirtualMesh gloo-mesh/virtual-mesh: unknown field",
    );
    let mut ui = ScriptedUi::answering(&[Answer::Yes; 8]);
    let err = run(&h, &plan, &snapshot, &options, &mut ui)
        .await
        .expect_err("gate fails");
    assert!(
        err.to_string().contains(&step_id(&plan, "check-passes")),
        "{err}"
    );
    // The rerun scale-down recorded the annotation's 3 (not the 0 it found), and the undo restored it.
    let lines = ui.lines();
    let at = lines
        .iter()
        .position(|l| l == "[2/17] scale Deployment gloo-mesh/discovery 0 -> 0")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(
        lines.get(at + 1).map(String::as_str),
        Some("[2] Done 3 recorded in the journal and meshup.dev/replicas-before"),
        "{lines:#?}"
    );
    assert!(
        ui.lines().iter().any(|l| *l
            == format!(
                "undone {scale_down}: scale Deployment gloo-mesh/discovery to 3, the replicas \
                 recorded before the scale-down"
            )),
        "{:#?}",
        ui.lines()
    );
    assert_eq!(discovery_replicas_and_recorded(&h.server), (Some(3), None));
    assert_eq!(h.replicas("gloo-mesh", "networking"), Some(1));
    let journal = h.journal("gloo-mesh").expect("a new journal");
    assert_eq!(
        journal.undo(&scale_down),
        Some(&UndoRecord::Scale {
            target: deployment("gloo-mesh", "discovery"),
            replicas: 3
        })
    );
    assert_eq!(journal.state(&scale_down), StepState::Undone);
}

#[tokio::test]
async fn an_interrupt_stops_at_a_safe_point_with_the_step_in_progress() {
    // Discovery never writes back here: the wait for it (step 14) waits until interrupted.
    let h = gloo_cluster().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    let (wait, scale_up) = (
        step_id(&plan, "wait-discovery-complete"),
        step_id(&plan, "scale-up-discovery"),
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut options = h.options(&plan);
    options.interrupt = Some(rx);
    let target = h.target();
    let mut ui = ScriptedUi::unattended();
    let interrupter = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let waiting = h
                .journal("gloo-mesh")
                .is_some_and(|j| j.state(&wait) == StepState::InProgress);
            if waiting {
                let _ = tx.send(true);
                break;
            }
        }
    };
    let (result, ()) = tokio::join!(
        apply(&target, &plan, &snapshot, &options, &mut ui),
        interrupter
    );
    let err = result.expect_err("interrupted");
    assert!(matches!(err, ApplyError::Interrupted { .. }), "{err}");
    assert_eq!(apply_exit(&err).code(), 130);
    assert!(
        err.to_string().contains("kubectl meshup apply plan.yaml"),
        "{err}"
    );
    let journal = h.journal("gloo-mesh").expect("journal");
    assert_eq!(journal.state(&wait), StepState::InProgress);
    assert_eq!(journal.state(&scale_up), StepState::Done);
    // An interrupted apply gives its lock back: the next one needs no --break-lock.
    assert!(
        h.server
            .get("leases", "gloo-mesh", "kubectl-meshup-lock")
            .is_none()
    );
}

#[tokio::test]
async fn a_journal_of_another_unfinished_plan_is_refused() {
    let h = gloo_harness().await;
    let (plan, snapshot) = gloo_plan(&h).await;
    assert!(
        run_until_killed(
            &h,
            &plan,
            &snapshot,
            &h.options(&plan),
            KillAt::AfterStep(2)
        )
        .await
    );
    let mut other = plan.clone();
    other.steps.truncate(5);
    let mut options = h.options(&other);
    options.break_lock = true;
    let err = run(
        &h,
        &other,
        &snapshot,
        &options,
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect_err("another plan is unfinished");
    let message = err.to_string();
    assert!(
        message.contains("unfinished apply of another plan"),
        "{message}"
    );
    assert!(message.contains("2 of 18 steps done"), "{message}");
    assert!(
        message.contains(
            "kubectl --context mgmt-cluster -n gloo-mesh delete configmap kubectl-meshup-journal"
        ),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Istio canary

/// How long the played injector takes to replace a restarted deployment's pod.
const INJECTOR_DELAY: Duration = Duration::from_millis(100);

/// The planner's install of revision 1-24-2 as the stand-in records it: the installed revision's
/// configuration, read back from the cluster, handed over as a file.
const INSTALL: &str =
    "istioctl install -y --set revision=1-24-2 --set hub=docker.io/istio --set tag=1.24.2 -f FILE";

/// An Istio 1.23.4 cluster (revision 1-23) on Kubernetes 1.29 with Bookinfo's pods injected by
/// 1-23, the stand-in istioctl 1.24.2 and what its install of revision 1-24-2 creates, and the
/// sidecar injector played.
async fn istio_cluster() -> Harness {
    let h = Harness::start("istio/cluster.yaml").await;
    write_istio_install(h.bin.path(), "1-24-2", "1.24.2");
    h.set_tool_version(Tool::Istioctl, "1.24.2");
    seed_bookinfo_pods(&h.server, "1-23");
    play_injector(&h.server, INJECTOR_DELAY);
    h
}

/// The planner's canary plan, 1.23.4 -> 1.24.2, for the harness's cluster as observed now, and that
/// snapshot. Its nine steps: the istioctl version gate (1), the install of revision 1-24-2 (2) and
/// its rollout (3), bookinfo's label (4) and restart (5), the proxies gate (6), the gate that nothing
/// uses 1-23 (7), its removal (8), and the closing `check passes` gate (9).
async fn istio_plan(h: &Harness) -> (UpgradePlan, ClusterSnapshot) {
    h.plan("istio=1.24.2").await
}

#[tokio::test]
async fn istio_canary_upgrade_moves_the_data_plane_and_removes_the_old_revision() {
    let h = istio_cluster().await;
    let (plan, snapshot) = istio_plan(&h).await;
    let mut ui = ScriptedUi::unattended();

    let outcome = run(&h, &plan, &snapshot, &h.options(&plan), &mut ui)
        .await
        .unwrap_or_else(|e| panic!("canary upgrade: {e}\n{:#?}", ui.lines()));

    assert_eq!(outcome.ran, 9);
    assert_eq!(
        h.tool_calls(),
        vec![
            h.call("istioctl version --remote=false"),
            h.call(INSTALL),
            h.call("istioctl uninstall -y --revision 1-23"),
        ]
    );
    assert!(
        h.server
            .get("deployments", "istio-system", "istiod-1-24-2")
            .is_some()
    );
    assert!(
        h.server
            .get("deployments", "istio-system", "istiod-1-23")
            .is_none()
    );
    let ns = h
        .server
        .get("namespaces", "", "bookinfo")
        .expect("bookinfo");
    assert_eq!(ns["metadata"]["labels"]["istio.io/rev"], "1-24-2");
    for d in ["reviews-v1", "productpage-v1"] {
        let dep = h
            .server
            .get("deployments", "bookinfo", d)
            .expect("deployment");
        assert!(
            dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .is_string(),
            "{d} restarted"
        );
    }
    let proxies: BTreeSet<String> = h
        .server
        .list("pods", "bookinfo")
        .iter()
        .filter_map(|p| {
            p["spec"]["containers"][1]["image"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(
        proxies,
        BTreeSet::from(["docker.io/istio/proxyv2:1.24.2".to_string()])
    );
    // The journal lives in the namespace of the observed istiod.
    assert!(
        h.journal("istio-system")
            .is_some_and(|j| j.finished_at.is_some())
    );
}

#[tokio::test]
async fn a_context_repointed_mid_run_stops_before_the_next_tool_step() {
    let h = istio_cluster().await;
    let (plan, snapshot) = istio_plan(&h).await;
    // Another cluster with the same Istio; while the apply runs, someone points the plan's context
    // at it (as soon as bookinfo is labelled, step 4 of 9).
    let other = FakeApiServer::builder().auto_rollout(true).start();
    other
        .seed_path(Path::new(FIXTURES).join("istio/cluster.yaml"))
        .expect("seed");
    other.clear_requests();
    let (kubeconfig, other_url) = (h.kubeconfig(), other.url());
    h.server.on_change(move |change, _| {
        if change.kind == "Namespace" && change.name == "bookinfo" {
            let text = support::kubeconfig_yaml(&[(CLUSTER, other_url.as_str())], CLUSTER);
            std::fs::write(&kubeconfig, text).expect("re-point the context");
        }
    });
    let mut ui = ScriptedUi::unattended();

    let err = run(&h, &plan, &snapshot, &h.options(&plan), &mut ui)
        .await
        .expect_err("refused at the uninstall");
    assert!(matches!(err, ApplyError::ClusterMoved { .. }), "{err}");
    assert_eq!(apply_exit(&err).code(), 1);
    assert_eq!(
        err.to_string(),
        format!(
            "context {CLUSTER} now names API server {}, not {}, the one the plan was made against; nothing was run there: point the context back at {}, or make a new plan for the cluster it names now with `kubectl meshup --context {CLUSTER} plan --to istio=1.24.2 -o yaml > plan.yaml`",
            other.url(),
            h.server.url(),
            h.server.url()
        )
    );
    // The step line names the binary; the step ends refused.
    let lines = ui.lines();
    let uninstall = format!(
        "[8/9] run istioctl uninstall -y --revision 1-23 (using {} 1.24.2)",
        h.bin.path().join("istioctl").display()
    );
    let at = lines
        .iter()
        .position(|l| *l == uninstall)
        .unwrap_or_else(|| panic!("{uninstall}\n{lines:#?}"));
    assert_eq!(
        lines[at + 1],
        "[8] Failed refused before the tool ran",
        "{lines:#?}"
    );
    // Install ran against the plan's cluster; the uninstall ran nowhere.
    assert_eq!(
        h.tool_calls(),
        vec![h.call("istioctl version --remote=false"), h.call(INSTALL),]
    );
    assert!(
        h.server
            .get("deployments", "istio-system", "istiod-1-23")
            .is_some()
    );
    assert!(
        other
            .get("deployments", "istio-system", "istiod-1-23")
            .is_some()
    );
    assert!(other.mutating_requests().is_empty());
    let journal = h.journal("istio-system").expect("journal");
    assert_ne!(
        journal.state(&step_id(&plan, "remove-1-23")),
        StepState::Done
    );
    assert_eq!(
        journal.state(&step_id(&plan, "gate-unused-1-23")),
        StepState::Done
    );
}

#[tokio::test]
async fn a_context_repointed_after_connecting_stops_at_the_first_tool_before_it_runs() {
    let h = istio_cluster().await;
    let (plan, snapshot) = istio_plan(&h).await;
    // Apply connected to (and observed) the plan's cluster; by the first tool step the context names
    // another server.
    let other = FakeApiServer::start();
    std::fs::write(
        h.kubeconfig(),
        support::kubeconfig_yaml(&[(CLUSTER, other.url().as_str())], CLUSTER),
    )
    .expect("re-point");
    let mut ui = ScriptedUi::unattended();

    let err = run(&h, &plan, &snapshot, &h.options(&plan), &mut ui)
        .await
        .expect_err("refused at the version gate");
    assert!(matches!(err, ApplyError::ClusterMoved { .. }), "{err}");
    assert_eq!(apply_exit(&err).code(), 1);
    // Not even the version query ran; the refused step has its own line.
    assert!(h.tool_calls().is_empty(), "{:?}", h.tool_calls());
    assert_eq!(
        ui.lines(),
        vec![
            "[1/9] gate: `istioctl version --remote=false` reports 1.24.2".to_string(),
            "[1] Failed refused before the tool ran".to_string(),
        ]
    );
    assert!(other.mutating_requests().is_empty());
}

#[tokio::test]
async fn a_kubeconfig_gone_mid_run_stops_before_the_next_tool_step() {
    let h = istio_cluster().await;
    let (plan, snapshot) = istio_plan(&h).await;
    let kubeconfig = h.kubeconfig();
    h.server.on_change(move |change, _| {
        if change.kind == "Namespace" && change.name == "bookinfo" {
            let _ = std::fs::remove_file(&kubeconfig);
        }
    });
    let err = run_yes(&h, &plan, &snapshot)
        .await
        .expect_err("refused at the uninstall");
    assert!(matches!(err, ApplyError::ClusterUnknown { .. }), "{err}");
    assert_eq!(apply_exit(&err).code(), 1);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot tell which API server context {CLUSTER} names now (cannot read kubeconfig "
        )),
        "{message}"
    );
    assert!(
        message.ends_with(
            "nothing was run there: fix the kubeconfig, then resume with `kubectl meshup apply plan.yaml`"
        ),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        h.server
            .get("deployments", "istio-system", "istiod-1-23")
            .is_some()
    );
    assert_eq!(h.tool_calls().len(), 2, "{:?}", h.tool_calls());
}

#[tokio::test]
async fn a_resumed_restart_reuses_its_recorded_timestamp() {
    let h = istio_cluster().await;
    let (plan, snapshot) = istio_plan(&h).await;
    let restart = step_id(&plan, "restart-bookinfo");
    let options = h.options(&plan);
    // Killed while the restarted workloads roll out.
    assert!(run_until_killed(&h, &plan, &snapshot, &options, KillAt::MidStep(5)).await);
    let first = h
        .journal("istio-system")
        .and_then(|j| j.steps[&restart].restarted_at.clone())
        .expect("restartedAt recorded before the restart");
    let mut options = h.options(&plan);
    options.break_lock = true;
    run(
        &h,
        &plan,
        &snapshot,
        &options,
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect("resume");
    for d in ["reviews-v1", "productpage-v1"] {
        let dep = h
            .server
            .get("deployments", "bookinfo", d)
            .expect("deployment");
        assert_eq!(
            dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            first.as_str()
        );
    }
}

/// A pod with the 1.23 proxy that no Deployment restart replaces: one of a Job (`owner` is
/// `Job/NAME`) or one without a controller (`owner` is `None`).
fn unrestartable_pod(name: &str, owner: Option<&str>) -> Value {
    let mut pod = injected_pod("reviews-v1", "reviews", "1-23", 1);
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["labels"]["app"] = json!(name);
    if let Some(labels) = pod["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    match owner.and_then(|o| o.split_once('/')) {
        Some((kind, owner_name)) => {
            pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": kind,
                "name": owner_name, "uid": "1", "controller": true}]);
        }
        None => {
            if let Some(meta) = pod["metadata"].as_object_mut() {
                meta.remove("ownerReferences");
            }
        }
    }
    pod
}

#[tokio::test]
async fn the_proxies_gate_judges_restarted_workloads_and_names_the_pods_left_for_later() {
    let h = istio_cluster().await;
    let (plan, snapshot) =
        istio_label_restart_and_gate(&h, |g| matches!(g, Gate::ProxiesAtVersion { .. })).await;
    // Since the plan was made, a nightly CronJob's Job is running with the old sidecar, someone left
    // a debug pod, and an earlier run's pod has completed (it runs no proxy any more).
    let mut completed = unrestartable_pod(
        "nightly-export-28760000-abcde",
        Some("Job/nightly-export-28760000"),
    );
    completed["status"]["phase"] = json!("Succeeded");
    for pod in [
        unrestartable_pod(
            "nightly-export-28761234-x2x9q",
            Some("Job/nightly-export-28761234"),
        ),
        unrestartable_pod("debug-shell", None),
        completed,
    ] {
        h.server.seed(pod).expect("seed pod");
    }
    let mut ui = ScriptedUi::unattended();

    run(&h, &plan, &snapshot, &h.options(&plan), &mut ui)
        .await
        .unwrap_or_else(|e| panic!("the gate passes: {e}\n{:#?}", ui.lines()));

    let gate_end = ui
        .lines()
        .into_iter()
        .find(|l| l.starts_with("[3] Done"))
        .expect("the gate finished");
    assert_eq!(
        gate_end,
        "[3] Done passed; left on 1.23.4: Job/nightly-export-28761234 (next run), Pod/debug-shell (recreate by hand)"
    );
}

/// The planner's canary plan narrowed to its namespace label, its restart and the one gate `keep`
/// picks: that gate in isolation, judging pods the restart renews beside pods it cannot.
async fn istio_label_restart_and_gate(
    h: &Harness,
    keep: impl Fn(&Gate) -> bool,
) -> (UpgradePlan, ClusterSnapshot) {
    let (mut plan, snapshot) = istio_plan(h).await;
    plan.steps.retain(|s| match &s.action {
        Action::LabelNamespace { .. } | Action::RestartWorkloads { .. } => true,
        Action::Gate { gate } => keep(gate),
        _ => false,
    });
    assert_eq!(plan.steps.len(), 3);
    (plan, snapshot)
}

/// The Bookinfo pods on 1-23, the canary's label and restart, and the revision gate, with pods no
/// restart renews beside them: a finished Job pod, a running Job pod, a bare debug pod.
async fn revision_gate_harness() -> (Harness, UpgradePlan, ClusterSnapshot) {
    let h = istio_cluster().await;
    let (plan, snapshot) =
        istio_label_restart_and_gate(&h, |g| matches!(g, Gate::RevisionUnused { .. })).await;
    let mut completed = unrestartable_pod(
        "nightly-export-28760000-abcde",
        Some("Job/nightly-export-28760000"),
    );
    completed["status"]["phase"] = json!("Succeeded");
    let mut failed = unrestartable_pod(
        "nightly-export-28759000-fghij",
        Some("Job/nightly-export-28759000"),
    );
    failed["status"]["phase"] = json!("Failed");
    for pod in [completed, failed] {
        h.server.seed(pod).expect("seed pod");
    }
    (h, plan, snapshot)
}

#[tokio::test]
async fn the_revision_gate_passes_over_finished_job_pods() {
    let (h, plan, snapshot) = revision_gate_harness().await;
    let mut ui = ScriptedUi::unattended();
    run(&h, &plan, &snapshot, &h.options(&plan), &mut ui)
        .await
        .unwrap_or_else(|e| panic!("finished pods use no revision: {e}\n{:#?}", ui.lines()));
}

#[tokio::test]
async fn the_revision_gate_fails_soon_naming_running_pods_only_a_person_can_move() {
    let (h, plan, snapshot) = revision_gate_harness().await;
    let gate = step_id(&plan, "gate-unused-1-23");
    for pod in [
        unrestartable_pod(
            "nightly-export-28761234-x2x9q",
            Some("Job/nightly-export-28761234"),
        ),
        unrestartable_pod("debug-shell", None),
    ] {
        h.server.seed(pod).expect("seed pod");
    }
    let options = h.options(&plan);
    let mut ui = ScriptedUi::unattended();
    let started = std::time::Instant::now();
    let err = run(&h, &plan, &snapshot, &options, &mut ui)
        .await
        .expect_err("the gate fails");
    let waited = started.elapsed();
    // Polled briefly (hand_work_polls re-reads), far from the 20 s gate timeout.
    assert!(
        waited < options.gate_timeout / 4,
        "failed after {waited:?}, not at the timeout"
    );
    // The planner's label step has an undo (the old label back), so the message ends with it.
    assert_eq!(
        err.to_string(),
        format!(
            "step {gate} failed: Pod bookinfo/debug-shell still runs revision 1-23; recreate it by hand; \
             Pod bookinfo/nightly-export-28761234-x2x9q of Job/nightly-export-28761234 still runs revision 1-23; \
             let it finish or delete it (the next run is injected by the new revision); \
             then resume with `kubectl meshup apply plan.yaml`; \
             to undo the steps done: kubectl --context mgmt-cluster label namespace bookinfo --overwrite istio.io/rev=1-23"
        )
    );
    let journal = h.journal("istio-system").expect("journal");
    assert_eq!(journal.state(&gate), StepState::Failed);

    // The person deletes both pods and resumes: the gate passes.
    for pod in ["debug-shell", "nightly-export-28761234-x2x9q"] {
        h.server.remove("pods", "bookinfo", pod).expect("pod");
    }
    run(
        &h,
        &plan,
        &snapshot,
        &options,
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect("resumed after the pods went");
}

// ---------------------------------------------------------------------------------------------
// Kmesh prerequisites: the node-kernel and istiod-ambient gates.

fn node(name: &str, os: &str, kernel: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": os}},
        "status": {"nodeInfo": {
            "kernelVersion": kernel,
            "osImage": if os == "windows" { "Windows Server 2022 Datacenter" } else { "Amazon Linux 2" },
            "operatingSystem": os,
            "architecture": "amd64",
            "kubeletVersion": "v1.29.6-eks-1552ad0",
            "containerRuntimeVersion": "containerd://1.7.20",
            "kubeProxyVersion": "", "bootID": "", "machineID": "", "systemUUID": ""
        }}
    })
}

/// The Istio fixture (revision 1-23, ambient off) with Kmesh 1.0.0 in Dual-Engine mode beside it, and
/// the planner's Kmesh 1.1.0 plan narrowed to its two prerequisite gates (every Linux node's kernel,
/// istiod 1-23's ambient flag): the gates in isolation, without the manual step that turns ambient on
/// or the Helm upgrade. The plan is made before `nodes` join, so the gate judges nodes the planner
/// never saw.
async fn kmesh_harness(nodes: &[Value]) -> (Harness, UpgradePlan, ClusterSnapshot) {
    let h = Harness::start("istio/cluster.yaml").await;
    h.server
        .seed_path(support::fixture("cluster/kmesh-dual-engine.yaml"))
        .expect("seed Kmesh");
    let (mut plan, snapshot) = h.plan("kmesh=1.1.0").await;
    plan.steps.retain(|s| {
        matches!(
            s.action,
            Action::Gate {
                gate: Gate::NodeKernelsAtLeast { .. } | Gate::IstiodAmbientEnabled { .. }
            }
        )
    });
    assert_eq!(plan.steps.len(), 2, "{:?}", plan.steps);
    for n in nodes {
        h.server.seed(n).expect("seed node");
    }
    (h, plan, snapshot)
}

#[tokio::test]
async fn the_kernel_gate_fails_at_once_naming_the_old_linux_nodes_but_not_windows_ones() {
    let (h, plan, snapshot) = kmesh_harness(&[
        node("ip-10-0-1-12", "linux", "5.10.225-213.878.amzn2.x86_64"),
        node("ip-10-0-1-13", "linux", "5.4.0-150-generic"),
        node("akswin000000", "windows", "10.0.20348.2527"),
    ])
    .await;
    let started = std::time::Instant::now();
    let err = run_yes(&h, &plan, &snapshot)
        .await
        .expect_err("an old kernel fails the gate");
    let message = err.to_string();
    assert!(
        message.contains("step mgmt-cluster-01-kmesh-kernels failed"),
        "{message}"
    );
    assert!(
        message.contains("ip-10-0-1-13 (5.4.0-150-generic)"),
        "{message}"
    );
    assert!(!message.contains("ip-10-0-1-12"), "{message}");
    assert!(!message.contains("akswin"), "{message}");
    // Failed at once, not after the gate timeout: a kernel does not change while we wait.
    assert!(started.elapsed() < Duration::from_secs(10), "{message}");
}

#[tokio::test]
async fn the_ambient_gate_waits_until_istiod_of_the_revision_enables_ambient() {
    let (h, plan, snapshot) = kmesh_harness(&[node("ip-10-0-1-12", "linux", "6.1.100+")]).await;
    let gate = step_id(&plan, "gate-ambient-1-23");
    // Too short a wait: the fixture's istiod sets PILOT_ENABLE_AMBIENT=false.
    let mut options = h.options(&plan);
    options.gate_timeout = Duration::from_millis(300);
    let err = run(
        &h,
        &plan,
        &snapshot,
        &options,
        &mut ScriptedUi::unattended(),
    )
    .await
    .expect_err("ambient not enabled");
    let message = err.to_string();
    assert!(
        message.contains(&format!("step {gate} failed")),
        "{message}"
    );
    assert!(
        message.contains(
            "istio-system/istiod-1-23 of revision 1-23 does not set PILOT_ENABLE_AMBIENT=true"
        ),
        "{message}"
    );

    // Someone enables ambient while the gate waits (as the manual step before it asks).
    let cluster = h.server.cluster();
    let enable = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        cluster
            .modify("deployments", "istio-system", "istiod-1-23", |d| {
                d["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"] = "true".into();
            })
            .expect("enable ambient");
    });
    let mut ui = ScriptedUi::unattended();
    let outcome = run(&h, &plan, &snapshot, &h.options(&plan), &mut ui)
        .await
        .expect("both gates pass once ambient is on");
    enable.join().expect("enabler thread");
    // The first run's journal recorded the kernel gate done; this run passed the ambient gate.
    assert_eq!(outcome.steps, 2);
    assert_eq!(outcome.ran + outcome.already_done, 2);
    let journal = h.journal("kmesh-system").expect("journal");
    assert_eq!(journal.state(&gate), StepState::Done);
}
