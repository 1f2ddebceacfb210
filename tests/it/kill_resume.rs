//! The built binary killed with SIGKILL and resumed, and applying under injected API faults, for the two
//! plans the real planner makes from the apply fixtures: Gloo Mesh 0.10.6 -> 1.0.0 (pre-1.0 runbook,
//! 17 steps, one manual step confirmed with `--confirm-manual`) and the Istio 1.23 -> 1.24.6 canary
//! (9 steps). The test plays the controllers (rollouts complete after a delay, Gloo Mesh discovery
//! writes back, the sidecar injector replaces restarted pods); stand-in helm, meshctl and istioctl
//! (tests/fixtures/apply/bin) record their calls.
//!
//! Where a run is: the plain progress lines on stderr (`[N/T] description ... done`). A boundary kill
//! comes right after the Nth `... done`; a mid-step kill a moment after step N's start appears, for
//! every step that waits (a wait, a gate that polls, a restart waiting for its rollouts).
//!
//! What is re-run after a kill: a step recorded `done` never; a step recorded `in-progress` (or
//! started but not yet recorded) is run again from the start. For a `run` step that means the external
//! tool may run twice when the kill lands while it runs (or after it ended and before `done` was
//! recorded): acceptable because the runbooks' commands converge when repeated (`helm upgrade`,
//! `istioctl install`, `istioctl uninstall`, `meshctl check`, version queries); the tests allow a
//! repeated call only for such a step and only when it was not recorded done. Each run asks a tool its
//! version once, when it first uses it: those queries change nothing and may repeat with every run.
//! Calls are compared with the kubeconfig's path (which differs from cluster to cluster) written
//! `KUBECONFIG`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, Fault};
use serde_json::{Value, json};

use kubectl_meshup::apply::journal::{Journal, StepState, UndoRecord};
use kubectl_meshup::plan::{self, Action, Gate, Tool, UpgradePlan};

use crate::support::{
    FIXTURES, discovery_replicas_and_recorded, gloo_mesh_server, gloo_mesh_tool_files, meshup_on,
    path_with, play_gloo_discovery, play_injector, read_journal, seed_bookinfo_pods,
    stand_in_tools, text, tool_calls, write_istio_install,
};

/// How long the fake's workload controller takes to finish a rollout, so that waits really wait.
const ROLLOUT_DELAY: Duration = Duration::from_millis(400);
/// How long the played controllers (discovery, injector) take to react.
const CONTROLLER_DELAY: Duration = Duration::from_millis(700);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mesh {
    GlooMesh,
    IstioCanary,
}

impl Mesh {
    fn target(self) -> &'static str {
        match self {
            Mesh::GlooMesh => "gloo-mesh=1.0.0",
            Mesh::IstioCanary => "istio=1.24.6",
        }
    }

    fn journal_namespace(self) -> &'static str {
        match self {
            Mesh::GlooMesh => "gloo-mesh",
            Mesh::IstioCanary => "istio-system",
        }
    }

    /// The resources whose objects make up the compared final state (journal and lock excluded).
    fn state_resources(self) -> &'static [&'static str] {
        match self {
            Mesh::GlooMesh => &[
                "deployments",
                "customresourcedefinitions",
                "meshes.discovery.mesh.gloo.solo.io",
                "destinations.discovery.mesh.gloo.solo.io",
                "workloads.discovery.mesh.gloo.solo.io",
                "traffictargets.discovery.mesh.gloo.solo.io",
            ],
            Mesh::IstioCanary => &[
                "deployments",
                "namespaces",
                "pods",
                "mutatingwebhookconfigurations",
            ],
        }
    }
}

/// A fake cluster for one mesh, the stand-in tools and what they read, and a kubeconfig.
struct MeshCluster {
    mesh: Mesh,
    server: FakeApiServer,
    tools: tempfile::TempDir,
    /// The kubeconfig (given with --kubeconfig; apply hands it to the tools).
    home: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl MeshCluster {
    fn start(mesh: Mesh) -> Self {
        let builder = FakeApiServer::builder().auto_rollout_after(Some(ROLLOUT_DELAY));
        let server = match mesh {
            Mesh::GlooMesh => gloo_mesh_server(builder),
            Mesh::IstioCanary => builder.server_version("v1.29.6-eks-db838b0").start(),
        };
        let tools = stand_in_tools(&["helm", "meshctl", "istioctl"]);
        let home = tempfile::tempdir().expect("tempdir");
        server
            .write_kubeconfig(home.path().join("kubeconfig"))
            .expect("kubeconfig");
        match mesh {
            Mesh::GlooMesh => {
                play_gloo_discovery(&server, CONTROLLER_DELAY);
                gloo_mesh_tool_files(tools.path());
            }
            Mesh::IstioCanary => {
                server
                    .seed_path(Path::new(FIXTURES).join("istio/cluster.yaml"))
                    .expect("seed");
                seed_bookinfo_pods(&server, "1-23");
                play_injector(&server, CONTROLLER_DELAY);
                // What `istioctl install --set revision=1-24-6` creates.
                write_istio_install(tools.path(), "1-24-6", "1.24.6");
                std::fs::write(tools.path().join("istioctl.version"), "1.24.6").expect("version");
            }
        }
        Self {
            mesh,
            server,
            tools,
            home,
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> std::ffi::OsString {
        path_with(&[self.tools.path().to_path_buf()])
    }

    fn meshup(&self, args: &[&str]) -> Command {
        let mut cmd = meshup_on(&self.kubeconfig(), args, &self.path(), self.cache.path());
        cmd.env("NO_COLOR", "1").stdin(Stdio::null());
        cmd
    }

    /// The real planner's plan, written with `plan --out`.
    fn plan(&self, dir: &Path) -> (PathBuf, UpgradePlan) {
        let file = dir.join("plan.yaml");
        let out = self
            .meshup(&["plan", "--to", self.mesh.target(), "--out"])
            .arg(&file)
            .output()
            .expect("plan runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let plan = plan::load(&std::fs::read_to_string(&file).expect("read")).expect("load");
        (file, plan)
    }

    /// `apply --yes` with the plan's manual steps confirmed ahead and a short poll interval.
    fn apply(&self, plan_file: &Path, plan: &UpgradePlan, extra: &[&str]) -> Command {
        let mut args = vec!["apply", "--yes", "--poll-interval", "100ms"];
        for step in &plan.steps {
            if matches!(step.action, Action::Manual { .. }) {
                args.extend(["--confirm-manual", step.id.as_str()]);
            }
        }
        args.extend(extra);
        let mut cmd = self.meshup(&args);
        cmd.arg(plan_file);
        cmd
    }

    fn journal(&self) -> Option<Journal> {
        read_journal(&self.server, self.mesh.journal_namespace())
    }

    fn kubeconfig(&self) -> PathBuf {
        self.home.path().join("kubeconfig")
    }

    /// The calls the stand-in tools recorded, the kubeconfig's path written `KUBECONFIG`; each names
    /// the kubeconfig apply was given.
    fn tool_calls(&self) -> Vec<String> {
        let path = self.kubeconfig().display().to_string();
        let calls = tool_calls(self.tools.path());
        for call in &calls {
            assert!(call.contains(&format!("--kubeconfig {path}")), "{call}");
        }
        calls
            .into_iter()
            .map(|c| c.replace(&path, "KUBECONFIG"))
            .collect()
    }

    /// The cluster as the upgrade leaves it, without what differs from run to run: per object its
    /// labels, annotations (restart timestamps masked), spec (its template's restart timestamp
    /// masked) and the proxy images of pods.
    fn state(&self) -> BTreeMap<String, Value> {
        let mut state = BTreeMap::new();
        for resource in self.mesh.state_resources() {
            for mut object in self.server.list(resource, "") {
                let meta = &object["metadata"];
                let key = format!(
                    "{resource} {}/{}",
                    meta["namespace"].as_str().unwrap_or(""),
                    meta["name"].as_str().unwrap_or("")
                );
                mask_restart_time(&mut object["metadata"]["annotations"]);
                mask_restart_time(&mut object["spec"]["template"]["metadata"]["annotations"]);
                let annotations = object["metadata"]["annotations"].clone();
                let labels = object["metadata"]["labels"].clone();
                state.insert(
                    key,
                    json!({"labels": labels, "annotations": annotations, "spec": object["spec"]}),
                );
            }
        }
        state
    }
}

fn mask_restart_time(annotations: &mut Value) {
    if let Some(at) = annotations.get_mut("kubectl.kubernetes.io/restartedAt") {
        *at = json!("<time>");
    }
}

/// Whether a step waits (so a kill can land in the middle of it): waits, gates that poll the cluster,
/// restarts (they wait for their rollouts).
fn waits(action: &Action) -> bool {
    match action {
        Action::Wait { .. } | Action::RestartWorkloads { .. } => true,
        Action::Gate { gate } => !matches!(gate, Gate::ToolVersion { .. }),
        _ => false,
    }
}

/// Where to kill a run.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Right after step N's `... done`.
    After(usize),
    /// A moment after step N's start line appears.
    During(usize),
}

/// The steps whose end line says `done`: `[3/9] wait ... done`, or `[3/9] done (passed)` after
/// progress lines.
fn steps_reported_done(seen: &str, total: usize) -> BTreeSet<usize> {
    seen.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (n, rest) = rest.split_once(&format!("/{total}] "))?;
            let done = rest == "done"
                || rest.starts_with("done (")
                || rest.ends_with(" ... done")
                || rest.contains(" ... done (");
            if done { n.parse().ok() } else { None }
        })
        .collect()
}

/// Stderr read in the background, so the test can watch it while the child runs.
struct Watched {
    child: Child,
    seen: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

fn spawn_watched(mut cmd: Command) -> Watched {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let seen = Arc::new(Mutex::new(String::new()));
    let into = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Watched {
        child,
        seen,
        reader,
    }
}

/// Run apply and SIGKILL it at `at`: the stderr seen, and whether the kill came before the run ended
/// on its own (a mid-step kill of a last step that passes at once may come too late). Panics if the
/// run ends before reaching `at`.
fn run_and_kill(cmd: Command, at: KillAt, total: usize) -> (String, bool) {
    let mut watched = spawn_watched(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = watched.seen.lock().expect("lock").clone();
        let reached = match at {
            KillAt::After(n) => steps_reported_done(&seen, total).contains(&n),
            KillAt::During(n) => seen.contains(&format!("[{n}/{total}] ")),
        };
        if reached {
            if matches!(at, KillAt::During(_)) {
                std::thread::sleep(Duration::from_millis(150));
            }
            break;
        }
        if let Ok(Some(status)) = watched.child.try_wait() {
            panic!("the apply ended ({status}) before {at:?}:\n{seen}");
        }
        assert!(Instant::now() < deadline, "never reached {at:?}:\n{seen}");
        std::thread::sleep(Duration::from_millis(5));
    }
    watched.child.kill().expect("SIGKILL");
    let status = watched.child.wait().expect("wait");
    let _ = watched.reader.join();
    let seen = watched.seen.lock().expect("lock").clone();
    (seen, !status.success())
}

/// An uninterrupted run's final state and tool calls, per mesh (computed once per test).
struct Baseline {
    state: BTreeMap<String, Value>,
    calls: Vec<String>,
}

fn baseline(mesh: Mesh) -> Baseline {
    let cluster = MeshCluster::start(mesh);
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, plan) = cluster.plan(dir.path());
    let out = cluster.apply(&file, &plan, &[]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Baseline {
        state: cluster.state(),
        calls: cluster.tool_calls(),
    }
}

/// After a kill: a component at zero replicas has its count to restore in the journal.
fn assert_zero_replicas_are_recorded(cluster: &MeshCluster, plan: &UpgradePlan, seen: &str) {
    let journal = cluster.journal();
    for step in &plan.steps {
        let Action::Scale {
            target,
            replicas: 0,
            ..
        } = &step.action
        else {
            continue;
        };
        let live = cluster
            .server
            .get("deployments", &target.namespace, &target.name)
            .and_then(|d| d["spec"]["replicas"].as_i64());
        if live != Some(0) {
            continue;
        }
        let recorded = journal.as_ref().and_then(|j| {
            j.steps.values().find_map(|r| match &r.undo {
                Some(UndoRecord::Scale {
                    target: t,
                    replicas,
                }) if t == target && *replicas > 0 => Some(*replicas),
                _ => None,
            })
        });
        assert_eq!(
            recorded,
            Some(1),
            "{}/{} is at 0 replicas: the journal must hold the 1 to restore\n{seen}\n{journal:?}",
            target.namespace,
            target.name
        );
    }
}

/// The calls of a resumed run: the same as an uninterrupted run's once deduplicated, and a call
/// repeated only for an idempotent run step the journal did not record done at the kill.
fn assert_calls(
    calls: &[String],
    base: &Baseline,
    plan: &UpgradePlan,
    at_kill: Option<&Journal>,
    seen: &str,
) {
    let dedup = |calls: &[String]| {
        let mut seen = BTreeSet::new();
        calls
            .iter()
            .filter(|c| seen.insert((*c).clone()))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(dedup(calls), dedup(&base.calls), "{seen}");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in calls {
        *counts.entry(c.as_str()).or_default() += 1;
    }
    for (call, n) in counts {
        let once = base.calls.iter().filter(|c| *c == call).count();
        if n <= once || is_version_query(call) {
            continue;
        }
        let step = plan
            .steps
            .iter()
            .find(|s| step_calls(s).iter().any(|c| c == call))
            .unwrap_or_else(|| panic!("{call} repeated but belongs to no step\n{seen}"));
        assert!(
            at_kill.is_none_or(|j| j.state(&step.id) != StepState::Done),
            "{call} of step {} ran again although it was recorded done\n{seen}",
            step.id
        );
    }
}

/// Whether `call` is a tool's own version query (asked once per run).
fn is_version_query(call: &str) -> bool {
    [Tool::Helm, Tool::Istioctl, Tool::Meshctl]
        .iter()
        .any(|t| call.starts_with(&format!("{} {} ", t.program(), t.version_args().join(" "))))
}

/// The stand-in tool lines a step produces (`helm upgrade ...`), as calls.log records them (the
/// kubeconfig written `KUBECONFIG`): the plan's arguments, then the kubeconfig and the context.
fn step_calls(step: &plan::Step) -> Vec<String> {
    let call = |tool: Tool, args: &[String]| {
        let context_flag = match tool {
            Tool::Helm => "--kube-context",
            Tool::Istioctl => "--context",
            Tool::Meshctl => "--kubecontext",
        };
        let names_contexts = args.iter().any(|a| a == "--mgmt-context");
        let context = if names_contexts {
            String::new()
        } else {
            format!(" {context_flag} {}", step.cluster)
        };
        format!(
            "{} {} --kubeconfig KUBECONFIG{context}",
            tool.program(),
            args.join(" ")
        )
    };
    match &step.action {
        Action::Run {
            tool, args, config, ..
        } => {
            // A carried configuration reaches the tool as a file (a fresh path each run): the stand-in
            // logs it as FILE.
            let mut args = args.clone();
            if let Some(config) = config {
                args.extend([config.kind.flag().to_string(), "FILE".to_string()]);
            }
            vec![call(*tool, &args)]
        }
        Action::Gate {
            gate: Gate::ToolVersion { tool, .. },
        } => {
            let args: Vec<String> = tool.version_args().iter().map(|a| a.to_string()).collect();
            vec![call(*tool, &args)]
        }
        Action::ApplyCrds {
            chart,
            repo,
            version,
        } => vec![call(
            Tool::Helm,
            &kubectl_meshup::apply::describe::helm_show_crds_args(chart, repo, version),
        )],
        _ => Vec::new(),
    }
}

/// One kill scenario: run, kill at `at`, check the journal and the lock, resume, compare.
fn kill_and_resume(mesh: Mesh, at: KillAt, base: &Baseline) {
    let cluster = MeshCluster::start(mesh);
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, plan) = cluster.plan(dir.path());
    let total = plan.steps.len();
    let (seen, killed) = run_and_kill(cluster.apply(&file, &plan, &[]), at, total);
    let context = format!("{mesh:?} killed at {at:?}:\n{seen}");
    if !killed || seen.contains("plan applied") {
        // A mid-step kill lands "a moment after" the step starts; a gate that passes at once (the
        // revision is already unused, or the last step's check passes) and the steps after it can
        // finish first on a fast machine, and the kill can then land while the finished run exits.
        // Then there was nothing to kill: the run must have completed, to the same state.
        assert!(matches!(at, KillAt::During(_)), "{context}");
        assert!(seen.contains("plan applied"), "{context}");
        assert_eq!(cluster.state(), base.state, "{context}");
        return;
    }

    // The journal: no step recorded done beyond what was reported done (and the one after a boundary
    // may have been started); zero replicas always with their count.
    let journal = cluster.journal();
    if let Some(j) = &journal {
        let reported = steps_reported_done(&seen, total).len();
        assert!(
            j.done_count() <= reported + 1,
            "{} done in the journal, {reported} reported\n{context}",
            j.done_count()
        );
        assert!(!j.is_finished(), "{context}");
    }
    assert_zero_replicas_are_recorded(&cluster, &plan, &context);

    // The lock is still held by the killed run: a second apply is refused, naming the holder and
    // --break-lock, and changes nothing.
    cluster.server.clear_requests();
    let refused = cluster.apply(&file, &plan, &[]).output().expect("runs");
    let refusal = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{refusal}\n{context}");
    assert!(
        refusal.contains(&format!(
            "another apply holds the lock Lease {}/kubectl-meshup-lock in cluster fake-apiserver (holder ",
            mesh.journal_namespace()
        )) && refusal.contains("re-run with --break-lock"),
        "{refusal}\n{context}"
    );
    // (A tool the killed run started is not killed with it and may still be writing, through its
    // own kubectl: those writes are not the refused apply's.)
    let written: Vec<_> = cluster
        .server
        .mutating_requests()
        .into_iter()
        .filter(|r| {
            !r.user_agent
                .as_deref()
                .unwrap_or("")
                .starts_with("kubectl/")
        })
        .collect();
    assert!(written.is_empty(), "the refused apply wrote: {written:?}");

    let resumed = cluster
        .apply(&file, &plan, &["--break-lock"])
        .output()
        .expect("runs");
    let stderr = text(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}\n{context}");
    let state = cluster.state();
    assert_eq!(
        state, base.state,
        "final state after {at:?}\n{stderr}\n{context}"
    );
    assert_calls(
        &cluster.tool_calls(),
        base,
        &plan,
        journal.as_ref(),
        &context,
    );
    let finished = cluster.journal().expect("journal");
    assert!(finished.is_finished());
    for step in &plan.steps {
        assert_eq!(finished.state(&step.id), StepState::Done, "{}", step.id);
    }
}

/// The kill points of a plan: after every step but the last, and during every step that waits.
fn kill_points(plan: &UpgradePlan) -> Vec<KillAt> {
    let total = plan.steps.len();
    let mut points: Vec<KillAt> = (1..total).map(KillAt::After).collect();
    points.extend(
        plan.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| waits(&s.action))
            .map(|(i, _)| KillAt::During(i + 1)),
    );
    points
}

fn planned_steps(mesh: Mesh) -> UpgradePlan {
    let cluster = MeshCluster::start(mesh);
    let dir = tempfile::tempdir().expect("tempdir");
    cluster.plan(dir.path()).1
}

fn kill_matrix(mesh: Mesh, keep: impl Fn(usize) -> bool) {
    let started = Instant::now();
    let base = baseline(mesh);
    let plan = planned_steps(mesh);
    let points: Vec<KillAt> = kill_points(&plan)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, p)| p)
        .collect();
    for at in &points {
        kill_and_resume(mesh, *at, &base);
    }
    eprintln!(
        "{mesh:?}: {} kill points ({} steps) in {:.1?}",
        points.len(),
        plan.steps.len(),
        started.elapsed()
    );
}

#[test]
fn istio_canary_killed_at_every_boundary_and_mid_wait_resumes_to_the_same_state() {
    kill_matrix(Mesh::IstioCanary, |_| true);
}

#[test]
fn gloo_mesh_killed_at_sampled_boundaries_and_mid_waits_resumes_to_the_same_state() {
    // Every third kill point in CI; the full matrix is the ignored test below.
    kill_matrix(Mesh::GlooMesh, |i| i % 3 == 0);
}

#[test]
#[ignore = "the full Gloo Mesh matrix (every boundary and every wait) takes longer than CI should; run with --ignored"]
fn gloo_mesh_killed_at_every_boundary_and_mid_wait_resumes_to_the_same_state() {
    kill_matrix(Mesh::GlooMesh, |_| true);
}

// ---------------------------------------------------------------------------------------------
// Faults while applying

/// Attempts of `apply --yes` (resuming after each failure) before giving up.
const MAX_RUNS: usize = 25;

#[test]
fn a_500_on_a_write_fails_the_step_cleanly_and_a_resume_completes() {
    let cluster = MeshCluster::start(Mesh::IstioCanary);
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, plan) = cluster.plan(dir.path());
    let restart = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::RestartWorkloads { .. }))
        .expect("a restart step");
    let fault = cluster.server.inject(
        Fault::status(500)
            .method("PATCH")
            .on("/apis/apps/v1/namespaces/bookinfo/deployments/*")
            .times(1),
    );
    let failed = cluster.apply(&file, &plan, &[]).output().expect("runs");
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert_eq!(cluster.server.fault_hits(fault), 1, "not retried: {stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("an error line");
    assert!(
        error.starts_with(&format!("error: step {} failed: ", restart.id)) && error.contains("500"),
        "{stderr}"
    );
    let journal = cluster.journal().expect("journal");
    assert_eq!(journal.state(&restart.id), StepState::Failed, "{stderr}");
    let recorded = journal.steps[&restart.id]
        .restarted_at
        .clone()
        .expect("restartedAt recorded before the restart");

    let resumed = cluster.apply(&file, &plan, &[]).output().expect("runs");
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert_bookinfo_restarted_once_at(&cluster, &recorded);
}

/// Both Bookinfo deployments restarted exactly once, with `restartedAt` the time the journal recorded.
fn assert_bookinfo_restarted_once_at(cluster: &MeshCluster, recorded: &str) {
    for name in ["reviews-v1", "productpage-v1"] {
        let d = cluster
            .server
            .get("deployments", "bookinfo", name)
            .expect("deployment");
        assert_eq!(
            d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            recorded,
            "{name} restarted with the recorded time"
        );
        assert_eq!(d["metadata"]["generation"], 2, "{name} restarted once");
    }
}

#[test]
fn a_429_on_a_write_is_retried_after_retry_after_and_the_apply_completes() {
    let cluster = MeshCluster::start(Mesh::IstioCanary);
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, plan) = cluster.plan(dir.path());
    let fault = cluster.server.inject(
        Fault::status(429)
            .retry_after(1)
            .method("PATCH")
            .on("/apis/apps/v1/namespaces/bookinfo/deployments/*")
            .times(1),
    );
    let out = cluster.apply(&file, &plan, &[]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(cluster.server.fault_hits(fault), 1);
}

#[test]
fn under_random_api_faults_the_istio_canary_completes_with_each_step_applied_once() {
    let base = baseline(Mesh::IstioCanary);
    let cluster = MeshCluster::start(Mesh::IstioCanary);
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, plan) = cluster.plan(dir.path());
    let seed = 20_250_601;
    // 500, 503 and 429 on about an eighth of requests, latency on a sixth, a few dropped connections.
    // (At a fifth the test still passes, in about 16 runs and 80 s: too slow for every CI run.)
    let faults = [
        Fault::latency(Duration::from_millis(100)).rate(0.15, seed),
        Fault::status(500).rate(0.04, seed + 1),
        Fault::status(503).rate(0.04, seed + 2),
        Fault::status(429).retry_after(1).rate(0.04, seed + 3),
        Fault::drop_connection().rate(0.02, seed + 4),
    ];
    let ids: Vec<_> = faults
        .into_iter()
        .map(|f| cluster.server.inject(f))
        .collect();
    let started = Instant::now();
    let mut runs = Vec::new();
    loop {
        let out: Output = cluster
            .apply(&file, &plan, &["--break-lock"])
            .output()
            .expect("runs");
        let stderr = text(&out.stderr);
        runs.push(format!(
            "exit {:?}: {}",
            out.status.code(),
            stderr.lines().last().unwrap_or("")
        ));
        if out.status.code() == Some(0) {
            break;
        }
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        // Stopped at a safe point: the failing step is not recorded done, the journal not finished.
        if let Some(journal) = cluster.journal() {
            if let Some(failed) = stderr
                .lines()
                .find_map(|l| l.strip_prefix("error: step "))
                .and_then(|l| l.split(' ').next())
            {
                assert_ne!(journal.state(failed), StepState::Done, "{stderr}");
            }
            assert!(!journal.is_finished(), "{stderr}");
        }
        assert!(
            runs.len() < MAX_RUNS,
            "no completion in {MAX_RUNS} runs: {runs:#?}"
        );
    }
    let hits: Vec<u64> = ids
        .iter()
        .map(|id| cluster.server.fault_hits(*id))
        .collect();
    cluster.server.clear_faults();
    assert!(hits.iter().all(|h| *h > 0), "every fault fired: {hits:?}");
    eprintln!(
        "faulted apply: {} run(s) in {:.1?}, fault hits (latency, 500, 503, 429, drop) {hits:?}: {runs:#?}",
        runs.len(),
        started.elapsed()
    );
    assert_eq!(cluster.state(), base.state, "{runs:#?}");

    // Each run step's tool ran once per attempt the journal records, and once when it succeeded at
    // the first attempt; the restart patched each Deployment's template once, with the recorded time.
    let journal = cluster.journal().expect("journal");
    let calls = cluster.tool_calls();
    for step in &plan.steps {
        for call in step_calls(step) {
            let n = calls.iter().filter(|c| **c == call).count() as u32;
            let attempts = journal.steps[&step.id].attempts;
            if is_version_query(&call) {
                // Asked once per run that uses the tool, whatever the gate's attempts.
                assert!(n >= 1, "{call}: never asked\n{runs:#?}");
                continue;
            }
            assert!(
                n >= 1 && n <= attempts,
                "{call}: {n} calls, {attempts} attempts of {}\n{runs:#?}",
                step.id
            );
        }
        if let Action::RestartWorkloads { .. } = step.action {
            let at = journal.steps[&step.id]
                .restarted_at
                .clone()
                .expect("recorded");
            assert_bookinfo_restarted_once_at(&cluster, &at);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replica counts when the journal is lost

const REPLICAS_BEFORE: &str = "meshup.dev/replicas-before";

/// The Gloo Mesh cluster with discovery running 3 replicas, its plan, and the 1-based position of
/// the last scale-down (networking's).
fn gloo_at_three_replicas(dir: &Path) -> (MeshCluster, PathBuf, UpgradePlan, usize) {
    let cluster = MeshCluster::start(Mesh::GlooMesh);
    cluster
        .server
        .modify("deployments", "gloo-mesh", "discovery", |d| {
            d["spec"]["replicas"] = json!(3);
            for field in [
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            ] {
                d["status"][field] = json!(3);
            }
        })
        .expect("discovery is seeded");
    let (file, plan) = cluster.plan(dir);
    // The plan records the 3 it observed: scaled down from 3, and back to 3 (not 1).
    let step = |suffix: &str| {
        plan.steps
            .iter()
            .position(|s| s.id.ends_with(suffix))
            .unwrap_or_else(|| panic!("no step *{suffix}"))
    };
    let down = &plan.steps[step("scale-down-discovery")];
    assert_eq!(down.title, "Scale gloo-mesh/discovery from 3 to 0 replicas");
    assert!(
        matches!(&down.undo, Some(Action::Scale { replicas: 3, .. })),
        "{down:?}"
    );
    let up = &plan.steps[step("scale-up-discovery")];
    assert_eq!(up.title, "Scale gloo-mesh/discovery back to 3 replicas");
    assert!(
        matches!(&up.action, Action::Scale { replicas: 3, .. }),
        "{up:?}"
    );
    let last_down = step("scale-down-networking") + 1;
    (cluster, file, plan, last_down)
}

/// Kill the apply right after both scale-downs, then delete its journal (as a lost ConfigMap or an
/// API server restored from an old backup would): discovery is at 0, and only its annotation
/// remembers the 3.
fn kill_after_the_scale_downs_and_lose_the_journal(
    cluster: &MeshCluster,
    file: &Path,
    plan: &UpgradePlan,
    last_down: usize,
) -> String {
    let total = plan.steps.len();
    // The step after the scale-downs deletes discovery's meshes: its list waits, so the kill lands
    // before any delete (a delete would make the plan stale; see the next test for that case).
    let slow_list = cluster.server.inject(
        Fault::latency(Duration::from_secs(2))
            .method("GET")
            .on("/apis/discovery.mesh.gloo.solo.io/v1alpha2/meshes"),
    );
    let (seen, killed) = run_and_kill(
        cluster.apply(file, plan, &[]),
        KillAt::After(last_down),
        total,
    );
    cluster.server.remove_fault(slow_list);
    assert!(killed, "{seen}");
    eprintln!("{seen}");
    assert_eq!(
        discovery_replicas_and_recorded(&cluster.server),
        (Some(0), Some("3".to_string())),
        "{seen}"
    );
    let journal = cluster.journal().expect("journal written");
    let down = plan
        .steps
        .iter()
        .find(|s| s.id.ends_with("scale-down-discovery"))
        .expect("scale-down step");
    assert!(
        matches!(
            journal.undo(&down.id),
            Some(UndoRecord::Scale { replicas: 3, .. })
        ),
        "the journal records the 3 seen just before the scale-down: {journal:?}"
    );
    assert!(
        cluster
            .server
            .remove("configmaps", "gloo-mesh", "kubectl-meshup-journal")
            .is_some()
    );
    assert!(cluster.journal().is_none());
    seen
}

#[test]
fn a_lost_journal_still_restores_three_replicas_on_resume_from_the_annotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, file, plan, last_down) = gloo_at_three_replicas(dir.path());
    let seen = kill_after_the_scale_downs_and_lose_the_journal(&cluster, &file, &plan, last_down);

    // check names the component at 0 and the count to bring back.
    let out = cluster
        .meshup(&["check", "-o", "json"])
        .output()
        .expect("check runs");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let finding = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "gloo-mesh.replicas-ready" && f["subject"] == "Gloo Mesh discovery")
        .expect("discovery judged");
    assert_eq!(finding["severity"], "fail");
    assert_eq!(
        finding["message"],
        "Deployment gloo-mesh/discovery (Gloo Mesh discovery) is scaled to 0 replicas, so it is down; an \
         unfinished `kubectl meshup apply` scaled it down from 3 (annotation meshup.dev/replicas-before): \
         resume that apply, or scale it back: kubectl -n gloo-mesh scale deployment discovery --replicas=3"
    );
    eprintln!("{}", finding["message"]);

    // The same plan still applies (the annotation keeps the fingerprint's 3), from the start.
    let resumed = cluster
        .apply(&file, &plan, &["--break-lock"])
        .output()
        .expect("runs");
    let stderr = text(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}\n{seen}");
    eprintln!("{stderr}");
    let total = plan.steps.len();
    let up = plan
        .steps
        .iter()
        .position(|s| s.id.ends_with("scale-up-discovery"))
        .expect("scale-up step")
        + 1;
    let restored = format!(
        "[{up}/{total}] scale Deployment gloo-mesh/discovery 0 -> 3 ... done (3 restored from the journal)"
    );
    assert!(
        stderr.lines().any(|l| l == restored),
        "{restored}\n{stderr}"
    );
    // The deployment ends at 3, its annotation gone; networking back at its 1.
    assert_eq!(
        discovery_replicas_and_recorded(&cluster.server),
        (Some(3), None),
        "{stderr}"
    );
    let networking = cluster
        .server
        .get("deployments", "gloo-mesh", "networking")
        .expect("networking");
    assert_eq!(networking["spec"]["replicas"], 1);
    assert!(networking["metadata"]["annotations"][REPLICAS_BEFORE].is_null());
    // The new journal recorded the 3 again, from the annotation, when the scale-down re-ran.
    let journal = cluster.journal().expect("a new journal");
    assert!(journal.is_finished());
    let down = plan
        .steps
        .iter()
        .find(|s| s.id.ends_with("scale-down-discovery"))
        .expect("scale-down step");
    assert!(
        matches!(
            journal.undo(&down.id),
            Some(UndoRecord::Scale { replicas: 3, .. })
        ),
        "{journal:?}"
    );
}

#[test]
fn a_lost_journal_still_undoes_to_three_replicas_after_a_later_step_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, file, plan, last_down) = gloo_at_three_replicas(dir.path());
    kill_after_the_scale_downs_and_lose_the_journal(&cluster, &file, &plan, last_down);

    // helm now fails: the CRD step after the deletes stops the resumed run.
    let helm = cluster.tools.path().join("helm");
    std::fs::write(
        &helm,
        "#!/bin/sh\necho 'Error: chart repository unreachable' >&2\nexit 1\n",
    )
    .expect("write helm");
    let failed = cluster
        .apply(&file, &plan, &["--break-lock"])
        .output()
        .expect("runs");
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("an error line");
    eprintln!("{error}");
    let (_, undo) = error
        .split_once("; to undo the steps done: ")
        .unwrap_or_else(|| panic!("no undo commands: {stderr}"));
    // apply was given --kubeconfig, so every hint carries it with the context (one home: tools::cluster_flags).
    let context = format!(
        "kubectl --kubeconfig {} --context fake-apiserver -n gloo-mesh",
        cluster.kubeconfig().display()
    );
    assert_eq!(
        undo,
        format!(
            "{context} scale deployment/networking --replicas=1 && {context} annotate deployment/networking \
             {REPLICAS_BEFORE}- && {context} scale deployment/discovery --replicas=3 && {context} annotate \
             deployment/discovery {REPLICAS_BEFORE}-"
        )
    );
    assert_eq!(
        discovery_replicas_and_recorded(&cluster.server),
        (Some(0), Some("3".to_string()))
    );

    // The printed undo, run as a person would (kubectl against the same cluster).
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    let script = undo.replace("kubectl ", &format!("{kubectl} "));
    let ran = Command::new("sh")
        .args(["-c", &script])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("KUBECACHEDIR", cluster.cache.path())
        .output()
        .expect("sh runs");
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    assert_eq!(
        discovery_replicas_and_recorded(&cluster.server),
        (Some(3), None)
    );
}

#[test]
fn the_final_check_gate_fails_on_a_gloo_mesh_component_with_no_ready_replica() {
    let cluster = MeshCluster::start(Mesh::GlooMesh);
    // A cert-agent whose pod never becomes ready; no step of the plan touches it.
    cluster
        .server
        .seed(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "cert-agent", "namespace": "gloo-mesh", "labels": {"app": "cert-agent"}, "generation": 1},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "cert-agent"}},
                "template": {
                    "metadata": {"labels": {"app": "cert-agent"}},
                    "spec": {"containers": [{"name": "cert-agent", "image": "gcr.io/gloo-mesh/cert-agent:0.10.6"}]}
                }
            },
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0, "availableReplicas": 0}
        }))
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, plan) = cluster.plan(dir.path());
    let gate = plan.steps.last().expect("steps");
    assert!(
        matches!(
            gate.action,
            Action::Gate {
                gate: Gate::CheckPasses
            }
        ),
        "{gate:?}"
    );
    let out = cluster
        .apply(&file, &plan, &["--step-timeout", "2s"])
        .output()
        .expect("runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("an error line");
    eprintln!("{error}");
    assert!(
        error.starts_with(&format!("error: step {} failed: ", gate.id)),
        "{stderr}"
    );
    assert!(
        error.contains(
            "gloo-mesh.replicas-ready Gloo Mesh cert-agent: Deployment gloo-mesh/cert-agent (the Gloo Mesh agent) \
             has 0 of 1 replica ready, so it is down; look at its pods: kubectl -n gloo-mesh describe deployment \
             cert-agent"
        ),
        "{stderr}"
    );
    // Every step before the gate ran; the gate is recorded failed, not done.
    let journal = cluster.journal().expect("journal");
    assert_eq!(journal.state(&gate.id), StepState::Failed);
    assert_eq!(journal.done_count(), plan.steps.len() - 1);
    assert!(!journal.is_finished());
}

#[test]
fn a_lost_journal_after_the_deletes_needs_a_new_plan_which_still_restores_three_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, file, plan, last_down) = gloo_at_three_replicas(dir.path());
    let total = plan.steps.len();
    // Killed right after the first delete (the next delete's list waits, so the kill lands first).
    let slow_list = cluster.server.inject(
        Fault::latency(Duration::from_secs(2))
            .method("GET")
            .on("/apis/discovery.mesh.gloo.solo.io/v1alpha2/traffictargets"),
    );
    let (seen, killed) = run_and_kill(
        cluster.apply(&file, &plan, &[]),
        KillAt::After(last_down + 1),
        total,
    );
    cluster.server.remove_fault(slow_list);
    assert!(killed, "{seen}");
    assert_eq!(
        discovery_replicas_and_recorded(&cluster.server),
        (Some(0), Some("3".to_string())),
        "{seen}"
    );
    assert!(
        cluster
            .server
            .remove("configmaps", "gloo-mesh", "kubectl-meshup-journal")
            .is_some()
    );

    // Without its journal the old plan is stale (the deleted meshes); the refusal changes nothing.
    cluster.server.clear_requests();
    let refused = cluster
        .apply(&file, &plan, &["--break-lock"])
        .output()
        .expect("runs");
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    eprintln!("{stderr}");
    assert!(
        stderr.contains("error: the plan is stale: the cluster changed since it was made (fake-apiserver/gloo-mesh/group/discovery.mesh.gloo.solo.io: v1alpha2 meshes,traffictargets,workloads -> v1alpha2 meshes,traffictargets,workloads (empty: meshes)); make a new plan"),
        "{stderr}"
    );
    assert!(
        cluster
            .server
            .mutating_requests()
            .iter()
            .all(|r| !r.path.contains("/deployments/")),
        "the refused apply changed a deployment"
    );

    // A new plan, made while discovery is held at 0, still knows the 3 from the annotation.
    let again_dir = tempfile::tempdir().expect("tempdir");
    let (again_file, again) = cluster.plan(again_dir.path());
    let title = |suffix: &str| {
        again
            .steps
            .iter()
            .find(|s| s.id.ends_with(suffix))
            .map(|s| s.title.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        title("scale-down-discovery"),
        "Scale gloo-mesh/discovery from 3 to 0 replicas"
    );
    assert_eq!(
        title("scale-up-discovery"),
        "Scale gloo-mesh/discovery back to 3 replicas"
    );
    let applied = cluster
        .apply(&again_file, &again, &["--break-lock"])
        .output()
        .expect("runs");
    let stderr = text(&applied.stderr);
    assert_eq!(applied.status.code(), Some(0), "{stderr}");
    assert_eq!(
        discovery_replicas_and_recorded(&cluster.server),
        (Some(3), None),
        "{stderr}"
    );
}
