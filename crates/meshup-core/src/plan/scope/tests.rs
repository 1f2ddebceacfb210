use super::*;
use crate::compat::CompatData;
use crate::plan::Action;
use crate::plan::{PlanRequest, Strategy, Target, plan};

/// Every snapshot the planner is tested and shown with.
const SNAPSHOTS: [(&str, &str); 10] = [
    (
        "gloo",
        include_str!("../../../../../tests/fixtures/plan/gloo-mesh-0.12-two-clusters.yaml"),
    ),
    (
        "old-k8s",
        include_str!("../../../../../tests/fixtures/plan/istio-1.20-k8s-1.27.yaml"),
    ),
    (
        "canary",
        include_str!("../../../../../tests/fixtures/plan/istio-1.20-k8s-1.29.yaml"),
    ),
    (
        "new-k8s",
        include_str!("../../../../../tests/fixtures/plan/istio-1.22-k8s-1.31.yaml"),
    ),
    (
        "ambient",
        include_str!("../../../../../tests/fixtures/plan/istio-ambient-1.23.yaml"),
    ),
    (
        "kmesh",
        include_str!("../../../../../tests/fixtures/plan/kmesh-1.0-dual-engine.yaml"),
    ),
    (
        "mspider",
        include_str!("../../../../../tests/fixtures/plan/mspider-mixed.yaml"),
    ),
    (
        "example-istio",
        include_str!("../../../../../examples/istio-1.20-eks.yaml"),
    ),
    (
        "example-gloo",
        include_str!("../../../../../examples/gloo-mesh-fleet.yaml"),
    ),
    (
        "example-kmesh",
        include_str!("../../../../../examples/kmesh.yaml"),
    ),
];

fn snapshot(text: &str) -> ClusterSnapshot {
    serde_saphyr::from_str(text).expect("fixture snapshot")
}

/// Every plan the planner makes from every fixture: each mesh at each version the data knows
/// (and a few it does not), both strategies, with and without a Kubernetes upgrade and downgrades.
fn every_plan() -> Vec<(String, UpgradePlan, ClusterSnapshot)> {
    let compat = CompatData::embedded();
    let mut targets: Vec<String> = (5..=33).map(|m| format!("istio=1.{m}")).collect();
    targets.extend(
        [
            "gloo-mesh=0.12",
            "gloo-mesh=1.0",
            "gloo-mesh=1.1",
            "gloo-mesh=1.2",
        ]
        .map(String::from),
    );
    targets.extend(["kmesh=0.5", "kmesh=1.0", "kmesh=1.1", "kmesh=1.2"].map(String::from));
    let mut combos: Vec<Vec<Target>> = targets
        .iter()
        .map(|t| vec![t.parse().expect("target")])
        .collect();
    for istio in (20..=26).map(|m| format!("istio=1.{m}")) {
        for other in ["kmesh=1.1", "gloo-mesh=1.1"] {
            combos.push(vec![istio.parse().expect("t"), other.parse().expect("t")]);
        }
    }
    let mut out = Vec::new();
    for (name, text) in SNAPSHOTS {
        let snap = snapshot(text);
        for targets in &combos {
            for strategy in [Strategy::Canary, Strategy::InPlace] {
                for (k8s, down) in [(false, false), (true, false), (true, true)] {
                    let request = PlanRequest {
                        targets: targets.clone(),
                        strategy,
                        include_kubernetes_upgrade: k8s,
                        allow_downgrade: down,
                        chart_repos: Default::default(),
                        tool_version: "0.1.0".into(),
                    };
                    if let Ok(p) = plan(&snap, &compat, &request) {
                        let label =
                            format!("{name} {targets:?} {strategy:?} k8s={k8s} down={down}");
                        out.push((label, p, snap.clone()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_plan_the_planner_makes_is_in_scope() {
    let plans = every_plan();
    let steps: usize = plans.iter().map(|(_, p, _)| p.steps.len()).sum();
    eprintln!("{} plans, {steps} steps", plans.len());
    assert!(
        plans.len() > 100 && steps > 1000,
        "{} plans, {steps} steps",
        plans.len()
    );
    for (label, p, snap) in &plans {
        assert_eq!(scope_violations(p, None, &[]), [], "{label} (plan show)");
        assert_eq!(scope_violations(p, Some(snap), &[]), [], "{label} (apply)");
    }
    // Every action type a runbook emits was judged above.
    let kinds: BTreeSet<&str> = plans
        .iter()
        .flat_map(|(_, p, _)| &p.steps)
        .map(|s| s.action.type_name())
        .collect();
    assert_eq!(kinds.len(), 9, "{kinds:?}");
}

fn gloo_and_istio() -> (UpgradePlan, UpgradePlan) {
    let compat = CompatData::embedded();
    let request = |t: &str| PlanRequest {
        targets: vec![t.parse().expect("target")],
        tool_version: "0.1.0".into(),
        ..PlanRequest::default()
    };
    let gloo = plan(
        &snapshot(SNAPSHOTS[0].1),
        &compat,
        &request("gloo-mesh=1.1"),
    )
    .expect("gloo");
    let istio = plan(&snapshot(SNAPSHOTS[2].1), &compat, &request("istio=1.22")).expect("istio");
    (gloo, istio)
}

fn first_step(plan: &mut UpgradePlan, kind: &str) -> usize {
    plan.steps
        .iter()
        .position(|s| s.action.type_name() == kind)
        .unwrap_or_else(|| panic!("no {kind} step"))
}

/// The reason the edited plan is refused, naming the edited step.
fn refused(plan: &UpgradePlan, at: usize) -> String {
    let v = check_scope(plan, None, &[]).expect_err("out of scope");
    assert_eq!(v.step, plan.steps[at].id, "{v}");
    v.reason
}

#[test]
fn the_hostile_edits_of_issue_16_are_out_of_scope() {
    let (gloo, istio) = gloo_and_istio();
    let delete = |group: &str, resource: &str, namespace: Option<&str>| {
        let mut p = gloo.clone();
        let i = first_step(&mut p, "delete-collection");
        p.steps[i].action = Action::DeleteCollection {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: namespace.map(String::from),
        };
        refused(&p, i)
    };
    assert!(delete("", "secrets", None).contains("never core resources, Secrets or CRDs"));
    assert!(
        delete("apiextensions.k8s.io", "customresourcedefinitions", None)
            .contains("only the Gloo Mesh discovery group")
    );
    assert!(delete("", "configmaps", Some("kube-system")).contains("discovery group"));

    let mut p = gloo.clone();
    let i = first_step(&mut p, "scale");
    if let Action::Scale {
        target, replicas, ..
    } = &mut p.steps[i].action
    {
        target.namespace = "kube-system".into();
        target.name = "coredns".into();
        *replicas = 0;
    }
    assert!(
        refused(&p, i).contains(
            "Deployment kube-system/coredns, which is not a Gloo Mesh management workload"
        )
    );

    let mut p = gloo.clone();
    let i = first_step(&mut p, "scale");
    if let Action::Scale { replicas, .. } = &mut p.steps[i].action {
        *replicas = 500;
    }
    assert!(
        refused(&p, i).contains(
            "to 500 replicas; the runbook only scales to 0, to 1 or back to the 1 observed"
        )
    );

    let mut p = gloo.clone();
    let i = first_step(&mut p, "apply-crds");
    if let Action::ApplyCrds { repo, .. } = &mut p.steps[i].action {
        *repo = "http://charts.example.com/gloo-mesh".into();
    }
    assert!(refused(&p, i).contains("only gloo-mesh from https://"));

    let helm = p
        .steps
        .iter()
        .position(|s| {
            matches!(
                &s.action,
                Action::Run {
                    tool: Tool::Helm,
                    ..
                }
            )
        })
        .expect("helm step");
    for extra in [
        vec!["--post-renderer", "/tmp/evil"],
        vec!["--kubeconfig", "/tmp/other"],
        vec!["--kube-context=prod"],
        vec!["--context", "prod"],
        vec!["--repo", "http://charts.example.com"],
    ] {
        let mut p = gloo.clone();
        if let Action::Run { args, .. } = &mut p.steps[helm].action {
            args.extend(extra.iter().map(|a| a.to_string()));
        }
        let reason = refused(&p, helm);
        assert!(
            reason.contains(extra[0].split('=').next().unwrap_or_default())
                || reason.contains("twice"),
            "{extra:?}: {reason}"
        );
    }

    let mut p = istio.clone();
    let i = first_step(&mut p, "label-namespace");
    p.steps[i].action = Action::LabelNamespace {
        namespace: "kube-system".into(),
        labels: BTreeMap::from([("istio.io/rev".to_string(), Some("1-22-8".to_string()))]),
    };
    assert!(refused(&p, i).contains("labels namespace kube-system, which is not enrolled"));
    let mut p = istio.clone();
    if let Action::LabelNamespace { labels, .. } = &mut p.steps[i].action {
        labels.insert(
            "pod-security.kubernetes.io/enforce".into(),
            Some("privileged".into()),
        );
    }
    assert!(refused(&p, i).contains("sets the label pod-security.kubernetes.io/enforce"));

    // An istioctl that installs from a file or purges everything.
    let install = istio.steps.iter().position(|s| matches!(&s.action, Action::Run { tool: Tool::Istioctl, args, .. } if args[0] == "install")).expect("install");
    for extra in [
        vec!["-f", "/tmp/evil.yaml"],
        vec!["--manifests", "/tmp/charts"],
        vec!["--set", "values.global.proxy.image=evil"],
    ] {
        let mut p = istio.clone();
        if let Action::Run { args, .. } = &mut p.steps[install].action {
            args.extend(extra.iter().map(|a| a.to_string()));
        }
        refused(&p, install);
    }
    let mut p = istio.clone();
    p.steps[install].undo = Some(Action::Run {
        tool: Tool::Istioctl,
        args: vec!["uninstall".into(), "--purge".into(), "-y".into()],
        timeout_seconds: 60,
        config: None,
    });
    let v = check_scope(&p, None, &[]).expect_err("purge");
    assert_eq!(v.step, format!("{} (undo)", p.steps[install].id));
}

#[test]
fn a_fact_added_to_widen_the_scope_breaks_the_fingerprint() {
    let (_, mut istio) = gloo_and_istio();
    let cluster = istio.clusters[0].clone();
    istio.fingerprint.facts.insert(
        format!("{cluster}/istio/namespace/kube-system"),
        "istio-injection=enabled".into(),
    );
    let v = check_scope(&istio, None, &[]).expect_err("widened");
    assert_eq!(v.step, "(fingerprint)");
}

#[test]
fn a_scale_target_the_cluster_does_not_have_is_refused_with_the_snapshot() {
    let (gloo, _) = gloo_and_istio();
    let mut snap = snapshot(SNAPSHOTS[0].1);
    assert_eq!(scope_violations(&gloo, Some(&snap), &[]), []);
    for c in &mut snap.clusters {
        if let Some(g) = c.gloo_mesh.as_mut() {
            g.networking = None;
        }
    }
    let v = check_scope(&gloo, Some(&snap), &[]).expect_err("networking is gone");
    assert!(v.reason.contains("which the cluster does not have"), "{v}");
}

#[test]
fn a_chart_mirror_is_refused_without_the_flag_and_accepted_with_it() {
    let (gloo, _) = gloo_and_istio();
    // An Istio plan that installs from Istio's chart repository with helm.
    let istio = every_plan()
        .into_iter()
        .map(|(_, p, _)| p)
        .find(|p| {
            p.steps.iter().any(|s| {
                matches!(&s.action, Action::Run { tool: Tool::Helm, args, .. }
                    if args.iter().any(|a| a == ISTIO_CHART_REPO))
            })
        })
        .expect("a helm-installed Istio plan");
    let mirror = "https://charts.example.internal/mirror".to_string();
    let mirrored = |mut p: UpgradePlan| {
        let mut edited = Vec::new();
        for (i, s) in p.steps.iter_mut().enumerate() {
            let repo = match &mut s.action {
                Action::ApplyCrds { repo, .. } => Some(repo),
                Action::Run {
                    tool: Tool::Helm,
                    args,
                    ..
                } => args
                    .iter()
                    .position(|a| a == "--repo")
                    .and_then(|at| args.get_mut(at + 1)),
                _ => None,
            };
            if let Some(repo) = repo {
                *repo = mirror.clone();
                edited.push(i);
            }
        }
        (p, edited)
    };
    for (name, plan) in [("gloo", gloo), ("istio", istio)] {
        let (p, edited) = mirrored(plan);
        assert!(!edited.is_empty(), "{name}: no chart step");
        // The plan file alone cannot name a mirror.
        let reason = refused(&p, edited[0]);
        assert!(
            reason.contains(&mirror) && reason.contains("--allow-chart-repo"),
            "{name}: {reason}"
        );
        // Approved at apply time, with or without a trailing slash, every chart step passes.
        assert_eq!(
            scope_violations(&p, None, std::slice::from_ref(&mirror)),
            [],
            "{name}"
        );
        assert_eq!(
            scope_violations(&p, None, &[format!("{mirror}/")]),
            [],
            "{name}"
        );
        // Another approved mirror does not cover this one.
        let other = ["https://charts.example.internal/other".to_string()];
        let v = check_scope(&p, None, &other).expect_err("another mirror");
        assert_eq!(v.step, p.steps[edited[0]].id);
        assert!(
            v.reason
                .contains("or an approved mirror (https://charts.example.internal/other)"),
            "{v}"
        );
    }
}

#[test]
fn a_mirror_does_not_widen_anything_but_the_repository() {
    let (gloo, _) = gloo_and_istio();
    let mirror = ["http://127.0.0.1:8879".to_string()];
    let mut p = gloo.clone();
    let i = first_step(&mut p, "apply-crds");
    if let Action::ApplyCrds { repo, chart, .. } = &mut p.steps[i].action {
        *repo = mirror[0].clone();
        *chart = "evil".into();
    }
    let v = check_scope(&p, None, &mirror).expect_err("another chart");
    assert!(v.reason.contains("applies the CRDs of chart evil"), "{v}");
}

#[test]
fn only_https_or_loopback_http_mirrors_may_be_approved() {
    for ok in [
        "https://charts.example.internal/gloo-mesh",
        "http://127.0.0.1:8879",
        "http://localhost:8879/charts",
        "http://[::1]:8879",
    ] {
        assert_eq!(allowed_chart_repo(ok).as_deref(), Ok(ok));
    }
    let refused = allowed_chart_repo("http://charts.example.internal").expect_err("plain http");
    assert_eq!(
        refused,
        "`http://charts.example.internal` is plain http on charts.example.internal, where anyone on the path could swap the charts: serve the mirror over https (plain http is allowed only on a loopback address)"
    );
    assert!(allowed_chart_repo("http://10.0.0.1").is_err());
    assert!(allowed_chart_repo("ftp://127.0.0.1/charts").is_err());
    assert!(allowed_chart_repo("charts.example.internal").is_err());
    assert!(allowed_chart_repo("oci://registry.example.internal/charts").is_err());
}
