//! The built binary end to end: a plan made by `kubectl meshup plan` against the fake API server, then
//! applied through the real kubectl's plugin mechanism, through a pseudo-terminal answering the
//! prompts, and killed with SIGKILL mid-apply and resumed. Stand-in helm and meshctl
//! (tests/fixtures/apply/bin) record their calls; the test plays Gloo Mesh discovery.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fake_apiserver::FakeApiServer;

use k8s_openapi::jiff::Timestamp;
use kubectl_meshup::apply::journal::{ConfirmedBy, Journal, StepState};
use kubectl_meshup::plan::{self, Action};

use crate::support::{
    binary, cluster_flags, gloo_mesh_server, gloo_mesh_tool_files, meshup_on, path_with,
    play_gloo_discovery, read_journal, stand_in_tools, text, tool_calls,
};

/// A Gloo Mesh 0.10.6 management cluster on Kubernetes 1.21 (inside Gloo Mesh 1.0's range), and a
/// directory with the stand-in tools and the CRDs `helm show crds` prints, and a kubeconfig for the
/// cluster (given to the plugin with --kubeconfig; the tools get it from apply).
struct GlooCluster {
    server: FakeApiServer,
    tools: tempfile::TempDir,
    home: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl GlooCluster {
    fn start() -> Self {
        let server = gloo_mesh_server(FakeApiServer::builder().auto_rollout(true));
        play_gloo_discovery(&server, Duration::from_millis(300));
        let tools = stand_in_tools(&["helm", "meshctl"]);
        let home = tempfile::tempdir().expect("tempdir");
        server
            .write_kubeconfig(home.path().join("kubeconfig"))
            .expect("kubeconfig");
        gloo_mesh_tool_files(tools.path());
        Self {
            server,
            tools,
            home,
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// PATH: the built binary's directory first (kubectl finds the plugin there), then the tools.
    fn path(&self) -> std::ffi::OsString {
        let bin_dir = binary().parent().expect("bin dir").to_path_buf();
        path_with(&[bin_dir, self.tools.path().to_path_buf()])
    }

    fn kubeconfig(&self) -> PathBuf {
        self.home.path().join("kubeconfig")
    }

    /// `kubectl-meshup --kubeconfig K ARGS`, run directly.
    fn meshup(&self, args: &[&str]) -> Command {
        let mut cmd = meshup_on(&self.kubeconfig(), args, &self.path(), self.cache.path());
        cmd.env_remove("NO_COLOR");
        cmd
    }

    /// The real planner's plan, written by `kubectl meshup plan --out`.
    fn plan(&self, dir: &Path) -> PathBuf {
        let file = dir.join("plan.yaml");
        let out = self
            .meshup(&["plan", "--to", "gloo-mesh=1.0.0", "--out"])
            .arg(&file)
            .output()
            .expect("plan runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        file
    }

    /// The id of the plan's one manual step (runbook step 5: review the networking resources against
    /// the 1.0 APIs, which no tool can judge): a person does it ahead and names it with
    /// `--confirm-manual`, so that `--yes` can run the real plan.
    fn manual_step(&self, plan_file: &Path) -> String {
        let plan = plan::load(&std::fs::read_to_string(plan_file).expect("read")).expect("load");
        let manual: Vec<(&str, Option<&str>)> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Manual { .. }))
            .map(|s| (s.id.as_str(), s.reason.step.as_deref()))
            .collect();
        assert_eq!(manual.len(), 1, "one manual step: {manual:?}");
        assert_eq!(manual[0].1, Some("step 5 of 10"));
        manual[0].0.to_string()
    }

    fn replicas(&self, name: &str) -> Option<i64> {
        self.server.get("deployments", "gloo-mesh", name)?["spec"]["replicas"].as_i64()
    }

    fn journal(&self) -> Journal {
        read_journal(&self.server, "gloo-mesh").expect("journal ConfigMap")
    }

    fn tool_calls(&self) -> Vec<String> {
        tool_calls(self.tools.path())
    }

    /// Where a finished upgrade leaves the cluster: both Deployments back at one replica, discovery's
    /// resources written back, the 1.0.0 CRDs served, the helm upgrade and meshctl check run, every
    /// step of the plan `done` in the journal.
    fn assert_upgraded(&self, plan_file: &Path) {
        assert_eq!(self.replicas("discovery"), Some(1));
        assert_eq!(self.replicas("networking"), Some(1));
        for resource in ["meshes", "destinations", "workloads"] {
            assert!(
                self.server
                    .count(&format!("{resource}.discovery.mesh.gloo.solo.io"), "")
                    > 0,
                "{resource} written by 1.0 discovery"
            );
        }
        assert_eq!(
            self.server
                .count("traffictargets.discovery.mesh.gloo.solo.io", ""),
            0,
            "0.10's traffic targets deleted in step 3, never written again"
        );
        let calls = self.tool_calls();
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("helm upgrade gloo-mesh")),
            "{calls:?}"
        );
        let check = format!(
            "meshctl check {}",
            cluster_flags("meshctl", &self.kubeconfig(), self.server.context())
        );
        assert!(calls.contains(&check), "{calls:?}");
        // Every call apply made names the kubeconfig it was given (`cluster register` names its
        // contexts itself, every other call the plan's context).
        for call in &calls {
            assert!(
                call.contains(&format!("--kubeconfig {}", self.kubeconfig().display())),
                "{call}"
            );
        }
        let plan = plan::load(&std::fs::read_to_string(plan_file).expect("read")).expect("load");
        let journal = self.journal();
        for step in &plan.steps {
            assert_eq!(journal.state(&step.id), StepState::Done, "{}", step.id);
        }
        assert!(journal.is_finished());
    }
}

#[test]
fn apply_yes_through_kubectl_runs_the_real_plan_printing_each_step_first() {
    let cluster = GlooCluster::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_file = cluster.plan(dir.path());
    let manual = cluster.manual_step(&plan_file);
    let steps = plan::load(&std::fs::read_to_string(&plan_file).expect("read"))
        .expect("load")
        .steps
        .len();

    // Under --yes, an unconfirmed manual step refuses the run before anything changes.
    cluster.server.clear_requests();
    let refused = cluster
        .meshup(&["apply", "--yes"])
        .arg(&plan_file)
        .output()
        .expect("runs");
    let refusal = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{refusal}");
    assert!(
        refusal.contains(&format!(
            "error: --yes cannot do the plan's manual step {manual} (Review networking resources against the 1.0.0 APIs); nothing was changed: do it first, then re-run with `--confirm-manual {manual}`"
        )),
        "{refusal}"
    );
    // A mistyped id is named, with the plan's manual steps.
    let mistyped = cluster
        .meshup(&["apply", "--yes", "--confirm-manual", "review-networking"])
        .arg(&plan_file)
        .output()
        .expect("runs");
    assert_eq!(mistyped.status.code(), Some(2));
    assert!(
        text(&mistyped.stderr).contains(&format!(
            "error: --confirm-manual names review-networking, which is not a manual step of this plan; its manual steps are: {manual}; nothing was changed"
        )),
        "{}",
        text(&mistyped.stderr)
    );
    assert!(cluster.server.mutating_requests().is_empty());
    assert_eq!(cluster.replicas("discovery"), Some(1));

    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    let out: Output = Command::new(kubectl)
        .args(["meshup", "apply", "--yes", "--confirm-manual", &manual])
        .arg(&plan_file)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .env("PATH", cluster.path())
        .env("KUBECACHEDIR", cluster.cache.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Every step is printed before it acts, numbered, and ends done.
    for i in 1..=steps {
        assert!(
            stderr.contains(&format!("[{i}/{steps}] ")),
            "step {i} shown: {stderr}"
        );
    }
    assert!(
        stderr.contains("scale Deployment gloo-mesh/discovery 1 -> 0 ... done"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("plan applied: {steps} steps")),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );
    cluster.assert_upgraded(&plan_file);
    assert!(
        stderr.contains(&format!(
            "confirmed done ahead with --confirm-manual {manual}"
        )),
        "{stderr}"
    );
    let confirmed = cluster.journal().steps[&manual]
        .confirmed
        .clone()
        .expect("confirmation recorded");
    assert_eq!(confirmed.by, ConfirmedBy::ConfirmManualFlag);
    assert!(confirmed.at.parse::<Timestamp>().is_ok(), "{confirmed:?}");

    // Applying the finished plan again: the cluster has moved on, so the plan is stale.
    let again = cluster
        .meshup(&["apply", "--yes"])
        .arg(&plan_file)
        .output()
        .expect("runs");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("stale"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn without_a_terminal_and_without_yes_nothing_starts_and_exit_2_names_yes() {
    let cluster = GlooCluster::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_file = cluster.plan(dir.path());
    cluster.server.clear_requests();
    let out = cluster
        .meshup(&["apply"])
        .arg(&plan_file)
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(cluster.server.mutating_requests().is_empty());
    assert_eq!(cluster.replicas("discovery"), Some(1));
}

/// Drives `kubectl-meshup apply PLAN` on a pseudo-terminal (python3's pty: a real controlling
/// terminal for stdin and stderr), pressing Enter at each menu (the default answer, `yes`) and typing
/// `yes` where an irreversible step asks for it.
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select
argv, log = sys.argv[2:], sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    out = os.open(log + ".stdout", os.O_WRONLY | os.O_CREAT)
    os.dup2(out, 1)
    os.execv(argv[0], argv)
seen, answered, prompts, deadline = b"", 0, 0, time.time() + 90
while True:
    if time.time() > deadline:
        os.kill(pid, 9)
        break
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    # A menu is on screen when its last item was drawn after the last answer.
    if seen.find(b"abort: stop", answered) >= 0:
        time.sleep(0.1)
        os.write(fd, b"\r")
        prompts += 1
        answered = len(seen)
    # An irreversible step asks for the typed word (a bare Enter would decline it).
    elif seen.find(b"Enter declines): ", answered) >= 0:
        time.sleep(0.1)
        os.write(fd, b"yes\r")
        prompts += 1
        answered = len(seen)
_, status = os.waitpid(pid, 0)
open(log, "wb").write(seen)
print(prompts)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn an_interactive_apply_on_a_terminal_asks_before_each_change_and_each_manual_step() {
    let cluster = GlooCluster::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The real plan, manual steps included: a person confirms those on the terminal.
    let plan_file = cluster.plan(dir.path());
    let plan = plan::load(&std::fs::read_to_string(&plan_file).expect("read")).expect("load");
    let asked = plan
        .steps
        .iter()
        .filter(|s| !matches!(s.action, Action::Wait { .. } | Action::Gate { .. }))
        .count()
        + plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Manual { .. }))
            .count();
    let log = dir.path().join("terminal.log");
    let out = Command::new("python3")
        .arg("-c")
        .arg(PTY_DRIVER)
        .arg(&log)
        .arg(binary())
        .args(["apply", "--kubeconfig"])
        .arg(cluster.kubeconfig())
        .arg(&plan_file)
        .env("PATH", cluster.path())
        .env("KUBECACHEDIR", cluster.cache.path())
        .env("TERM", "xterm")
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .output()
        .expect("python3 runs");
    let screen = text(&std::fs::read(&log).unwrap_or_default());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{screen}",
        text(&out.stderr)
    );
    // Each step that changes the cluster was asked about, and each manual step once more for
    // "has it been done?".
    assert_eq!(text(&out.stdout).trim(), asked.to_string(), "{screen}");
    assert!(screen.contains("run this step?"), "{screen}");
    assert!(screen.contains("has it been done?"), "{screen}");
    cluster.assert_upgraded(&plan_file);
}

#[test]
fn sigkill_at_a_step_boundary_then_resume_with_break_lock_reaches_the_same_state() {
    let cluster = GlooCluster::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_file = cluster.plan(dir.path());
    let manual = cluster.manual_step(&plan_file);

    // Kill right after the fourth step (the first delete-collection) reports done.
    let mut child = cluster
        .meshup(&["apply", "--yes", "--confirm-manual", &manual])
        .arg(&plan_file)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        let killed_here = line.starts_with("[4/") && line.contains(" ... done");
        seen.push(line);
        if killed_here {
            child.kill().expect("SIGKILL");
            break;
        }
    }
    let status = child.wait().expect("wait");
    assert!(!status.success(), "killed: {seen:?}");
    assert_eq!(cluster.replicas("discovery"), Some(0), "{seen:?}");
    let journal = cluster.journal();
    assert!(!journal.is_finished());
    // Step 5 may have started in the moment between the line and the kill.
    assert!(
        (4..=5).contains(&journal.done_count()),
        "{seen:?} {journal:?}"
    );

    // The killed apply still holds the lock: a plain resume is refused, --break-lock resumes.
    let refused = cluster
        .meshup(&["apply", "--yes", "--confirm-manual", &manual])
        .arg(&plan_file)
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("--break-lock"),
        "{}",
        text(&refused.stderr)
    );
    let resumed = cluster
        .meshup(&[
            "apply",
            "--yes",
            "--break-lock",
            "--confirm-manual",
            &manual,
        ])
        .arg(&plan_file)
        .output()
        .expect("runs");
    let stderr = text(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{} were already done", journal.done_count())),
        "{stderr}"
    );
    cluster.assert_upgraded(&plan_file);
}
