//! The journal and the lock under the real API server's optimistic concurrency: a journal write on a
//! stale resourceVersion (409 Conflict), resume after SIGKILL in the middle of the plan, and a second
//! apply while the Lease is held.
//!
//! Each test holds the first apply in the runbook's step 8 (waiting for discovery to write its
//! resources) by starting the discovery stand-in only when the test is ready to let it finish.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use kubectl_meshup::apply::journal::StepState;

use crate::real::apply::assert_upgraded;
use crate::real::gloo::{self, GlooMesh, NAMESPACE};
use crate::real::harness::{RealCluster, text};

const WAIT_STEP: &str = "real-13-wait-discovery-complete";

struct Running {
    child: Child,
    stderr: PathBuf,
}

impl Running {
    fn start(cluster: &RealCluster, gloo: &GlooMesh, plan: &Path, extra: &[&str]) -> Running {
        let stderr = cluster.dir().join(format!(
            "apply-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let child = gloo
            .meshup_command(cluster, cluster.kubeconfig())
            .arg("apply")
            .arg(plan)
            .args(gloo.allow_repo())
            .arg("--yes")
            .arg("--force-conflicts")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start kubectl-meshup apply");
        Running { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the process to exit; its exit code.
    fn finish(mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status.code(), self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("apply did not finish in {timeout:?}: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the journal says the discovery wait has started.
fn wait_for_step(cluster: &mut RealCluster, run: &mut Running, step: &str) {
    cluster.wait_until(
        &format!("step {step} in progress"),
        Duration::from_secs(180),
        |c| {
            if let Ok(Some(status)) = run.child.try_wait() {
                panic!("apply exited early with {status}: {}", run.stderr());
            }
            gloo::journal(c)
                .and_then(|j| j.steps.get(step).map(|s| s.state == StepState::InProgress))
                .unwrap_or(false)
        },
    );
}

fn setup() -> (RealCluster, GlooMesh, PathBuf) {
    let mut cluster = RealCluster::start();
    let gloo = GlooMesh::install(&mut cluster);
    let plan = gloo::write_plan(&cluster, &gloo);
    (cluster, gloo, plan)
}

/// Someone else writes the journal ConfigMap while apply runs: apply's next write, on the
/// resourceVersion it last read, is refused by the API server (409 Conflict). apply stops with one
/// line naming the ConfigMap, the other write is kept (not overwritten), and running apply again
/// resumes and finishes the plan.
#[test]
fn a_journal_write_on_a_stale_resource_version_is_refused_and_resume_finishes() {
    let (mut cluster, gloo, plan) = setup();
    let mut first = Running::start(&cluster, &gloo, &plan, &[]);
    wait_for_step(&mut cluster, &mut first, WAIT_STEP);
    let before = cluster
        .try_get("configmaps", Some(NAMESPACE), "kubectl-meshup-journal")
        .expect("journal");
    cluster.kubectl_ok(&[
        "annotate",
        "configmap",
        "kubectl-meshup-journal",
        "-n",
        NAMESPACE,
        "example.com/reviewed-by=ops",
    ]);
    let _discovery = gloo::play_discovery(&cluster);
    let (code, stderr) = first.finish(Duration::from_secs(180));
    eprintln!("stale journal write: {stderr}");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("ConfigMap {NAMESPACE}/kubectl-meshup-journal")),
        "{stderr}"
    );
    let after = cluster
        .try_get("configmaps", Some(NAMESPACE), "kubectl-meshup-journal")
        .expect("journal");
    assert_eq!(
        after["metadata"]["annotations"]["example.com/reviewed-by"], "ops",
        "the other writer's change is kept"
    );
    assert_eq!(
        after["data"], before["data"],
        "the stale write did not land"
    );

    let again = Running::start(&cluster, &gloo, &plan, &[]);
    let (code, stderr) = again.finish(Duration::from_secs(300));
    assert_eq!(code, Some(0), "resume: {stderr}");
    assert_upgraded(&mut cluster);
}

/// apply is killed (SIGKILL: no chance to release anything) in the middle of the plan; the Lease it
/// held stops being renewed. Running it again with --break-lock resumes from the journal and
/// reaches the same final state as an uninterrupted run.
#[test]
fn resume_after_sigkill_mid_plan_reaches_the_same_final_state() {
    let (mut cluster, gloo, plan) = setup();
    let mut first = Running::start(&cluster, &gloo, &plan, &[]);
    wait_for_step(&mut cluster, &mut first, WAIT_STEP);
    first.child.kill().expect("SIGKILL");
    let _ = first.child.wait();
    let journal = gloo::journal(&cluster).expect("journal");
    assert_eq!(journal.steps[WAIT_STEP].state, StepState::InProgress);
    assert_eq!(
        journal.steps["real-07-crds-1-0-0"].state,
        StepState::Done,
        "{journal:#?}"
    );
    assert!(
        cluster
            .try_get("leases", Some(NAMESPACE), "kubectl-meshup-lock")
            .is_some(),
        "the killed apply's Lease is left behind"
    );

    // Without --break-lock the left-behind Lease (still within its duration) refuses the resume.
    let refused = gloo.meshup(
        &cluster,
        cluster.kubeconfig(),
        &[
            "apply",
            &plan.display().to_string(),
            "--allow-chart-repo",
            &gloo.repo.url,
            "--yes",
            "--force-conflicts",
        ],
    );
    let stderr = text(&refused.stderr);
    eprintln!("resume without --break-lock: {stderr}");
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "another apply holds the lock Lease {NAMESPACE}/kubectl-meshup-lock in cluster real"
        )) && stderr.contains("re-run with --break-lock"),
        "{stderr}"
    );

    let _discovery = gloo::play_discovery(&cluster);
    let resumed = Running::start(&cluster, &gloo, &plan, &["--break-lock"]);
    let (code, stderr) = resumed.finish(Duration::from_secs(300));
    assert_eq!(code, Some(0), "resume: {stderr}");
    assert_upgraded(&mut cluster);
    let journal = gloo::journal(&cluster).expect("journal");
    assert_eq!(journal.steps[WAIT_STEP].attempts, 2, "{journal:#?}");
    assert_eq!(
        journal.steps["real-07-crds-1-0-0"].attempts, 1,
        "done steps are not run again"
    );
}

/// While one apply holds the Lease, a second is refused before it changes anything, naming the
/// Lease and its holder; the first then finishes.
#[test]
fn a_second_apply_is_refused_while_the_lease_is_held() {
    let (mut cluster, gloo, plan) = setup();
    let mut first = Running::start(&cluster, &gloo, &plan, &[]);
    wait_for_step(&mut cluster, &mut first, WAIT_STEP);
    let lease = cluster
        .try_get("leases", Some(NAMESPACE), "kubectl-meshup-lock")
        .expect("the first apply holds the Lease");
    let holder = lease["spec"]["holderIdentity"]
        .as_str()
        .expect("holder")
        .to_string();
    let journal_before = gloo::journal(&cluster).expect("journal");
    let state_before = gloo::state(&cluster);

    let second = gloo.meshup(
        &cluster,
        cluster.kubeconfig(),
        &[
            "apply",
            &plan.display().to_string(),
            "--allow-chart-repo",
            &gloo.repo.url,
            "--yes",
            "--force-conflicts",
        ],
    );
    let stderr = text(&second.stderr);
    eprintln!("second apply: {stderr}");
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "another apply holds the lock Lease {NAMESPACE}/kubectl-meshup-lock in cluster real (holder {holder}"
        )),
        "{stderr}"
    );
    // The second changed nothing: the journal, the Lease's holder, every object. (The first
    // renews its Lease meanwhile, so the Lease's own resourceVersion moves.)
    assert_eq!(gloo::journal(&cluster).expect("journal"), journal_before);
    let mut state_after = gloo::state(&cluster);
    let mut state_before = state_before;
    state_after.retain(|k, _| !k.starts_with("Lease "));
    state_before.retain(|k, _| !k.starts_with("Lease "));
    assert_eq!(state_after, state_before);
    let lease = cluster
        .try_get("leases", Some(NAMESPACE), "kubectl-meshup-lock")
        .expect("Lease");
    assert_eq!(lease["spec"]["holderIdentity"], holder.as_str());

    let _discovery = gloo::play_discovery(&cluster);
    let (code, stderr) = first.finish(Duration::from_secs(300));
    assert_eq!(code, Some(0), "the first apply: {stderr}");
    assert_upgraded(&mut cluster);
}
