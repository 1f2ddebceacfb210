//! Which cluster and which binary an external tool runs against (issue 16): the built binary plans an
//! Istio 1.23 -> 1.24.6 canary for context `staging` of a kubeconfig that also holds `prod` (two fake
//! API servers), then applies it while something else would send the tools elsewhere: the current
//! context is `prod`, or `~/.kube/config` names another cluster, or the context was re-pointed after
//! planning, or a file named `istioctl` waits in the working directory behind a relative `PATH` entry.
//! The stand-in istioctl (tests/fixtures/apply/bin) picks its cluster as the real one does: its
//! `--kubeconfig` and `--context` flags, else `KUBECONFIG`, else `$HOME/.kube/config`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::Value;

use kubectl_meshup::apply::journal::StepState;
use kubectl_meshup::plan::{self, Action, Gate, Tool, UpgradePlan};

use crate::support::{
    FIXTURES, binary, play_injector, read_journal, seed_bookinfo_pods, stand_in_tools, text,
    tool_calls, write_istio_install, write_kubeconfig,
};

/// How long the played sidecar injector takes to replace a restarted pod.
const INJECTOR_DELAY: Duration = Duration::from_millis(100);

/// An Istio 1.23 cluster with Bookinfo (istio/cluster.yaml), its rollouts completed by the fake and
/// (when `injector`) its restarted pods re-injected by the played injector.
fn istio_cluster(injector: bool) -> FakeApiServer {
    let server = FakeApiServer::builder().auto_rollout(true).start();
    server
        .seed_path(Path::new(FIXTURES).join("istio/cluster.yaml"))
        .expect("seed");
    seed_bookinfo_pods(&server, "1-23");
    if injector {
        play_injector(&server, INJECTOR_DELAY);
    }
    server
}

/// Two clusters, the stand-in istioctl, a home directory, a working directory and a kubeconfig
/// (`config`) with contexts `staging` and `prod`, current context `prod`.
struct Fleet {
    staging: FakeApiServer,
    prod: FakeApiServer,
    tools: tempfile::TempDir,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Self {
        Self::start_with(true)
    }

    /// `injector: false`: staging's restarted pods keep their 1.23 proxies, so the proxies gate fails.
    fn start_with(injector: bool) -> Self {
        let (staging, prod) = (istio_cluster(injector), istio_cluster(true));
        let tools = stand_in_tools(&["istioctl"]);
        // What `istioctl install --set revision=1-24-6` creates.
        write_istio_install(tools.path(), "1-24-6", "1.24.6");
        std::fs::write(tools.path().join("istioctl.version"), "1.24.6").expect("version");
        let fleet = Self {
            staging,
            prod,
            tools,
            home: tempfile::tempdir().expect("tempdir"),
            work: tempfile::tempdir().expect("tempdir"),
            cache: tempfile::tempdir().expect("tempdir"),
        };
        fleet.write_config(&fleet.staging);
        fleet
    }

    /// The kubeconfig with both contexts; the user's KUBECONFIG in most tests.
    fn config(&self) -> PathBuf {
        self.work.path().join("config")
    }

    /// (Re)writes [`Fleet::config`] with `staging` naming `staging_server`, `prod` naming prod.
    fn write_config(&self, staging_server: &FakeApiServer) {
        write_kubeconfig(
            &self.config(),
            &[("staging", staging_server), ("prod", &self.prod)],
            "prod",
        );
    }

    /// PATH: the stand-in tools' directory, then the system's (kubectl, sh).
    fn path(&self) -> OsString {
        let system = std::env::var_os("PATH").unwrap_or_default();
        std::env::join_paths(
            std::iter::once(self.tools.path().to_path_buf())
                .chain(std::env::split_paths(&system).filter(|p| p.is_absolute())),
        )
        .expect("PATH")
    }

    /// `kubectl-meshup ARGS` in the working directory, with HOME, PATH and KUBECONFIG (`None`: unset)
    /// as a user's shell would give them.
    fn meshup(&self, args: &[&str], kubeconfig_env: Option<&Path>, path: &OsString) -> Command {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .current_dir(self.work.path())
            .env("HOME", self.home.path())
            .env("PATH", path)
            .env("KUBECACHEDIR", self.cache.path())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        if let Some(k) = kubeconfig_env {
            cmd.env("KUBECONFIG", k);
        }
        cmd
    }

    /// The real planner's plan for context `staging`, made with `prefix` (`--kubeconfig F`, or
    /// nothing when KUBECONFIG names the file).
    fn plan(&self, prefix: &[&str], kubeconfig_env: Option<&Path>) -> (PathBuf, UpgradePlan) {
        let file = self.work.path().join("plan.yaml");
        let mut args = prefix.to_vec();
        args.extend([
            "--context",
            "staging",
            "plan",
            "--to",
            "istio=1.24.6",
            "--out",
        ]);
        let out = self
            .meshup(&args, kubeconfig_env, &self.path())
            .arg(&file)
            .output()
            .expect("plan runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let plan = plan::load(&std::fs::read_to_string(&file).expect("read")).expect("load");
        assert_eq!(plan.clusters, ["staging"]);
        (file, plan)
    }

    /// `PREFIX apply --yes EXTRA PLAN`, the plan's manual steps confirmed ahead.
    fn apply(
        &self,
        prefix: &[&str],
        extra: &[&str],
        plan_file: &Path,
        plan: &UpgradePlan,
        kubeconfig_env: Option<&Path>,
        path: &OsString,
    ) -> Output {
        let mut args = prefix.to_vec();
        args.extend(["apply", "--yes", "--poll-interval", "100ms"]);
        args.extend(extra);
        for step in &plan.steps {
            if matches!(step.action, Action::Manual { .. }) {
                args.extend(["--confirm-manual", step.id.as_str()]);
            }
        }
        let mut cmd = self.meshup(&args, kubeconfig_env, path);
        cmd.arg(plan_file);
        cmd.output().expect("apply runs")
    }

    fn tool_calls(&self) -> Vec<String> {
        tool_calls(self.tools.path())
    }
}

/// A cluster's Istio-relevant objects (deployments, webhooks, namespaces with labels, pods), each as
/// its spec, labels and annotations: enough to tell whether anything was changed.
fn objects(server: &FakeApiServer) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for resource in [
        "deployments",
        "mutatingwebhookconfigurations",
        "namespaces",
        "pods",
    ] {
        for o in server.list(resource, "") {
            let key = format!(
                "{resource}/{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            );
            let kept = serde_json::json!({
                "labels": o["metadata"]["labels"],
                "annotations": o["metadata"]["annotations"],
                "spec": o["spec"],
            });
            all.insert(key, kept);
        }
    }
    all
}

/// The canary's result in `server`: 1.24.6 installed, bookinfo moved, 1.23 removed.
fn assert_upgraded(server: &FakeApiServer) {
    assert!(
        server
            .get("deployments", "istio-system", "istiod-1-24-6")
            .is_some()
    );
    assert!(
        server
            .get("deployments", "istio-system", "istiod-1-23")
            .is_none()
    );
    let ns = server.get("namespaces", "", "bookinfo").expect("bookinfo");
    assert_eq!(ns["metadata"]["labels"]["istio.io/rev"], "1-24-6");
}

/// The steps of `plan` that run istioctl (its version gate and its `run` steps).
fn istioctl_steps(plan: &UpgradePlan) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| {
            matches!(
                s.action,
                Action::Run {
                    tool: Tool::Istioctl,
                    ..
                } | Action::Gate {
                    gate: Gate::ToolVersion {
                        tool: Tool::Istioctl,
                        ..
                    }
                }
            )
        })
        .map(|s| s.id.clone())
        .collect()
}

#[test]
fn with_prod_as_current_context_a_staging_plan_changes_staging_only() {
    let fleet = Fleet::start();
    let kubeconfig = fleet.config();
    let (file, plan) = fleet.plan(&[], Some(&kubeconfig));
    let prod_before = objects(&fleet.prod);
    fleet.prod.clear_requests();

    let out = fleet.apply(&["-v"], &[], &file, &plan, Some(&kubeconfig), &fleet.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Every istioctl call named the kubeconfig apply read and staging's context.
    let calls = fleet.tool_calls();
    assert_eq!(calls.len(), 3, "version, install, uninstall: {calls:?}");
    let flags = format!("--kubeconfig {} --context staging", kubeconfig.display());
    for call in &calls {
        assert!(call.ends_with(&flags), "{call}");
    }
    assert!(calls[1].starts_with("istioctl install "), "{calls:?}");
    assert!(calls[2].contains("1-23"), "{calls:?}");
    assert!(calls[1].contains("revision=1-24-6"), "{calls:?}");
    // The new revision gets the installed revision's configuration, read back from the cluster
    // (istioctl stores no IstioOperator any more), as a file the stand-in read: `-f FILE`.
    assert!(calls[1].contains(" -f FILE "), "{calls:?}");
    let carried = std::fs::read_to_string(fleet.tools.path().join("carried.log")).expect("carried");
    for expected in [
        "--- istioctl -f",
        "kind: IstioOperator",
        "accessLogFile: /dev/stdout",
        "mode: REGISTRY_ONLY",
        "memory: 3Gi",
    ] {
        assert!(carried.contains(expected), "{expected}: {carried}");
    }
    // Revision-specific settings are not carried: the new revision gets its own.
    assert!(!carried.contains("discoveryAddress"), "{carried}");
    assert!(!carried.contains("REVISION"), "{carried}");
    assert!(calls[2].starts_with("istioctl uninstall "), "{calls:?}");
    assert_upgraded(&fleet.staging);
    // Prod, the current context, was neither written nor changed.
    assert_eq!(objects(&fleet.prod), prod_before);
    assert!(fleet.prod.mutating_requests().is_empty());

    // The step lines name the binary and its version; -v shows each command line in full.
    let istioctl = fleet.tools.path().join("istioctl");
    let using = format!("(using {} 1.24.6)", istioctl.display());
    let install_line = stderr
        .lines()
        .find(|l| l.contains("run istioctl install"))
        .unwrap_or_else(|| panic!("an install step line\n{stderr}"));
    assert!(install_line.contains(&using), "{install_line}");
    assert!(
        stderr.contains(&format!("running {} install ", istioctl.display())),
        "{stderr}"
    );
    // The journal in staging records the binary and version of each istioctl step.
    let journal = read_journal(&fleet.staging, "istio-system").expect("journal");
    let steps = istioctl_steps(&plan);
    assert_eq!(steps.len(), 3, "{steps:?}");
    for id in steps {
        let record = &journal.steps[&id];
        assert_eq!(record.state, StepState::Done, "{id}");
        let tool = record.tool.as_ref().unwrap_or_else(|| panic!("{id}"));
        assert_eq!(tool.path, istioctl.display().to_string());
        assert_eq!(tool.version.as_deref(), Some("1.24.6"));
    }
}

#[test]
fn with_kubeconfig_flag_the_tools_ignore_a_home_config_that_names_another_cluster() {
    let fleet = Fleet::start();
    // ~/.kube/config has a context `staging` too, pointing at prod, and it is current.
    let kube_dir = fleet.home.path().join(".kube");
    std::fs::create_dir_all(&kube_dir).expect("mkdir");
    write_kubeconfig(
        &kube_dir.join("config"),
        &[("staging", &fleet.prod)],
        "staging",
    );
    let flag_file = fleet.config();
    let flag = flag_file.to_str().expect("utf-8 path");
    let (file, plan) = fleet.plan(&["--kubeconfig", flag], None);
    let prod_before = objects(&fleet.prod);
    fleet.prod.clear_requests();

    let out = fleet.apply(
        &["--kubeconfig", flag],
        &[],
        &file,
        &plan,
        None,
        &fleet.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let calls = fleet.tool_calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for call in &calls {
        assert!(
            call.ends_with(&format!("--kubeconfig {flag} --context staging")),
            "{call}"
        );
    }
    assert_upgraded(&fleet.staging);
    assert_eq!(objects(&fleet.prod), prod_before);
    assert!(fleet.prod.mutating_requests().is_empty());
}

#[test]
fn a_context_repointed_after_planning_is_refused_before_any_tool_runs() {
    let fleet = Fleet::start();
    let kubeconfig = fleet.config();
    let (file, plan) = fleet.plan(&[], Some(&kubeconfig));
    // Someone points `staging` at prod's API server after the plan was made.
    fleet.write_config(&fleet.prod);
    let (staging_before, prod_before) = (objects(&fleet.staging), objects(&fleet.prod));
    fleet.staging.clear_requests();
    fleet.prod.clear_requests();

    let out = fleet.apply(&[], &[], &file, &plan, Some(&kubeconfig), &fleet.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "error: context staging now names API server {}, not {}, the one the plan was made against; nothing was run there: point the context back at {}, or make a new plan for the cluster it names now with `kubectl meshup --context staging plan --to istio=1.24.6 -o yaml > {}`",
        fleet.prod.url(),
        fleet.staging.url(),
        fleet.staging.url(),
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(fleet.tool_calls().is_empty(), "{:?}", fleet.tool_calls());
    assert_eq!(objects(&fleet.staging), staging_before);
    assert_eq!(objects(&fleet.prod), prod_before);
    assert!(fleet.staging.mutating_requests().is_empty());
    assert!(fleet.prod.mutating_requests().is_empty());
}

/// A file named `istioctl` in the working directory that leaves a marker when run.
fn planted_istioctl(dir: &Path) -> PathBuf {
    let marker = dir.join("planted-istioctl-ran");
    let script = dir.join("istioctl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\necho 'client version: 1.24.6'\n",
            marker.display()
        ),
    )
    .expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    marker
}

#[test]
fn an_istioctl_reached_only_through_a_relative_path_entry_is_not_run() {
    let fleet = Fleet::start();
    let kubeconfig = fleet.config();
    let (file, plan) = fleet.plan(&[], Some(&kubeconfig));
    let marker = planted_istioctl(fleet.work.path());
    let system: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|p| p.is_absolute())
        .collect();
    let system = std::env::join_paths(system).expect("PATH");

    // `:/usr/bin` style (an empty entry first), then `.` among absolute ones.
    for (label, entry) in [("an empty entry", ""), ("`.`", ".")] {
        let mut path = OsString::from(entry);
        path.push(":");
        path.push(&system);
        let staging_before = objects(&fleet.staging);

        let out = fleet.apply(&[], &[], &file, &plan, Some(&kubeconfig), &path);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{label}: {stderr}");
        let expected = format!(
            "istioctl is not on an absolute PATH entry (found only under {entry:?}, relative PATH entries, which apply never uses: they depend on the working directory): put istioctl 1.24.6 on PATH (download: https://github.com/istio/istio/releases/tag/1.24.6)"
        );
        assert!(stderr.contains(&expected), "{label}: {stderr}");
        assert!(!marker.exists(), "{label}: the planted istioctl ran");
        assert_eq!(objects(&fleet.staging), staging_before, "{label}");
        assert!(
            fleet
                .staging
                .get("deployments", "istio-system", "istiod-1-24-6")
                .is_none()
        );
    }
}

#[test]
fn undo_commands_after_a_failure_carry_the_kubeconfig_flag_and_the_context() {
    let fleet = Fleet::start_with(false);
    let flag_file = fleet.config();
    let flag = flag_file.to_str().expect("utf-8 path");
    let (file, plan) = fleet.plan(&["--kubeconfig", flag], None);
    fleet.prod.clear_requests();

    let out = fleet.apply(
        &["--kubeconfig", flag],
        &["--step-timeout", "3s"],
        &file,
        &plan,
        None,
        &fleet.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The proxies gate failed; the install and the label are undone by hand, on staging, through
    // the kubeconfig apply was given: never through the current context (prod).
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: step "))
        .unwrap_or_else(|| panic!("an error line\n{stderr}"));
    assert!(error.contains("; to undo the steps done: "), "{error}");
    let undo = error
        .split("; to undo the steps done: ")
        .nth(1)
        .unwrap_or_default();
    let commands: Vec<&str> = undo.split(" && ").collect();
    assert_eq!(commands.len(), 2, "{undo}");
    assert!(
        commands[0].starts_with(&format!(
            "kubectl --kubeconfig {flag} --context staging label namespace bookinfo --overwrite "
        )),
        "{undo}"
    );
    assert!(
        commands[1].starts_with("istioctl uninstall ")
            && commands[1].ends_with(&format!("--kubeconfig {flag} --context staging")),
        "{undo}"
    );
    assert!(fleet.prod.mutating_requests().is_empty());
}

#[test]
fn with_several_kubeconfig_files_the_tools_get_the_list_and_the_context() {
    let fleet = Fleet::start();
    // KUBECONFIG=prod.config:staging.config, prod's file first (its current context wins).
    let prod_file = fleet.work.path().join("prod.config");
    let staging_file = fleet.work.path().join("staging.config");
    write_kubeconfig(&prod_file, &[("prod", &fleet.prod)], "prod");
    write_kubeconfig(&staging_file, &[("staging", &fleet.staging)], "staging");
    let list = std::env::join_paths([&prod_file, &staging_file]).expect("list");
    let list = PathBuf::from(list);
    let (file, plan) = fleet.plan(&[], Some(&list));
    let prod_before = objects(&fleet.prod);
    fleet.prod.clear_requests();

    let out = fleet.apply(&["-v"], &[], &file, &plan, Some(&list), &fleet.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // No --kubeconfig (it takes one file): the context flag, and KUBECONFIG set to apply's list.
    let calls = fleet.tool_calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for call in &calls {
        assert!(call.ends_with(" --context staging"), "{call}");
        assert!(!call.contains("--kubeconfig"), "{call}");
    }
    assert!(
        stderr.contains(&format!(
            "running KUBECONFIG={} {} install ",
            list.display(),
            fleet.tools.path().join("istioctl").display()
        )),
        "{stderr}"
    );
    assert_upgraded(&fleet.staging);
    assert_eq!(objects(&fleet.prod), prod_before);
    assert!(fleet.prod.mutating_requests().is_empty());
}

#[test]
fn the_stand_in_istioctl_picks_its_cluster_as_the_real_one_does() {
    let fleet = Fleet::start();
    let istioctl = fleet.tools.path().join("istioctl");
    let has = |server: &FakeApiServer, name: &str| {
        server.get("deployments", "istio-system", name).is_some()
    };
    let run = |args: &[&str], kubeconfig_env: Option<&Path>| {
        let mut cmd = Command::new(&istioctl);
        cmd.args(args)
            .env("HOME", fleet.home.path())
            .env("PATH", fleet.path())
            .env_remove("KUBECONFIG");
        if let Some(k) = kubeconfig_env {
            cmd.env("KUBECONFIG", k);
        }
        let out = cmd.output().expect("stand-in runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    };
    // No flag, no KUBECONFIG: $HOME/.kube/config and its current context (here: staging).
    let kube_dir = fleet.home.path().join(".kube");
    std::fs::create_dir_all(&kube_dir).expect("mkdir");
    write_kubeconfig(
        &kube_dir.join("config"),
        &[("staging", &fleet.staging)],
        "staging",
    );
    run(&["uninstall", "--revision", "1-23", "-y"], None);
    assert!(!has(&fleet.staging, "istiod-1-23") && has(&fleet.prod, "istiod-1-23"));
    // KUBECONFIG (current context prod) wins over $HOME/.kube/config.
    let config = fleet.config();
    run(&["install", "--set", "revision=1-24-6"], Some(&config));
    assert!(has(&fleet.prod, "istiod-1-24-6") && !has(&fleet.staging, "istiod-1-24-6"));
    // --context wins over the current context; --kubeconfig over KUBECONFIG.
    let elsewhere = fleet.work.path().join("elsewhere");
    write_kubeconfig(&elsewhere, &[("prod", &fleet.prod)], "prod");
    let flag = config.to_str().expect("utf-8");
    run(
        &[
            "install",
            "--set",
            "revision=1-24-6",
            "--kubeconfig",
            flag,
            "--context",
            "staging",
        ],
        Some(&elsewhere),
    );
    assert!(has(&fleet.staging, "istiod-1-24-6"));
}
