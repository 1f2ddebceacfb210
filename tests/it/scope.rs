//! Plans that reach outside their scope (issue 16): the planner's plan from a live (fake) cluster,
//! edited as an attacker would and resealed (the integrity hash recomputed by `plan::to_json`), is
//! refused by `apply` and `apply --dry-run` before any change, in one line naming the step; the
//! cluster's objects are compared before and after and the fake API server saw no write. Also: plan
//! numbers never panic (proptest), the lock Lease is released when the work under it panics, and
//! `plan show` escapes control characters and marks what is outside the scope.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

use kubectl_meshup::apply::lock::{self, LOCK_NAME};
use kubectl_meshup::apply::timing;
use kubectl_meshup::plan::{
    self, Action, ObjectRef, PlanFileError, Reason, Step, Tool, UpgradePlan, WaitCondition,
};

use crate::support;
use crate::support::{
    FIXTURES, binary, gloo_mesh_server, gloo_mesh_tool_files, meshup_on, path_with, stand_in_tools,
    text, tool_calls,
};

/// A fake Gloo Mesh 0.10.6 management cluster with things a hostile plan would like to touch: a
/// Secret, CoreDNS and a ConfigMap in kube-system, CRDs.
struct Cluster {
    server: FakeApiServer,
    tools: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let server = gloo_mesh_server(FakeApiServer::builder().auto_rollout(true));
        server
            .seed_yaml(
                r#"
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 2
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec: {containers: [{name: coredns, image: registry.k8s.io/coredns/coredns:v1.8.4}]}
status: {replicas: 2, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2, observedGeneration: 1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data: {Corefile: ".:53 {}"}
---
apiVersion: v1
kind: Secret
metadata: {name: relay-root-tls, namespace: gloo-mesh}
type: Opaque
data: {ca.crt: Y2E=}
"#,
            )
            .expect("seed kube-system");
        let tools = stand_in_tools(&["helm", "meshctl", "istioctl"]);
        // The tools pick their cluster as the real ones do: from the --kubeconfig apply passes them.
        std::fs::copy(server.kubeconfig_path(), tools.path().join("kubeconfig"))
            .expect("kubeconfig");
        gloo_mesh_tool_files(tools.path());
        Self {
            server,
            tools,
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn meshup(&self, args: &[&str]) -> Command {
        let path = path_with(&[self.tools.path().to_path_buf()]);
        let kubeconfig = self.tools.path().join("kubeconfig");
        let mut cmd = meshup_on(&kubeconfig, args, &path, self.cache.path());
        cmd.env("NO_COLOR", "1").stdin(Stdio::null());
        cmd
    }

    /// The planner's plan for the live cluster.
    fn plan(&self) -> UpgradePlan {
        let file = self.tools.path().join("planned.yaml");
        let out = self
            .meshup(&["plan", "--to", "gloo-mesh=1.0.0", "--out"])
            .arg(&file)
            .output()
            .expect("plan runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        plan::load(&std::fs::read_to_string(&file).expect("read")).expect("load")
    }

    /// The plan resealed (a fresh integrity hash over the edited plan) and written to a file.
    fn write(&self, plan: &UpgradePlan, name: &str) -> PathBuf {
        let file = self.tools.path().join(name);
        std::fs::write(&file, plan::to_json(plan)).expect("write plan");
        file
    }

    fn apply(&self, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["apply", "--poll-interval", "100ms"];
        args.extend(extra);
        self.meshup(&args).arg(file).output().expect("apply runs")
    }

    /// Every object a plan could have touched, by resource, with its resourceVersion.
    fn objects(&self) -> BTreeMap<String, Value> {
        let mut all = BTreeMap::new();
        for resource in [
            "namespaces",
            "deployments",
            "configmaps",
            "secrets",
            "leases",
            "customresourcedefinitions",
            "meshes.discovery.mesh.gloo.solo.io",
            "traffictargets.discovery.mesh.gloo.solo.io",
            "workloads.discovery.mesh.gloo.solo.io",
        ] {
            all.insert(resource.to_string(), json!(self.server.list(resource, "")));
        }
        all
    }
}

fn one_line(out: &Output) -> String {
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_string()
}

fn hostile_step(action: Action) -> Step {
    Step {
        id: "mgmt-00-hostile".into(),
        cluster: String::new(),
        title: "Looks harmless".into(),
        reason: Reason {
            runbook: "gloo-mesh-pre-1.0".into(),
            step: Some("step 1 of 10".into()),
            text: "trust me".into(),
            source: "shared/seeds/gloo-mesh-upgrading.md".into(),
        },
        action,
        irreversible: false,
        undo: None,
    }
}

/// The hostile edits of issue 16, each as a first step slipped into the planner's plan.
fn hostile_actions() -> Vec<(&'static str, Action, &'static str)> {
    let delete = |group: &str, resource: &str, namespace: Option<&str>| Action::DeleteCollection {
        group: group.into(),
        version: "v1".into(),
        resource: resource.into(),
        namespace: namespace.map(String::from),
    };
    let helm = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "upgrade",
            "gloo-mesh",
            "gloo-mesh",
            "--repo",
            "https://storage.googleapis.com/gloo-mesh/gloo-mesh",
            "--version",
            "1.0.0",
            "--namespace",
            "gloo-mesh",
            "--reuse-values",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        Action::Run {
            tool: Tool::Helm,
            args,
            timeout_seconds: 600,
            config: None,
        }
    };
    vec![
        (
            "Secrets in every namespace",
            delete("", "secrets", None),
            "deletes all secrets (core API): only the Gloo Mesh discovery group",
        ),
        (
            "all CRDs",
            delete("apiextensions.k8s.io", "customresourcedefinitions", None),
            "deletes all customresourcedefinitions.apiextensions.k8s.io",
        ),
        (
            "kube-system's ConfigMaps",
            delete("", "configmaps", Some("kube-system")),
            "never core resources, Secrets or CRDs",
        ),
        (
            "CoreDNS scaled to 0",
            Action::Scale {
                target: ObjectRef {
                    kind: "Deployment".into(),
                    namespace: "kube-system".into(),
                    name: "coredns".into(),
                },
                replicas_before: None,
                replicas: 0,
            },
            "scales Deployment kube-system/coredns, which is not a Gloo Mesh management workload",
        ),
        (
            "kube-system labelled privileged",
            Action::LabelNamespace {
                namespace: "kube-system".into(),
                labels: BTreeMap::from([(
                    "pod-security.kubernetes.io/enforce".to_string(),
                    Some("privileged".to_string()),
                )]),
            },
            "labelling a namespace is part of the Istio upgrade, but the plan does not target istio",
        ),
        (
            "helm with a post-renderer",
            helm(&["--post-renderer", "/tmp/evil"]),
            "helm flag --post-renderer is not one the runbooks use",
        ),
        (
            "helm with another kubeconfig",
            helm(&["--kubeconfig", "/tmp/other"]),
            "helm flag --kubeconfig is not one the runbooks use",
        ),
        (
            "CRDs from a plain-http repository",
            Action::ApplyCrds {
                chart: "gloo-mesh".into(),
                repo: "http://charts.example.com/gloo-mesh".into(),
                version: "1.0.0".into(),
            },
            "applies the CRDs of chart gloo-mesh from http://charts.example.com/gloo-mesh",
        ),
    ]
}

#[test]
fn resealed_hostile_plans_are_refused_before_any_change() {
    let cluster = Cluster::start();
    let planned = cluster.plan();
    assert!(planned.steps.len() > 10, "{} steps", planned.steps.len());

    // The planner's own plan passes the scope check against the live cluster.
    let file = cluster.write(&planned, "plan.json");
    let out = cluster.apply(&file, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let before = cluster.objects();
    for (what, action, expected) in hostile_actions() {
        let mut hostile = planned.clone();
        let mut step = hostile_step(action);
        step.cluster = hostile.clusters[0].clone();
        hostile.steps.insert(0, step);
        let file = cluster.write(&hostile, "hostile.json");
        // The resealed file loads: the integrity hash does not stop it.
        plan::load(&std::fs::read_to_string(&file).expect("read")).expect("resealed plan loads");
        for mode in [&["--yes"][..], &["--dry-run"], &["--yes", "--dry-run"]] {
            cluster.server.clear_requests();
            let out = cluster.apply(&file, mode);
            let line = one_line(&out);
            eprintln!("{what} {mode:?}: exit {:?}: {line}", out.status.code());
            assert_eq!(out.status.code(), Some(1), "{what} {mode:?}: {line}");
            assert!(
                line.starts_with(
                    "error: the plan reaches outside its scope at step mgmt-00-hostile: "
                ),
                "{what}: {line}"
            );
            assert!(line.contains(expected), "{what}: {line}");
            assert!(
                cluster.server.mutating_requests().is_empty(),
                "{what} {mode:?}: {:?}",
                cluster.server.mutating_requests()
            );
        }
        assert_eq!(cluster.objects(), before, "{what}: the cluster changed");
        assert!(
            cluster
                .server
                .get("leases", "gloo-mesh", LOCK_NAME)
                .is_none()
        );
    }
    assert_eq!(tool_calls(cluster.tools.path()), Vec::<String>::new());
}

/// The Istio 1.23 canary cluster (Bookinfo enrolled with istio.io/rev=1-23) beside kube-system.
fn istio_cluster() -> Cluster {
    let server = FakeApiServer::builder()
        .server_version("v1.29.6-eks-db838b0")
        .auto_rollout(true)
        .start();
    server
        .seed_path(Path::new(FIXTURES).join("istio/cluster.yaml"))
        .expect("seed");
    support::seed_bookinfo_pods(&server, "1-23");
    server
        .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}))
        .expect("kube-system");
    let tools = stand_in_tools(&["helm", "meshctl", "istioctl"]);
    std::fs::copy(server.kubeconfig_path(), tools.path().join("kubeconfig")).expect("kubeconfig");
    std::fs::write(tools.path().join("istioctl.version"), "1.24.6").expect("version");
    Cluster {
        server,
        tools,
        cache: tempfile::tempdir().expect("tempdir"),
    }
}

#[test]
fn resealed_hostile_edits_of_an_istio_plan_are_refused_before_any_change() {
    let cluster = istio_cluster();
    let file = cluster.tools.path().join("planned.yaml");
    let out = cluster
        .meshup(&["plan", "--to", "istio=1.24.6", "--out"])
        .arg(&file)
        .output()
        .expect("plan runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let planned = plan::load(&std::fs::read_to_string(&file).expect("read")).expect("load");
    let label = planned
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::LabelNamespace { .. }))
        .expect("the canary relabels bookinfo");
    let install = planned
        .steps
        .iter()
        .position(|s| matches!(&s.action, Action::Run { tool: Tool::Istioctl, args, .. } if args[0] == "install"))
        .expect("the canary installs a revision");
    let privileged = || {
        BTreeMap::from([(
            "pod-security.kubernetes.io/enforce".to_string(),
            Some("privileged".to_string()),
        )])
    };
    type Edit = (&'static str, usize, Box<dyn Fn(&mut Action)>, &'static str);
    let edits: Vec<Edit> = vec![
        (
            "kube-system labelled privileged",
            label,
            Box::new(move |a| {
                *a = Action::LabelNamespace {
                    namespace: "kube-system".into(),
                    labels: privileged(),
                }
            }),
            "labels namespace kube-system, which is not enrolled in the mesh (bookinfo)",
        ),
        (
            "bookinfo labelled privileged",
            label,
            Box::new(move |a| {
                if let Action::LabelNamespace { labels, .. } = a {
                    labels.extend(privileged());
                }
            }),
            "sets the label pod-security.kubernetes.io/enforce; a plan only sets istio-injection, istio.io/rev, istio.io/dataplane-mode",
        ),
        (
            "istioctl install from a file",
            install,
            Box::new(|a| {
                if let Action::Run { args, .. } = a {
                    args.extend(["-f".to_string(), "/tmp/evil.yaml".to_string()]);
                }
            }),
            "istioctl flag -f is not one the runbooks use",
        ),
        (
            "istioctl install from another registry",
            install,
            Box::new(|a| {
                if let Action::Run { args, .. } = a {
                    args.extend([
                        "--set".to_string(),
                        "hub=evil.example.com/istio".to_string(),
                    ]);
                }
            }),
            "sets the image hub evil.example.com/istio, but the installed istiod comes from docker.io/istio",
        ),
    ];
    let before = cluster.objects();
    for (what, at, edit, expected) in edits {
        let mut hostile = planned.clone();
        edit(&mut hostile.steps[at].action);
        let file = cluster.write(&hostile, "hostile.json");
        for mode in [&["--yes"][..], &["--dry-run"]] {
            cluster.server.clear_requests();
            let out = cluster.apply(&file, mode);
            let line = one_line(&out);
            eprintln!("{what} {mode:?}: exit {:?}: {line}", out.status.code());
            assert_eq!(out.status.code(), Some(1), "{what}: {line}");
            assert!(
                line.contains(&format!(
                    "the plan reaches outside its scope at step {}: {expected}",
                    hostile.steps[at].id
                )),
                "{what}: {line}"
            );
            assert!(cluster.server.mutating_requests().is_empty(), "{what}");
        }
        assert_eq!(cluster.objects(), before, "{what}");
    }
    assert_eq!(tool_calls(cluster.tools.path()), Vec::<String>::new());
}

#[test]
fn a_timeout_near_u64_max_is_refused_on_load_naming_the_field() {
    let cluster = Cluster::start();
    let mut planned = cluster.plan();
    let at = planned
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::Wait { .. }))
        .expect("a wait step");
    if let Action::Wait {
        timeout_seconds, ..
    } = &mut planned.steps[at].action
    {
        *timeout_seconds = u64::MAX - 1;
    }
    let file = cluster.write(&planned, "plan.json");
    let before = cluster.objects();
    cluster.server.clear_requests();
    let out = cluster.apply(&file, &["--yes"]);
    let line = one_line(&out);
    eprintln!("exit {:?}: {line}", out.status.code());
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(
        line.contains(&format!(
            "steps[{at}].action.timeoutSeconds (step {}) is 18446744073709551614, above the limit of 604800 seconds (7 days)",
            planned.steps[at].id
        )),
        "{line}"
    );
    assert!(cluster.server.mutating_requests().is_empty());
    assert_eq!(cluster.objects(), before);
    assert!(
        cluster
            .server
            .get("leases", "gloo-mesh", LOCK_NAME)
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_released_when_the_work_under_it_panics() {
    let server = FakeApiServer::builder().start();
    server
        .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gloo-mesh"}}))
        .expect("namespace");
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).expect("kc");
    let options = kube::config::KubeConfigOptions {
        context: Some(server.context().to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let guard = lock::acquire(
        client,
        "mgmt",
        "gloo-mesh",
        "test-holder",
        Duration::from_secs(60),
        false,
    )
    .await
    .expect("lock");
    assert!(server.get("leases", "gloo-mesh", LOCK_NAME).is_some());
    let work = tokio::spawn(lock::while_held(vec![guard], async {
        panic!("a bug in a step");
    }));
    let err = work.await.expect_err("the panic goes on");
    assert!(err.is_panic());
    assert!(
        server.get("leases", "gloo-mesh", LOCK_NAME).is_none(),
        "the lease was left behind"
    );
}

/// A plan whose text tries to drive the reviewer's terminal, and one step outside its scope.
fn crafted_plan() -> UpgradePlan {
    let mut p = support_gloo_plan();
    p.steps[0].title = "Harmless\x1b[2K\x1b[1A\rstep".into();
    p.steps[0].reason.text = "copy \x1b]52;c;ZXZpbA==\x07 and \x1b[8mhidden\x1b[0m".into();
    p.steps[0].reason.source = "see \u{202e}txt.exe".into();
    let at = p
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::Run { .. }))
        .expect("a run step");
    if let Action::Run { args, .. } = &mut p.steps[at].action {
        args.extend([
            "--post-renderer".to_string(),
            "/tmp/evil\x1b[8m".to_string(),
        ]);
    }
    p
}

/// The planner's Gloo Mesh 0.12 → 1.1 plan from the plan fixtures (no cluster needed).
fn support_gloo_plan() -> UpgradePlan {
    let snapshot = serde_saphyr::from_str(include_str!(
        "../fixtures/plan/gloo-mesh-0.12-two-clusters.yaml"
    ))
    .expect("fixture");
    let request = plan::PlanRequest {
        targets: vec!["gloo-mesh=1.1".parse().expect("target")],
        tool_version: "0.1.0".into(),
        ..Default::default()
    };
    plan::plan(
        &snapshot,
        &kubectl_meshup::compat::CompatData::embedded(),
        &request,
    )
    .expect("plan")
}

#[test]
fn plan_show_escapes_control_characters_and_marks_steps_outside_the_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plan.json");
    let crafted = crafted_plan();
    std::fs::write(&file, plan::to_json(&crafted)).expect("write");
    for format in ["table", "markdown"] {
        let out = Command::new(binary())
            .args(["plan", "show", "-o", format])
            .arg(&file)
            .env("NO_COLOR", "1")
            .output()
            .expect("runs");
        let stdout = text(&out.stdout);
        eprintln!("{stdout}");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            !stdout.bytes().any(|b| b < 0x20 && b != b'\n'),
            "{format}: a raw control character reached the output"
        );
        assert!(!stdout.contains('\u{202e}'), "{format}");
        assert!(
            stdout.contains(r"Harmless\u{1b}[2K\u{1b}[1A\rstep"),
            "{format}"
        );
        assert!(
            stdout.contains(r"copy \u{1b}]52;c;ZXZpbA==\u{7} and \u{1b}[8mhidden\u{1b}[0m"),
            "{format}"
        );
        assert!(stdout.contains("OUTSIDE SCOPE"), "{format}");
        assert!(
            stdout.contains(
                "Outside the plan's scope (apply refuses this plan; `kubectl meshup plan` never writes these):"
            ),
            "{format}"
        );
        assert!(
            stdout.contains("helm flag --post-renderer is not one the runbooks use"),
            "{format}"
        );
    }
    // As documents too: JSON and YAML escape control characters themselves.
    for format in ["json", "yaml"] {
        let out = Command::new(binary())
            .args(["plan", "show", "-o", format])
            .arg(&file)
            .output()
            .expect("runs");
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            !stdout.bytes().any(|b| b < 0x20 && b != b'\n'),
            "{format}: a raw control character reached the output:\n{stdout}"
        );
        assert!(!stdout.contains('\u{202e}'), "{format}");
        let reread = plan::load(&stdout).expect("the shown document is the plan");
        assert_eq!(reread.steps[0].title, crafted.steps[0].title, "{format}");
    }
    // The planner's own plan shows no such block.
    std::fs::write(&file, plan::to_json(&support_gloo_plan())).expect("write");
    let out = Command::new(binary())
        .args(["plan", "show"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("OUTSIDE SCOPE"));
}

mod numbers {
    use super::*;
    use proptest::prelude::*;

    fn sealed_with(timeout: u64, replicas: u32, at: usize) -> String {
        let mut p = support_gloo_plan();
        let n = p.steps.len();
        for (i, step) in p.steps.iter_mut().enumerate() {
            match &mut step.action {
                Action::Wait {
                    timeout_seconds, ..
                }
                | Action::Run {
                    timeout_seconds, ..
                } if i % n == at % n || i == 0 => *timeout_seconds = timeout,
                Action::Scale { replicas: r, .. } => *r = replicas,
                _ => {}
            }
        }
        plan::to_json(&p)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any timeout or replica count loads or is refused naming the field; a loaded plan's
        /// numbers go through apply's timeout arithmetic without a panic.
        #[test]
        fn plan_numbers_never_panic(
            timeout in prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(604_800u64), Just(604_801u64), any::<u64>(), 0u64..1_000_000],
            replicas in any::<u32>(),
            at in 0usize..64,
            poll_ms in any::<u64>(),
            polls in any::<u32>(),
            step_override in proptest::option::of(any::<u64>()),
        ) {
            match plan::load(&sealed_with(timeout, replicas, at)) {
                Ok(loaded) => {
                    prop_assert!(timeout <= plan::MAX_TIMEOUT_SECONDS);
                    prop_assert!(u64::from(replicas) <= plan::MAX_REPLICAS);
                    let now = tokio::time::Instant::now();
                    for step in &loaded.steps {
                        let planned = match &step.action {
                            Action::Wait { timeout_seconds, .. } | Action::Run { timeout_seconds, .. } => Some(*timeout_seconds),
                            _ => None,
                        };
                        let t = timing::step_timeout(step_override.map(Duration::from_secs), planned, Duration::from_secs(600));
                        prop_assert!(timing::deadline(now, t) >= now);
                        let g = timing::grace(Duration::from_millis(poll_ms), polls, t);
                        prop_assert!(g <= t);
                    }
                }
                Err(PlanFileError::Limit { field, limit, .. }) => {
                    prop_assert!(timeout > plan::MAX_TIMEOUT_SECONDS || u64::from(replicas) > plan::MAX_REPLICAS);
                    prop_assert!(field.ends_with(")") && (field.contains("timeoutSeconds") || field.contains("replicas")), "{}", field);
                    prop_assert!(limit.contains("seconds") || limit.contains("replicas"));
                }
                Err(other) => prop_assert!(false, "unexpected refusal: {}", other),
            }
        }
    }

    #[test]
    fn a_wait_condition_keeps_its_bound_on_undo_too() {
        let mut p = support_gloo_plan();
        p.steps[0].undo = Some(Action::Wait {
            condition: WaitCondition::ResourcesPresent {
                group: "discovery.mesh.gloo.solo.io".into(),
                version: None,
                resources: vec!["meshes".into()],
            },
            timeout_seconds: u64::MAX,
        });
        let err = plan::load(&plan::to_json(&p)).expect_err("refused");
        assert!(
            err.to_string()
                .contains("steps[0].undo.timeoutSeconds (step"),
            "{err}"
        );
    }
}

/// The real binary on a real terminal (tmux): prompts, typed confirmation, Ctrl-C, the cursor.
mod terminal {
    use super::*;
    use std::time::Instant;

    /// A tmux server of its own (its own socket) running one command in a 200x50 pane; killed on
    /// drop.
    struct Tmux {
        socket: String,
    }

    impl Tmux {
        fn start(cluster: &Cluster, args: &[&str]) -> Self {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let socket = format!("meshup-test-{}-{n}", std::process::id());
            let system = std::env::var("PATH").unwrap_or_default();
            let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
            let command = format!(
                "env NO_COLOR=1 PATH='{}:{system}' KUBECACHEDIR='{}' '{}' --kubeconfig '{}' {}; echo EXIT=$?; sleep 60",
                cluster.tools.path().display(),
                cluster.cache.path().display(),
                binary().display(),
                cluster.tools.path().join("kubeconfig").display(),
                quoted.join(" ")
            );
            let status = Command::new("tmux")
                .args([
                    "-L",
                    &socket,
                    "-f",
                    "/dev/null",
                    "new-session",
                    "-d",
                    "-x",
                    "200",
                    "-y",
                    "50",
                ])
                .arg(command)
                .status()
                .expect("tmux runs (the terminal tests need it: apt-get install -y tmux)");
            assert!(status.success());
            Self { socket }
        }

        fn tmux(&self, args: &[&str]) -> String {
            let out = Command::new("tmux")
                .args(["-L", &self.socket])
                .args(args)
                .output()
                .expect("tmux runs");
            text(&out.stdout)
        }

        fn screen(&self) -> String {
            self.tmux(&["capture-pane", "-p", "-J", "-S", "-200"])
        }

        /// Waits until the screen shows `what`; the screen then.
        fn wait_for(&self, what: &str) -> String {
            let start = Instant::now();
            loop {
                let screen = self.screen();
                if screen.contains(what) {
                    return screen;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "`{what}` never appeared:\n{screen}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        fn keys(&self, keys: &[&str]) {
            let mut args = vec!["send-keys"];
            args.extend(keys);
            self.tmux(&args);
        }

        /// The exit code the command ended with.
        fn exit(&self) -> i32 {
            let screen = self.wait_for("EXIT=");
            screen
                .lines()
                .find_map(|l| l.split("EXIT=").nth(1))
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or_else(|| panic!("no exit code:\n{screen}"))
        }

        fn cursor_visible(&self) -> bool {
            self.tmux(&["display-message", "-p", "#{cursor_flag}"])
                .trim()
                == "1"
        }
    }

    impl Drop for Tmux {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.socket, "kill-server"])
                .status();
        }
    }

    fn planned_file(cluster: &Cluster) -> (PathBuf, UpgradePlan) {
        let planned = cluster.plan();
        (cluster.write(&planned, "plan.json"), planned)
    }

    fn replicas(cluster: &Cluster, name: &str) -> Option<i64> {
        cluster.server.get("deployments", "gloo-mesh", name)?["spec"]["replicas"].as_i64()
    }

    #[test]
    fn no_color_on_a_terminal_still_prompts_and_a_bare_enter_declines_an_irreversible_step() {
        let cluster = Cluster::start();
        let (file, planned) = planned_file(&cluster);
        let first_delete = planned
            .steps
            .iter()
            .position(|s| s.irreversible)
            .expect("the pre-1.0 runbook deletes discovery resources");
        let traffic_targets = cluster
            .server
            .list("traffictargets.discovery.mesh.gloo.solo.io", "")
            .len();
        assert!(traffic_targets > 0);
        let tmux = Tmux::start(
            &cluster,
            &[
                "apply",
                "--poll-interval",
                "100ms",
                &file.display().to_string(),
            ],
        );
        // NO_COLOR=1 is set on this terminal: apply asks instead of refusing.
        let total = planned.steps.len();
        for (i, step) in planned.steps.iter().enumerate().take(first_delete) {
            if matches!(step.action, Action::Gate { .. } | Action::Wait { .. }) {
                continue;
            }
            tmux.wait_for(&format!("[{}/{total}] run this step?", i + 1));
            tmux.keys(&["Enter"]); // a reversible step: Enter takes the default, yes
        }
        let question = format!(
            "[{}/{total}] run this step? type yes to run it, abort to stop and offer the undo (Enter declines)",
            first_delete + 1
        );
        let screen = tmux.wait_for(&question);
        assert!(
            screen.contains("irreversible: this step cannot be rolled back"),
            "{screen}"
        );
        tmux.keys(&["Enter"]);
        let exit = tmux.exit();
        let screen = tmux.screen();
        eprintln!("{screen}");
        assert_eq!(exit, 4, "{screen}");
        assert!(
            screen.contains(&format!(
                "error: declined at step {}; nothing more was changed",
                planned.steps[first_delete].id
            )),
            "{screen}"
        );
        // The scale-downs before it ran; the irreversible delete did not.
        assert_eq!(replicas(&cluster, "discovery"), Some(0));
        assert_eq!(
            cluster
                .server
                .list("traffictargets.discovery.mesh.gloo.solo.io", "")
                .len(),
            traffic_targets
        );
        assert!(tmux.cursor_visible());
    }

    #[test]
    fn typing_yes_runs_an_irreversible_step() {
        let cluster = Cluster::start();
        let (file, planned) = planned_file(&cluster);
        let first_delete = planned
            .steps
            .iter()
            .position(|s| s.irreversible)
            .expect("delete");
        let tmux = Tmux::start(
            &cluster,
            &[
                "apply",
                "--poll-interval",
                "100ms",
                &file.display().to_string(),
            ],
        );
        let total = planned.steps.len();
        for (i, step) in planned.steps.iter().enumerate().take(first_delete) {
            if matches!(step.action, Action::Gate { .. } | Action::Wait { .. }) {
                continue;
            }
            tmux.wait_for(&format!("[{}/{total}] run this step?", i + 1));
            tmux.keys(&["Enter"]);
        }
        tmux.wait_for("type yes to run it");
        tmux.keys(&["yes", "Enter"]);
        // The next irreversible step is asked the same way; stop there with Ctrl-C.
        tmux.wait_for(&format!(
            "[{}/{total}] run this step? type yes",
            first_delete + 2
        ));
        tmux.keys(&["C-c"]);
        let exit = tmux.exit();
        let screen = tmux.screen();
        eprintln!("{screen}");
        assert_eq!(exit, 130, "{screen}");
        let Action::DeleteCollection { resource, .. } = &planned.steps[first_delete].action else {
            panic!("not a delete");
        };
        assert_eq!(
            cluster
                .server
                .list(&format!("{resource}.discovery.mesh.gloo.solo.io"), "")
                .len(),
            0,
            "the typed yes ran the delete"
        );
        // Ctrl-C names the step asked about, and no line ends the step before it as interrupted.
        let asked = &planned.steps[first_delete + 1].id;
        assert!(
            screen.contains(&format!("error: interrupted at step {asked};")),
            "{screen}"
        );
        assert!(!screen.contains("... interrupted"), "{screen}");
        assert!(tmux.cursor_visible());
    }

    #[test]
    fn ctrl_c_at_apply_to_confirmation_restores_the_cursor_and_exits_130() {
        let cluster = Cluster::start();
        // With its manual step confirmed ahead, `apply --to` asks once for the whole plan.
        let manual = cluster
            .plan()
            .steps
            .iter()
            .find(|s| matches!(s.action, Action::Manual { .. }))
            .map(|s| s.id.clone())
            .expect("the pre-1.0 runbook has a manual review step");
        let tmux = Tmux::start(
            &cluster,
            &[
                "apply",
                "--to",
                "gloo-mesh=1.0.0",
                "--confirm-manual",
                &manual,
            ],
        );
        tmux.wait_for("steps to fake-apiserver?");
        tmux.keys(&["C-c"]);
        let exit = tmux.exit();
        let screen = tmux.screen();
        eprintln!("{screen}");
        assert_eq!(exit, 130, "{screen}");
        assert!(
            screen.contains("nothing was changed\nerror: interrupted\n"),
            "{screen}"
        );
        assert!(tmux.cursor_visible(), "the cursor was left hidden");
        assert!(
            cluster
                .server
                .get("leases", "gloo-mesh", LOCK_NAME)
                .is_none()
        );
        assert_eq!(replicas(&cluster, "discovery"), Some(1));
    }
}
