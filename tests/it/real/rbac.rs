//! The least-privilege ClusterRoles of deploy/rbac, proven by the real RBAC authorizer: a
//! ServiceAccount (token from the TokenRequest API) bound to them can run `check` and `apply`, and
//! without any one of their rules it cannot (check reports what it could not read; apply's preflight
//! names the missing permission and changes nothing).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use kubectl_meshup::apply::permissions::{Permission, required};
use kubectl_meshup::compat::CompatData;
use kubectl_meshup::plan::{
    Action, ObjectRef, PlanRequest, Reason, ReplicasBefore, Step, Strategy, UpgradePlan,
};
use kubectl_meshup::snapshot::ClusterSnapshot;

use crate::real::gloo::{self, GlooMesh, NAMESPACE};
use crate::real::harness::{CONTEXT, RealCluster, text};

const SA_NAMESPACE: &str = "meshup";
const SA: &str = "runner";

fn role(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/rbac")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read role");
    serde_saphyr::from_str(&text).expect("role parses")
}

/// One grant of a role: its groups, one of its resources, its verbs.
#[derive(Debug, Clone)]
struct Atom {
    groups: Vec<String>,
    resource: String,
    verbs: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn atoms(role: &Value) -> Vec<Atom> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        for resource in strings(&rule["resources"]) {
            out.push(Atom {
                groups: strings(&rule["apiGroups"]),
                resource,
                verbs: strings(&rule["verbs"]),
            });
        }
    }
    out
}

/// The role with its rules rebuilt from `atoms`.
fn role_of(role: &Value, atoms: &[Atom]) -> Value {
    let mut role = role.clone();
    role["rules"] = atoms
        .iter()
        .map(|a| json!({"apiGroups": a.groups, "resources": [a.resource], "verbs": a.verbs}))
        .collect();
    role
}

/// Whether `atom` grants permission `p`.
fn grants(atom: &Atom, p: &Permission) -> bool {
    let resource = if p.subresource.is_empty() {
        p.resource.clone()
    } else {
        format!("{}/{}", p.resource, p.subresource)
    };
    atom.groups.contains(&p.group)
        && (atom.resource == resource || (atom.resource == "*" && p.subresource.is_empty()))
        && atom.verbs.contains(&p.verb)
}

/// Binds the SA to `roles` (ClusterRoleBindings `meshup-test-ROLE`) and returns its kubeconfig.
fn bind(cluster: &RealCluster, roles: &[&str]) -> std::path::PathBuf {
    let kubeconfig = cluster.service_account_kubeconfig(SA_NAMESPACE, SA);
    for r in roles {
        cluster.apply_yaml(
            &json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": format!("meshup-test-{r}")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": r},
                "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": SA_NAMESPACE}]
            })
            .to_string(),
        );
    }
    kubeconfig
}

/// `snapshot -o json` as `kubeconfig`: the unread entries' `what`.
fn unread(cluster: &RealCluster, kubeconfig: &Path) -> Vec<String> {
    let out = cluster.meshup_as(kubeconfig, &["snapshot", "-o", "json"]);
    assert!(out.status.success(), "snapshot: {}", text(&out.stderr));
    let snapshot: Value = serde_json::from_slice(&out.stdout).expect("snapshot");
    snapshot["clusters"][0]["unread"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["what"].as_str().map(String::from))
        .collect()
}

/// Applies `role` and waits until the authorizer has it: `probe` (a `kubectl auth can-i` argument
/// list) answers `allowed`.
fn set_role(cluster: &mut RealCluster, role: &Value, probe: &[&str], allowed: bool) {
    // Replace, not merge: a rule removed from the list must go.
    let out = cluster.kubectl(&[
        "delete",
        "clusterrole",
        role["metadata"]["name"].as_str().unwrap_or(""),
        "--ignore-not-found",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    cluster.apply_yaml(&role.to_string());
    let who = format!("--as=system:serviceaccount:{SA_NAMESPACE}:{SA}");
    let what = format!("`kubectl auth can-i {}` to say {allowed}", probe.join(" "));
    cluster.wait_until(&what, Duration::from_secs(30), |c| {
        let mut args = vec!["auth", "can-i", who.as_str()];
        args.extend_from_slice(probe);
        let out = c.kubectl(&args);
        text(&out.stdout).trim() == if allowed { "yes" } else { "no" }
    });
}

fn can_i_args(atom: &Atom) -> Vec<String> {
    let group = atom.groups[0].as_str();
    let resource = if atom.resource == "*" {
        "meshes"
    } else {
        atom.resource.as_str()
    };
    let (resource, sub) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (resource, None),
    };
    // The last verb: the first (`list`, `get`) may be granted by meshup-check too.
    let mut args = vec![
        atom.verbs.last().cloned().unwrap_or_default(),
        if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        },
        "-A".to_string(),
    ];
    if let Some(s) = sub {
        args.push(format!("--subresource={s}"));
    }
    args
}

/// The Gloo Mesh CRDs (so check reads their groups) and a registered-cluster CRD.
fn install_gloo_crds(cluster: &RealCluster) {
    let fixture = Path::new(crate::support::FIXTURES)
        .parent()
        .expect("fixtures")
        .join("cluster/gloo-mesh-0-9.yaml");
    let text = std::fs::read_to_string(fixture).expect("fixture");
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).expect("fixture parses");
    let crds: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    cluster.apply_yaml(&json!({"apiVersion": "v1", "kind": "List", "items": crds}).to_string());
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ]);
}

/// Istio as check meets it on a real mesh: istiod installed by the real istioctl 1.31 (check then
/// gets its mesh ConfigMap and asks for its installed-state IstioOperator) and a gateway by the real
/// helm (check then lists the Helm release records in its namespace). The injector plays istiod's
/// webhook, so the gateway's pods are created.
fn install_istio(cluster: &RealCluster) -> crate::real::injector::Injector {
    let injector = crate::real::injector::Injector::start(cluster.kubeconfig());
    let home = tempfile::tempdir().expect("helm home");
    let run = |program: std::path::PathBuf, args: &[&str]| {
        let out = std::process::Command::new(&program)
            .args(args)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
    };
    run(
        crate::real::harness::bin("istioctl-1.31"),
        &["install", "-y", "--set", "profile=minimal"],
    );
    let gateway = crate::real::harness::charts("istio-1.31.0").join("gateway-1.31.0.tgz");
    run(
        crate::real::harness::bin("helm"),
        &[
            "install",
            "istio-ingress",
            gateway.to_str().expect("utf-8"),
            "-n",
            "istio-ingress",
            "--create-namespace",
            "--set",
            "service.type=ClusterIP",
        ],
    );
    cluster.kubectl_ok(&[
        "rollout",
        "status",
        "-n",
        "istio-ingress",
        "deployment/istio-ingress",
        "--timeout=120s",
    ]);
    injector
}

/// `check` as a ServiceAccount bound to meshup-check reads everything (Gloo Mesh's API, Istio
/// installed by istioctl and helm); without any one of the role's grants it reports what it could
/// not read.
#[test]
fn check_role_is_enough_and_every_rule_is_needed() {
    let mut cluster = RealCluster::start();
    install_gloo_crds(&cluster);
    let _injector = install_istio(&cluster);
    let full = role("meshup-check.yaml");
    let all = atoms(&full);
    cluster.apply_yaml(&full.to_string());
    let kubeconfig = bind(&cluster, &["meshup-check"]);

    // Enough: nothing unread, and check passes.
    assert_eq!(unread(&cluster, &kubeconfig), Vec::<String>::new());
    let out = cluster.meshup_as(&kubeconfig, &["check", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "check: {}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert!(
        report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|f| f["rule"] != "snapshot.unread"),
        "{report:#}"
    );

    // Needed: each grant removed in turn leaves something unread.
    for (i, atom) in all.iter().enumerate() {
        let rest: Vec<Atom> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .collect();
        let probe = can_i_args(atom);
        let probe: Vec<&str> = probe.iter().map(String::as_str).collect();
        set_role(&mut cluster, &role_of(&full, &rest), &probe, false);
        let missing = unread(&cluster, &kubeconfig);
        assert!(
            !missing.is_empty(),
            "without {atom:?} check still read everything"
        );
        eprintln!(
            "without {} {:?}: unread {missing:?}",
            atom.resource, atom.groups
        );
        let out = cluster.meshup_as(&kubeconfig, &["check", "-o", "json"]);
        let report: Value = serde_json::from_slice(&out.stdout).expect("report");
        assert!(
            report["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["rule"] == "snapshot.unread"),
            "without {atom:?}: {report:#}"
        );
    }
}

/// The permissions the preflight's one line names.
fn named_missing(stderr: &str) -> BTreeSet<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains("missing permissions, nothing was changed: "))
        .unwrap_or_default();
    let list = line
        .split_once("nothing was changed: ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let list = list
        .split("; ask a cluster admin")
        .next()
        .unwrap_or_default();
    list.split("; ").map(String::from).collect()
}

fn extra_step(id: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        cluster: CONTEXT.into(),
        title: id.into(),
        reason: Reason {
            runbook: "rbac-test".into(),
            step: None,
            text: "every action kind, for the preflight".into(),
            source: "tests/it/real/rbac.rs".into(),
        },
        action,
        irreversible: false,
        undo: None,
    }
}

/// The Gloo Mesh runbook plus the step the planner writes that the hand-built runbook lacks: a
/// scale-down that records the replicas before it (the `meshup.dev/replicas-before` annotation, a
/// patch of the Deployment itself). Every step is inside the plan's scope, so apply reaches its
/// preflight. Only ever refused at the preflight here.
fn wide_plan(plan: &UpgradePlan) -> UpgradePlan {
    let mut plan = plan.clone();
    plan.steps.push(extra_step(
        "x-scale-down-discovery-recorded",
        Action::Scale {
            target: ObjectRef {
                kind: "Deployment".into(),
                namespace: NAMESPACE.into(),
                name: "discovery".into(),
            },
            replicas: 0,
            replicas_before: Some(ReplicasBefore::Record),
        },
    ));
    plan.integrity = None;
    plan
}

/// The old wide plan's extra steps (scale a StatefulSet, restart a Deployment, StatefulSet and
/// DaemonSet, label a namespace): outside the scope of any plan for this Gloo Mesh-only cluster.
fn out_of_scope_steps() -> Vec<Step> {
    vec![
        extra_step(
            "x-scale-statefulset",
            Action::Scale {
                target: ObjectRef {
                    kind: "StatefulSet".into(),
                    namespace: NAMESPACE.into(),
                    name: "ledger".into(),
                },
                replicas: 1,
                replicas_before: None,
            },
        ),
        extra_step(
            "x-restart",
            Action::RestartWorkloads {
                namespace: NAMESPACE.into(),
                workloads: vec![
                    "Deployment/discovery".into(),
                    "StatefulSet/ledger".into(),
                    "DaemonSet/agent".into(),
                ],
            },
        ),
        extra_step(
            "x-label",
            Action::LabelNamespace {
                namespace: NAMESPACE.into(),
                labels: [("istio.io/rev".to_string(), Some("1-24".to_string()))]
                    .into_iter()
                    .collect(),
            },
        ),
    ]
}

/// Every permission the planner's own plans need, over the plan fixtures' snapshots (Istio canary
/// and in-place, ambient, Kmesh, Gloo Mesh): what the grants this cluster cannot exercise are for.
fn planner_needs() -> BTreeSet<Permission> {
    let compat = CompatData::embedded();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan");
    let mut targets: Vec<String> = (20..=26).map(|m| format!("istio=1.{m}")).collect();
    targets.extend(["kmesh=1.1", "gloo-mesh=1.1"].map(String::from));
    let mut out = BTreeSet::new();
    let mut plans = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("fixture");
        let snapshot: ClusterSnapshot = serde_saphyr::from_str(&text).expect("snapshot");
        for t in &targets {
            for strategy in [Strategy::Canary, Strategy::InPlace] {
                let request = PlanRequest {
                    targets: vec![t.parse().expect("target")],
                    strategy,
                    tool_version: "0.1.0".into(),
                    ..PlanRequest::default()
                };
                let Ok(plan) = kubectl_meshup::plan::plan(&snapshot, &compat, &request) else {
                    continue;
                };
                plans += 1;
                for c in &plan.clusters {
                    out.extend(required(&plan, c, Some("istio-system")));
                }
            }
        }
    }
    assert!(plans > 20, "{plans} plans");
    out
}

/// `apply` as a ServiceAccount: with meshup-check and meshup-apply (and, for the runbook's `helm
/// upgrade`, helm's own grant: `admin` in gloo-mesh) the whole runbook runs; without any one grant
/// of meshup-apply the preflight names exactly the permissions that grant gave and nothing changes;
/// with meshup-check alone (read-only) the preflight names them all.
#[test]
fn apply_role_is_enough_and_every_rule_is_needed() {
    let mut cluster = RealCluster::start();
    let gloo = GlooMesh::install(&mut cluster);
    let snapshot = gloo::snapshot(&cluster);
    let plan = gloo::runbook_plan(&gloo.repo.url, &snapshot);
    let wide = wide_plan(&plan);
    let wide_path = cluster.dir().join("wide-plan.yaml");
    std::fs::write(&wide_path, kubectl_meshup::plan::to_yaml(&wide)).expect("write plan");
    let wide_arg = wide_path.display().to_string();
    let needed = required(&wide, CONTEXT, Some(NAMESPACE));

    let check_role = role("meshup-check.yaml");
    let check_atoms = atoms(&check_role);
    cluster.apply_yaml(&check_role.to_string());
    let full = role("meshup-apply.yaml");
    let all = atoms(&full);
    // Every permission the wide plan needs is granted by some grant of the role, and every grant
    // serves some permission: of the wide plan, or (the Istio grants: restarts, rollout waits of
    // StatefulSets and DaemonSets, namespace labels) of a plan the planner makes for an Istio
    // cluster, which no plan for this Gloo Mesh-only cluster can hold (apply's scope check refuses
    // it before the preflight; see below).
    for p in &needed {
        assert!(all.iter().any(|a| grants(a, p)), "meshup-apply lacks {p}");
    }
    let planner = planner_needs();
    for p in planner
        .iter()
        .filter(|p| !check_atoms.iter().any(|a| grants(a, p)))
    {
        assert!(
            all.iter().any(|a| grants(a, p)),
            "meshup-apply lacks {p} (planner)"
        );
    }
    let (exercised, istio_only): (Vec<Atom>, Vec<Atom>) = all
        .iter()
        .cloned()
        .partition(|a| needed.iter().any(|p| grants(a, p)));
    for a in &istio_only {
        assert!(
            planner.iter().any(|p| grants(a, p)),
            "{a:?} is more than apply needs"
        );
    }
    assert_eq!(
        istio_only
            .iter()
            .map(|a| a.resource.as_str())
            .collect::<Vec<_>>(),
        ["statefulsets", "daemonsets", "namespaces"],
        "the grants no plan for this cluster exercises"
    );
    cluster.apply_yaml(&full.to_string());
    let kubeconfig = bind(&cluster, &["meshup-check", "meshup-apply"]);

    let before = gloo::state(&cluster);
    // The old wide plan's Istio and StatefulSet steps: refused at the scope check, before the
    // preflight, as the ServiceAccount with every grant; nothing changes.
    let mut outside = wide.clone();
    outside.steps.extend(out_of_scope_steps());
    let outside_path = cluster.dir().join("outside-plan.yaml");
    std::fs::write(&outside_path, kubectl_meshup::plan::to_yaml(&outside)).expect("write plan");
    let outside_arg = outside_path.display().to_string();
    let out = gloo.apply(&cluster, &kubeconfig, &outside_arg);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "outside: {stderr}");
    assert!(
        stderr.contains("error: the plan reaches outside its scope at step x-scale-statefulset: scales StatefulSet gloo-mesh/ledger, which is not a Gloo Mesh management workload of this cluster"),
        "outside: {stderr}"
    );
    assert_eq!(
        gloo::state(&cluster),
        before,
        "the refused plan changed something"
    );

    for (i, atom) in exercised.iter().enumerate() {
        let rest: Vec<Atom> = exercised
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .chain(istio_only.iter().cloned())
            .collect();
        let probe = can_i_args(atom);
        let probe: Vec<&str> = probe.iter().map(String::as_str).collect();
        set_role(&mut cluster, &role_of(&full, &rest), &probe, false);
        let out = gloo.apply(&cluster, &kubeconfig, &wide_arg);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "without {atom:?}: {stderr}");
        assert!(
            stderr.contains("missing permissions, nothing was changed"),
            "without {atom:?}: {stderr}"
        );
        let expected: BTreeSet<String> = needed
            .iter()
            .filter(|p| grants(atom, p) && !check_atoms.iter().any(|a| grants(a, p)))
            .map(ToString::to_string)
            .collect();
        assert!(!expected.is_empty());
        for p in &expected {
            assert!(
                stderr.contains(p.as_str()),
                "without {atom:?}, {p} not named: {stderr}"
            );
        }
        assert_eq!(
            named_missing(&stderr),
            expected,
            "only the missing ones are named"
        );
        assert_eq!(
            gloo::state(&cluster),
            before,
            "without {atom:?} something changed"
        );
    }

    // Read-only: meshup-check alone.
    let out = cluster.kubectl(&["delete", "clusterrolebinding", "meshup-test-meshup-apply"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    set_role(
        &mut cluster,
        &full,
        &["patch", "deployments.apps", "-A", "--subresource=scale"],
        false,
    );
    let plan_path = gloo::write_plan(&cluster, &gloo);
    let plan_arg = plan_path.display().to_string();
    let out = gloo.apply(&cluster, &kubeconfig, &plan_arg);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "read-only: {stderr}");
    let expected: BTreeSet<String> = required(&plan, CONTEXT, Some(NAMESPACE))
        .iter()
        .filter(|p| !check_atoms.iter().any(|a| grants(a, p)))
        .map(ToString::to_string)
        .collect();
    assert_eq!(named_missing(&stderr), expected, "read-only: {stderr}");

    assert_eq!(
        gloo::state(&cluster),
        before,
        "read-only apply changed something"
    );

    // Enough: both roles, and helm's own grant in its release namespace.
    bind(&cluster, &["meshup-apply"]);
    cluster.apply_yaml(
        &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "helm-admin", "namespace": NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": SA_NAMESPACE}]
        })
        .to_string(),
    );
    set_role(
        &mut cluster,
        &full,
        &[
            "deletecollection",
            "meshes.discovery.mesh.gloo.solo.io",
            "-A",
        ],
        true,
    );
    let _discovery = gloo::play_discovery(&cluster);
    let out = gloo.apply(&cluster, &kubeconfig, &plan_arg);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "as the ServiceAccount: {stderr}"
    );
    let journal = gloo::journal(&cluster).expect("journal");
    assert!(journal.finished_at.is_some(), "{journal:#?}");
    for name in ["discovery", "networking"] {
        let d = cluster.get_json(&["deployment", name, "-n", NAMESPACE]);
        assert_eq!(d["spec"]["replicas"], 1, "{name}");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "gcr.io/gloo-mesh/gloo-mesh:1.0.0"
        );
    }
}
