//! Whole plans for realistic clusters (fixtures under `tests/fixtures/plan/`), their rendering, the plan
//! file and the fingerprint.

use proptest::prelude::proptest;

use super::Strategy;
use super::*;
use crate::compat::CompatData;
use crate::snapshot::ClusterSnapshot;
use crate::version::Version;

fn fixture(name: &str) -> ClusterSnapshot {
    let text = match name {
        "gloo" => include_str!("../../../../tests/fixtures/plan/gloo-mesh-0.12-two-clusters.yaml"),
        "canary" => include_str!("../../../../tests/fixtures/plan/istio-1.20-k8s-1.29.yaml"),
        "ambient" => include_str!("../../../../tests/fixtures/plan/istio-ambient-1.23.yaml"),
        "kmesh" => include_str!("../../../../tests/fixtures/plan/kmesh-1.0-dual-engine.yaml"),
        "mspider" => include_str!("../../../../tests/fixtures/plan/mspider-mixed.yaml"),
        "old-k8s" => include_str!("../../../../tests/fixtures/plan/istio-1.20-k8s-1.27.yaml"),
        "new-k8s" => include_str!("../../../../tests/fixtures/plan/istio-1.22-k8s-1.31.yaml"),
        other => panic!("no fixture {other}"),
    };
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn to(targets: &[(&str, &str)]) -> PlanRequest {
    PlanRequest {
        targets: targets
            .iter()
            .map(|(mesh, v)| format!("{mesh}={v}").parse::<Target>().unwrap())
            .collect(),
        strategy: Strategy::Canary,
        include_kubernetes_upgrade: false,
        allow_downgrade: false,
        chart_repos: Default::default(),
        tool_version: "0.1.0".to_string(),
    }
}

fn make(name: &str, request: &PlanRequest) -> Result<UpgradePlan, PlanError> {
    plan(&fixture(name), &CompatData::embedded(), request)
}

fn hop_targets(plan: &UpgradePlan, mesh: Mesh) -> Vec<String> {
    plan.hops
        .iter()
        .filter(|h| h.mesh == mesh)
        .map(|h| h.to.to_string())
        .collect()
}

fn step_ids(plan: &UpgradePlan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.id.as_str()).collect()
}

fn run_args(step: &Step) -> Option<String> {
    match &step.action {
        Action::Run { tool, args, .. } => Some(format!("{} {}", tool.program(), args.join(" "))),
        _ => None,
    }
}

// --- Gloo Mesh pre-1.0 ---------------------------------------------------------------------------

#[test]
fn gloo_mesh_pre_1_0_runbook_with_two_registered_clusters() {
    let plan = make("gloo", &to(&[("gloo-mesh", "1.1")])).unwrap();
    assert_eq!(plan.targets[0].version.to_string(), "1.1.2");
    assert_eq!(plan.clusters, ["mgmt-cluster", "remote-cluster"]);
    insta::assert_snapshot!("gloo_mesh_pre_1_0_table", render_table(&plan, false));
    insta::assert_snapshot!("gloo_mesh_pre_1_0_yaml", to_yaml(&plan));
}

#[test]
fn gloo_mesh_scale_ups_restore_the_replicas_observed_before_the_scale_down() {
    let mut snapshot = fixture("gloo");
    let gm = snapshot.clusters[0].gloo_mesh.as_mut().unwrap();
    let discovery = gm.discovery.as_mut().unwrap();
    discovery.desired = 3;
    discovery.ready = 3;
    let planned = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("gloo-mesh", "1.1")]),
    )
    .unwrap();
    let action = |id: &str| {
        &planned
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id}"))
            .action
    };
    let scale = |replicas, before| Action::Scale {
        target: ObjectRef {
            kind: "Deployment".into(),
            namespace: "gloo-mesh".into(),
            name: "discovery".into(),
        },
        replicas,
        replicas_before: before,
    };
    assert_eq!(
        action("mgmt-cluster-02-scale-down-discovery"),
        &scale(0, Some(ReplicasBefore::Record))
    );
    assert_eq!(
        action("mgmt-cluster-14-scale-up-discovery"),
        &scale(3, Some(ReplicasBefore::Restore))
    );
    let down = planned
        .steps
        .iter()
        .find(|s| s.id == "mgmt-cluster-02-scale-down-discovery")
        .unwrap();
    assert_eq!(down.undo, Some(scale(3, Some(ReplicasBefore::Restore))));
    // The hold after helm upgrade is a plain scale: it must not overwrite the recorded count.
    assert_eq!(action("mgmt-cluster-10-hold-discovery"), &scale(0, None));
    insta::assert_snapshot!(
        "gloo_mesh_pre_1_0_discovery_at_3_table",
        render_table(&planned, false)
    );

    // Planned while an earlier apply holds discovery at 0 with its annotation: the recorded 3 is
    // what the plan restores, and the fingerprint is the one of the cluster before that apply.
    let mut held = snapshot.clone();
    let d = held.clusters[0]
        .gloo_mesh
        .as_mut()
        .and_then(|g| g.discovery.as_mut())
        .unwrap();
    d.desired = 0;
    d.ready = 0;
    d.replicas_before = Some(3);
    let again = plan(&held, &CompatData::embedded(), &to(&[("gloo-mesh", "1.1")])).unwrap();
    assert_eq!(again.steps, planned.steps);
    assert_eq!(again.fingerprint.value, planned.fingerprint.value);

    // A count left behind on a running discovery is stale: the 3 it runs is what counts.
    let mut stale = snapshot.clone();
    stale.clusters[0]
        .gloo_mesh
        .as_mut()
        .and_then(|g| g.discovery.as_mut())
        .unwrap()
        .replicas_before = Some(5);
    let again = plan(
        &stale,
        &CompatData::embedded(),
        &to(&[("gloo-mesh", "1.1")]),
    )
    .unwrap();
    assert_eq!(again.steps, planned.steps);
}

#[test]
fn every_gloo_mesh_seed_step_appears_in_order() {
    let plan = make("gloo", &to(&[("gloo-mesh", "1.1")])).unwrap();
    let seed_steps: Vec<usize> = plan
        .steps
        .iter()
        .filter(|s| s.reason.runbook == "gloo-mesh-pre-1.0")
        .map(|s| {
            assert_eq!(s.reason.source, "shared/seeds/gloo-mesh-upgrading.md");
            let n = s.reason.step.as_deref().unwrap();
            n.strip_prefix("step ")
                .and_then(|r| r.strip_suffix(" of 10"))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let mut distinct = seed_steps.clone();
    distinct.dedup();
    assert_eq!(distinct, (1..=10).collect::<Vec<_>>(), "{seed_steps:?}");
}

#[test]
fn gloo_mesh_deletes_in_the_served_discovery_group_and_records_replicas() {
    let plan = make("gloo", &to(&[("gloo-mesh", "1.1")])).unwrap();
    let deletes: Vec<(&str, &str)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::DeleteCollection {
                group, resource, ..
            } => {
                assert!(s.irreversible, "{}", s.id);
                Some((group.as_str(), resource.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        deletes,
        [
            ("discovery.mesh.gloo.solo.io", "meshes"),
            ("discovery.mesh.gloo.solo.io", "traffictargets"),
            ("discovery.mesh.gloo.solo.io", "workloads")
        ]
    );
    let scale_down = plan
        .steps
        .iter()
        .find(|s| s.id == "mgmt-cluster-02-scale-down-discovery")
        .unwrap();
    assert!(matches!(
        scale_down.action,
        Action::Scale { replicas: 0, .. }
    ));
    assert!(matches!(
        scale_down.undo,
        Some(Action::Scale { replicas: 1, .. })
    ));
}

#[test]
fn gloo_mesh_reregisters_every_cluster_with_its_name_and_context() {
    let plan = make("gloo", &to(&[("gloo-mesh", "1.1")])).unwrap();
    let registers: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.id.contains("-register-"))
        .filter_map(run_args)
        .collect();
    assert_eq!(
        registers,
        [
            "meshctl cluster register community mgmt-cluster --remote-context mgmt-cluster --mgmt-context mgmt-cluster",
            "meshctl cluster register community remote-cluster --remote-context remote-cluster --mgmt-context mgmt-cluster"
        ]
    );
    let helm = plan
        .steps
        .iter()
        .filter_map(run_args)
        .find(|a| a.starts_with("helm"))
        .unwrap();
    assert!(
        helm.starts_with("helm upgrade gloo-mesh gloo-mesh "),
        "{helm}"
    );
    assert!(helm.contains("--version 1.1.2"), "{helm}");
}

#[test]
fn a_registered_cluster_without_a_known_context_becomes_a_manual_step() {
    let mut snapshot = fixture("gloo");
    snapshot.clusters.truncate(1);
    let plan = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("gloo-mesh", "1.1")]),
    )
    .unwrap();
    let step = plan
        .steps
        .iter()
        .find(|s| s.id.ends_with("register-remote-cluster"))
        .unwrap();
    match &step.action {
        Action::Manual { command, .. } => {
            let command = command.as_ref().unwrap().join(" ");
            assert!(
                command.contains("<context used to register remote-cluster>"),
                "{command}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gloo_mesh_without_a_served_discovery_group_is_not_guessed() {
    let mut snapshot = fixture("gloo");
    if let Some(g) = snapshot.clusters[0].gloo_mesh.as_mut() {
        g.served_groups
            .retain(|g| !g.group.starts_with("discovery."));
    }
    let err = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("gloo-mesh", "1.1")]),
    )
    .unwrap_err();
    assert!(err.is_blocking());
    assert!(err.to_string().contains("discovery API group"), "{err}");
}

// --- Istio canary ----------------------------------------------------------------------------------

#[test]
fn istio_multi_hop_canary_1_20_to_1_24_on_kubernetes_1_29() {
    let plan = make("canary", &to(&[("istio", "1.24")])).unwrap();
    assert_eq!(hop_targets(&plan, Mesh::Istio), ["1.22.8", "1.24.6"]);
    assert!(
        plan.hops[0].reason.contains("2 minor(s) per hop"),
        "{}",
        plan.hops[0].reason
    );
    insta::assert_snapshot!(
        "istio_canary_1_20_to_1_24_table",
        render_table(&plan, false)
    );
    insta::assert_snapshot!("istio_canary_1_20_to_1_24_markdown", render_markdown(&plan));
    // The YAML document carries each hop's notes (minor, title, page) for tools.
    let yaml = crate::plan::to_yaml(&plan);
    let hops_part = yaml
        .split("\nsteps:")
        .next()
        .and_then(|head| head.split("\nhops:").nth(1))
        .expect("hops in the YAML plan");
    insta::assert_snapshot!("istio_canary_1_20_to_1_24_yaml_hops", hops_part);
}

#[test]
fn a_helm_value_that_a_crossed_note_changes_is_warned_with_the_note() {
    let mut snapshot = fixture("canary");
    let istio = snapshot.clusters[0].istio.as_mut().unwrap();
    istio.helm_releases.push(crate::snapshot::HelmRelease {
        name: "istio-cni".into(),
        namespace: "istio-system".into(),
        revision: 1,
        status: "deployed".into(),
        chart: "cni".into(),
        chart_version: "1.20.8".into(),
        app_version: None,
        values: serde_json::json!({"ambient": {"dnsCapture": true}}),
    });
    let plan = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("istio", "1.24")]),
    )
    .unwrap();
    let notes: Vec<&String> = plan
        .warnings
        .iter()
        .filter(|w| w.contains("upgrade note"))
        .collect();
    assert_eq!(
        notes,
        [
            "prod-eu: `helm.cni.ambient.dnsCapture` is set (Helm release istio-system/istio-cni) and Istio 1.24's upgrade note \"Ambient upgrade with DNS proxy\" changes what it does: read https://istio.io/latest/news/releases/1.24.x/announcing-1.24/upgrade-notes/ before the hop to 1.24.6"
        ]
    );
}

#[test]
fn installed_settings_that_a_crossed_note_changes_are_warned_with_the_note_and_its_page() {
    let request = to(&[("istio", "1.24")]);
    let plain = make("canary", &request).unwrap();
    assert!(
        !plain.warnings.iter().any(|w| w.contains("upgrade note")),
        "{:?}",
        plain.warnings
    );
    let mut snapshot = fixture("canary");
    let istio = snapshot.clusters[0].istio.as_mut().unwrap();
    let cp = &mut istio.control_planes[0];
    let mut config = cp.config.clone().unwrap_or_default();
    config.mesh_config = Some(serde_json::json!({
        "discoverySelectors": [{"matchLabels": {"mesh": "on"}}],
        "defaultConfig": {"proxyMetadata": {"ISTIO_DELTA_XDS": "false"}}
    }));
    config
        .env
        .insert("PILOT_UNIFIED_SIDECAR_SCOPE".into(), "false".into());
    cp.config = Some(config);
    let revision = cp.revision.clone();
    let plan = plan(&snapshot, &CompatData::embedded(), &request).unwrap();
    let notes: Vec<&String> = plan
        .warnings
        .iter()
        .filter(|w| w.contains("upgrade note"))
        .collect();
    assert_eq!(
        notes,
        [
            &format!(
                "prod-eu: `meshConfig.defaultConfig.proxyMetadata.ISTIO_DELTA_XDS` is set (mesh config of istiod revision {revision}) and Istio 1.22's upgrade note \"Delta xDS on by default\" changes its default: read https://istio.io/latest/news/releases/1.22.x/announcing-1.22/upgrade-notes/ before the hop to 1.22.8"
            ),
            &format!(
                "prod-eu: `meshConfig.discoverySelectors` is set (mesh config of istiod revision {revision}) and Istio 1.22's upgrade note \"Default value of the feature flag `ENHANCED_RESOURCE_SCOPING` to true\" changes what it does: read https://istio.io/latest/news/releases/1.22.x/announcing-1.22/upgrade-notes/ before the hop to 1.22.8"
            ),
            &format!(
                "prod-eu: `istiod.env.PILOT_UNIFIED_SIDECAR_SCOPE` is set (env of istiod revision {revision}) and Istio 1.24's upgrade note \"`Sidecar` scoping changes\" changes its default: read https://istio.io/latest/news/releases/1.24.x/announcing-1.24/upgrade-notes/ before the hop to 1.24.6"
            ),
        ]
    );
}

#[test]
fn canary_moves_tags_and_labels_and_removes_the_old_revision_last() {
    let plan = make("canary", &to(&[("istio", "1.24")])).unwrap();
    let commands: Vec<String> = plan.steps.iter().filter_map(run_args).collect();
    assert!(
        commands
            .contains(&"istioctl tag set prod-stable --revision 1-22-8 --overwrite".to_string())
    );
    assert!(
        commands.contains(&"istioctl tag set default --revision 1-22-8 --overwrite".to_string())
    );
    assert!(
        commands
            .contains(&"istioctl tag set prod-stable --revision 1-24-6 --overwrite".to_string())
    );
    // payments is labelled with the revision itself, so it is relabelled (with an undo).
    let label = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::LabelNamespace { namespace, .. } if namespace == "payments"))
        .unwrap();
    assert!(label.undo.is_some());
    // bookinfo follows its tag and legacy follows the default tag: no relabel.
    assert!(!plan.steps.iter().any(|s| matches!(&s.action, Action::LabelNamespace { namespace, .. } if namespace == "bookinfo" || namespace == "legacy")));
    // Each removal comes after its revision-unused gate and after every restart of the hop.
    let ids = step_ids(&plan);
    let pos = |needle: &str| ids.iter().position(|id| id.ends_with(needle)).unwrap();
    assert!(pos("gate-unused-1-20-8") < pos("remove-1-20-8"));
    assert!(pos("gate-proxies-payments") < pos("gate-unused-1-20-8"));
    assert!(pos("remove-1-20-8") < pos("install-1-24-6"));
    assert!(pos("remove-1-22-8") > pos("install-1-24-6"));
    assert!(
        plan.steps
            .iter()
            .filter(|s| s.id.contains("remove-"))
            .all(|s| s.irreversible)
    );
    // The standalone pod is called out.
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("legacy/Pod/debug-shell"))
    );
    // The final health gate closes the cluster's steps.
    assert!(matches!(
        plan.steps.last().unwrap().action,
        Action::Gate {
            gate: Gate::CheckPasses
        }
    ));
}

#[test]
fn restarts_list_the_owners_from_the_snapshot_namespace_by_namespace() {
    let plan = make("canary", &to(&[("istio", "1.22")])).unwrap();
    let restarts: Vec<(String, Vec<String>)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RestartWorkloads {
                namespace,
                workloads,
            } => Some((namespace.clone(), workloads.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(restarts[0].0, "bookinfo");
    assert_eq!(
        restarts[0].1,
        [
            "Deployment/productpage-v1",
            "Deployment/ratings-v1",
            "Deployment/reviews-v1",
            "Deployment/reviews-v2"
        ]
    );
    assert!(
        restarts
            .iter()
            .all(|(_, w)| w.iter().all(|o| !o.starts_with("Pod/")))
    );
    assert_eq!(restarts.len(), 4, "{restarts:?}");
}

#[test]
fn in_place_goes_one_minor_per_hop() {
    let mut request = to(&[("istio", "1.22")]);
    request.strategy = Strategy::InPlace;
    let plan = make("canary", &request).unwrap();
    assert_eq!(hop_targets(&plan, Mesh::Istio), ["1.21.6", "1.22.8"]);
}

// --- Istio in place, ambient -------------------------------------------------------------------------

#[test]
fn in_place_ambient_upgrade_in_helm_order() {
    let mut request = to(&[("istio", "1.24")]);
    request.strategy = Strategy::InPlace;
    let plan = make("ambient", &request).unwrap();
    insta::assert_snapshot!("istio_in_place_ambient_table", render_table(&plan, false));
    let releases: Vec<String> = plan
        .steps
        .iter()
        .filter_map(run_args)
        .map(|a| a.split(' ').nth(2).unwrap_or_default().to_string())
        .collect();
    assert_eq!(releases, ["istio-base", "istiod", "istio-cni", "ztunnel"]);
    let ztunnel = plan
        .steps
        .iter()
        .find(|s| s.id.contains("ztunnel-1-24-6"))
        .unwrap();
    assert!(
        ztunnel.reason.text.contains("resets the traffic"),
        "{}",
        ztunnel.reason.text
    );
    // The distroless flavor is kept, with the keys the ztunnel chart reads (its own hub, tag,
    // variant) and the variant apart, since the chart appends it to the tag.
    assert!(
        run_args(ztunnel)
            .unwrap()
            .ends_with("--set hub=docker.io/istio --set tag=1.24.6 --set variant=distroless")
    );
}

#[test]
fn a_chart_mirror_is_used_by_every_helm_step_and_named_for_apply() {
    let mirror = "https://charts.example.internal/istio";
    let mut request = to(&[("istio", "1.24")]);
    request.strategy = Strategy::InPlace;
    request.chart_repos.istio = mirror.to_string();
    let snapshot = fixture("ambient");
    let plan = plan_of(&snapshot, &request);
    let repos: Vec<Option<&str>> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Run { .. }))
        .map(|s| s.action.chart_repo())
        .collect();
    assert_eq!(repos, [Some(mirror); 4], "{:#?}", plan.steps);
    assert!(
        plan.warnings.iter().any(|w| w
            == &format!("the Istio charts come from {mirror} (--chart-repo), not the vendor's repository: apply this plan with `--allow-chart-repo {mirror}`")),
        "{:#?}",
        plan.warnings
    );
    // apply's scope check takes the mirror only when the operator approves it.
    let err = check_scope(&plan, Some(&snapshot), &[]).unwrap_err();
    assert!(err.to_string().contains(mirror), "{err}");
    check_scope(&plan, Some(&snapshot), &[mirror.to_string()]).unwrap();

    // Gloo Mesh: the CRD step and the helm upgrade both use its mirror; no warning names Istio.
    let mirror = "http://127.0.0.1:8879/gloo-mesh";
    let mut request = to(&[("gloo-mesh", "1.1")]);
    request.chart_repos.gloo_mesh = mirror.to_string();
    let plan = make("gloo", &request).unwrap();
    let used: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| s.action.chart_repo())
        .collect();
    assert!(
        used.len() >= 2 && used.iter().all(|u| *u == mirror),
        "{used:?}"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("Gloo Mesh charts come from"))
    );
    assert!(plan.warnings.iter().all(|w| !w.contains("Istio charts")));
}

#[test]
fn ambient_canary_hops_are_limited_by_ztunnel_skew() {
    let plan = make("ambient", &to(&[("istio", "1.25")])).unwrap();
    // ztunnel and istio-cni lag the control plane by one minor at most, so even a canary moves one.
    assert_eq!(hop_targets(&plan, Mesh::Istio), ["1.24.6", "1.25.5"]);
}

// --- Kmesh --------------------------------------------------------------------------------------------

#[test]
fn kmesh_prerequisites_then_upgrade_before_istio() {
    let plan = make("kmesh", &to(&[("kmesh", "1.1"), ("istio", "1.25")])).unwrap();
    insta::assert_snapshot!("kmesh_prerequisites_table", render_table(&plan, false));
    let ids = step_ids(&plan);
    let pos = |needle: &str| ids.iter().position(|id| id.contains(needle)).unwrap();
    // Kmesh 1.1 supports the installed Istio 1.23 and the target 1.25; Kmesh 1.0 does not support 1.25.
    assert!(pos("kmesh-kernels") < pos("kmesh-1-1-0"));
    assert!(pos("enable-ambient-default") < pos("gate-ambient-default"));
    assert!(pos("kmesh-1-1-0") < pos("install-1-25-5"));
}

#[test]
fn kmesh_goes_after_istio_when_its_new_range_needs_the_new_istio() {
    let mut snapshot = fixture("kmesh");
    let cp = &mut snapshot.clusters[0].istio.as_mut().unwrap().control_planes[0];
    cp.istiod.version.version = Some(Version::new(1, 22, 8));
    cp.ambient_enabled = true;
    let plan = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("kmesh", "1.1"), ("istio", "1.24")]),
    )
    .unwrap();
    let ids = step_ids(&plan);
    let pos = |needle: &str| ids.iter().position(|id| id.contains(needle)).unwrap();
    // Kmesh 1.1 does not support Istio 1.22, Kmesh 1.0 supports 1.24: Istio first.
    assert!(pos("remove-default") < pos("kmesh-1-1-0"), "{ids:?}");
    assert!(!ids.iter().any(|id| id.contains("enable-ambient")));
}

#[test]
fn istio_outside_the_installed_kmesh_range_blocks_and_names_the_kmesh_that_fits() {
    let err = make("kmesh", &to(&[("istio", "1.25")])).unwrap_err();
    assert!(err.is_blocking());
    let msg = err.to_string();
    assert!(
        msg.contains("Kmesh 1.0") && msg.contains("--to kmesh=1.1"),
        "{msg}"
    );
}

#[test]
fn kmesh_refuses_nodes_with_old_kernels() {
    let mut snapshot = fixture("kmesh");
    snapshot.clusters[0].nodes[0].kernel =
        crate::version::KernelVersion::parse("5.4.0-150-generic");
    let err = plan(&snapshot, &CompatData::embedded(), &to(&[("kmesh", "1.1")])).unwrap_err();
    assert!(err.is_blocking());
    assert!(err.to_string().contains("lab-worker-0 (5.4.0)"), "{err}");
}

#[test]
fn kmesh_judges_a_node_that_reports_no_operating_system_as_check_and_the_gate_do() {
    let mut snapshot = fixture("kmesh");
    let node = &mut snapshot.clusters[0].nodes[0];
    node.operating_system = String::new();
    node.kernel = crate::version::KernelVersion::parse("5.4.0-150-generic");
    let err = plan(&snapshot, &CompatData::embedded(), &to(&[("kmesh", "1.1")])).unwrap_err();
    assert!(err.is_blocking());
    assert_eq!(
        err.to_string(),
        "kmesh-lab: node kernels lab-worker-0 (5.4.0), lab-worker-1 (5.4.0) are older than 5.10, the minimum Kmesh needs; upgrade those nodes (or move Kmesh off them) before upgrading Kmesh"
    );
    // The same node on Windows is not judged.
    snapshot.clusters[0].nodes[0].operating_system = "windows".into();
    assert!(plan(&snapshot, &CompatData::embedded(), &to(&[("kmesh", "1.1")])).is_ok());
}

// --- DaoCloud flavors ----------------------------------------------------------------------------------

#[test]
fn mspider_and_upstream_are_never_mixed() {
    let err = make("mspider", &to(&[("istio", "1.22")])).unwrap_err();
    assert!(err.is_blocking());
    insta::assert_snapshot!("mspider_mixed_refusal", err.to_string());
}

#[test]
fn an_mspider_install_keeps_its_flavor_and_marks_upgrades_irreversible() {
    let mut snapshot = fixture("mspider");
    let istio = snapshot.clusters[0].istio.as_mut().unwrap();
    istio.proxies.retain(|p| p.namespace != "reports");
    let plan = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("istio", "1.22")]),
    )
    .unwrap();
    // DaoCloud's newest 1.22 build is 1.22.8-mspider.
    assert_eq!(plan.components[0].target, "1.22.8-mspider");
    let install = plan
        .steps
        .iter()
        .find(|s| s.id.contains("install-1-22-8"))
        .unwrap();
    assert!(install.irreversible && install.undo.is_none());
    assert!(run_args(install).unwrap().contains("tag=1.22.8-mspider"));
    assert!(
        run_args(install)
            .unwrap()
            .contains("hub=release.daocloud.io/mspider")
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("cannot be rolled back"))
    );
    // An explicit patch DaoCloud never shipped is refused.
    let err = self::plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("istio", "1.22.3")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("1.22.3-mspider"), "{err}");
}

fn plan_of(snapshot: &ClusterSnapshot, request: &PlanRequest) -> UpgradePlan {
    plan(snapshot, &CompatData::embedded(), request).unwrap()
}

/// The mspider fixture with its one upstream proxy gone: every component is `-mspider`.
fn mspider_only() -> ClusterSnapshot {
    let mut snapshot = fixture("mspider");
    let istio = snapshot.clusters[0].istio.as_mut().unwrap();
    istio.proxies.retain(|p| p.namespace != "reports");
    snapshot
}

#[test]
fn a_target_can_name_the_flavor_the_vendor_lists_it_by() {
    // DaoCloud's wizard lists `1.22.4-mspider`: one hop from 1.21.4-mspider, mspider images.
    let plan = plan(
        &mspider_only(),
        &CompatData::embedded(),
        &to(&[("istio", "1.22.4-mspider")]),
    )
    .unwrap();
    assert_eq!(plan.targets[0].flavor.as_deref(), Some("mspider"));
    assert_eq!(hop_targets(&plan, Mesh::Istio), ["1.22.4"]);
    assert_eq!(plan.components[0].target, "1.22.4-mspider");
    let install = plan
        .steps
        .iter()
        .find(|s| s.id.contains("install-1-22-4"))
        .unwrap();
    let args = run_args(install).unwrap();
    assert!(args.contains("tag=1.22.4-mspider"), "{args}");
    assert!(args.contains("hub=release.daocloud.io/mspider"), "{args}");
    // The same as a bare version, which keeps the installed flavor.
    let bare = plan_of(&mspider_only(), &to(&[("istio", "1.22.4")]));
    assert_eq!(bare.steps, plan.steps);

    // Upstream builds asked for on an mspider cluster: refused with DaoCloud's rule (exit 3).
    let err = self::plan(
        &mspider_only(),
        &CompatData::embedded(),
        &to(&[("istio", "1.22.4-distroless")]),
    )
    .unwrap_err();
    assert!(err.is_blocking());
    insta::assert_snapshot!("flavor_change_refused", err.to_string());
    // And mspider asked for on an upstream cluster.
    let err = make("canary", &to(&[("istio", "1.22.8-mspider")])).unwrap_err();
    assert!(err.is_blocking());
    assert!(
        err.to_string()
            .contains("mixed upgrades of different types are not supported"),
        "{err}"
    );
}

#[test]
fn distroless_is_kept_or_asked_for_and_a_change_is_flagged() {
    let mut snapshot = fixture("canary");
    let upstream = plan_of(&snapshot, &to(&[("istio", "1.22")]));
    assert!(upstream.warnings.iter().all(|w| !w.contains("distroless")));
    // Asked for on an upstream install: every image tag changes, and the plan says so.
    let asked = plan_of(&snapshot, &to(&[("istio", "1.22-distroless")]));
    let tags: Vec<String> = asked.steps.iter().filter_map(run_args).collect();
    assert!(
        tags.iter().any(|a| a.contains("tag=1.22.8-distroless")),
        "{tags:#?}"
    );
    assert!(
        tags.iter()
            .all(|a| !a.contains("tag=1.22.8 ") && !a.ends_with("tag=1.22.8"))
    );
    assert!(
        asked
            .warnings
            .iter()
            .any(|w| w.contains("--to asks for distroless builds")),
        "{:#?}",
        asked.warnings
    );
    // A distroless install keeps distroless with a bare version, and with `-distroless`, unflagged.
    for cp in &mut snapshot.clusters[0].istio.as_mut().unwrap().control_planes {
        cp.istiod.version.flavor = crate::version::Flavor::Distroless;
    }
    for request in [
        to(&[("istio", "1.22")]),
        to(&[("istio", "1.22-distroless")]),
    ] {
        let kept = plan_of(&snapshot, &request);
        let tags: Vec<String> = kept.steps.iter().filter_map(run_args).collect();
        assert!(
            tags.iter().any(|a| a.contains("tag=1.22.8-distroless")),
            "{tags:#?}"
        );
        assert!(kept.warnings.iter().all(|w| !w.contains("--to asks for")));
    }
}

#[test]
fn target_flavors_parse_as_image_tags_do() {
    let t: Target = "istio=1.22.4-mspider".parse().unwrap();
    assert_eq!(
        (t.version.to_string().as_str(), t.flavor.as_deref()),
        ("1.22.4", Some("mspider"))
    );
    let t: Target = "istio=v1.24.3-Distroless".parse().unwrap();
    assert_eq!(t.flavor(), Some(crate::version::Flavor::Distroless));
    // `-debug` is an upstream build: no flavor.
    let t: Target = "istio=1.24.3-debug".parse().unwrap();
    assert_eq!(t.flavor, None);
    let t: Target = "istio=1.24-solo".parse().unwrap();
    assert_eq!(
        t.flavor(),
        Some(crate::version::Flavor::Vendor("solo".into()))
    );
    for (bad, says) in [
        ("kmesh=1.1-mspider", "only Istio builds come in flavors"),
        ("istio=1.24.3-", "is not an image tag suffix"),
        ("istio=1.24.3-a b", "is not an image tag suffix"),
        ("istio=1.24.x-mspider", "is not a istio version"),
        ("istio=mspider", "is not a istio version"),
    ] {
        let err = bad.parse::<Target>().unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

// --- Environment detection ----------------------------------------------------------------------------

#[test]
fn a_target_too_new_for_the_cluster_names_the_kubernetes_needed() {
    let err = make("old-k8s", &to(&[("istio", "1.24")])).unwrap_err();
    assert!(err.is_blocking());
    insta::assert_snapshot!("target_too_new_for_cluster", err.to_string());
}

#[test]
fn a_kubernetes_upgrade_can_be_planned_as_a_manual_first_step() {
    let mut request = to(&[("istio", "1.24")]);
    request.include_kubernetes_upgrade = true;
    let plan = make("old-k8s", &request).unwrap();
    let first = &plan.steps[0];
    assert_eq!(first.id, "gke-staging-01-kubernetes-1-28");
    assert!(matches!(first.action, Action::Manual { .. }));
    assert_eq!(first.reason.runbook, "daocloud-wizard");
    // The path is then planned on Kubernetes 1.28.
    assert_eq!(hop_targets(&plan, Mesh::Istio), ["1.22.8", "1.24.6"]);
    insta::assert_snapshot!("kubernetes_upgrade_first_table", render_table(&plan, false));
}

#[test]
fn a_cluster_too_new_for_the_target_names_the_lowest_target_that_fits() {
    let err = make("new-k8s", &to(&[("istio", "1.23")])).unwrap_err();
    assert!(err.is_blocking());
    insta::assert_snapshot!("cluster_too_new_for_target", err.to_string());
}

// --- Bad requests and downgrades -----------------------------------------------------------------------

#[test]
fn bad_requests_are_not_blocking() {
    let cases = [
        (
            make("canary", &to(&[("istio", "1.99")])),
            "istio 1.99 is not in the compatibility data",
        ),
        (
            make("canary", &to(&[("istio", "1.19")])),
            "--allow-downgrade",
        ),
        (make("canary", &to(&[])), "no target given"),
        (
            make("canary", &to(&[("istio", "1.24"), ("istio", "1.23")])),
            "appears twice",
        ),
    ];
    for (result, expected) in cases {
        let err = result.unwrap_err();
        assert!(!err.is_blocking(), "{err}");
        assert_eq!(err.kind(), PlanErrorKind::BadRequest);
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn a_target_for_a_mesh_that_is_not_installed_has_no_path() {
    // Nothing to upgrade is an answer about the cluster (exit 3), not a malformed command line (2).
    let err = make("canary", &to(&[("kmesh", "1.1")])).unwrap_err();
    assert!(err.is_blocking(), "{err}");
    assert_eq!(err.kind(), PlanErrorKind::Blocked);
    assert!(err.to_string().contains("kmesh is not installed"), "{err}");
    assert!(err.to_string().contains("nothing to upgrade"), "{err}");
}

#[test]
fn downgrades_are_limited_and_flagged() {
    let mut request = to(&[("istio", "1.22")]);
    request.allow_downgrade = true;
    let plan = make("ambient", &request).unwrap();
    assert!(plan.hops[0].downgrade);
    assert!(plan.warnings.iter().any(|w| w.contains("DOWNGRADES")));
    let mut request = to(&[("istio", "1.18")]);
    request.allow_downgrade = true;
    let err = make("canary", &request).unwrap_err();
    assert!(
        err.is_blocking() && err.to_string().contains("at most 1 minor"),
        "{err}"
    );
}

#[test]
fn already_at_target_plans_nothing() {
    let plan = make("ambient", &to(&[("istio", "1.23.6")])).unwrap();
    assert!(plan.steps.is_empty());
    assert!(plan.warnings.iter().any(|w| w.contains("nothing to do")));
}

// --- Fingerprint --------------------------------------------------------------------------------------

#[test]
fn fingerprint_changes_with_relevant_facts_only() {
    let targets = to(&[("istio", "1.24")]).targets;
    let base = fixture("canary");
    let before = fingerprint(&base, &targets);

    let mut irrelevant = base.clone();
    irrelevant.observed_at = Some("2026-09-11T09:30:00Z".to_string());
    irrelevant.clusters[0].nodes[0]
        .names
        .push("ip-10-0-4-2.eu-west-1.compute.internal".into());
    irrelevant.clusters[0].istio.as_mut().unwrap().proxies[0].pods = 12;
    assert_eq!(fingerprint(&irrelevant, &targets), before);

    let mut relevant = base.clone();
    relevant.clusters[0].istio.as_mut().unwrap().control_planes[0]
        .istiod
        .version
        .version = Some(Version::new(1, 20, 7));
    let after = fingerprint(&relevant, &targets);
    assert_ne!(after.value, before.value);
    let diff = fingerprint_diff(&before, &after);
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert_eq!(diff[0].fact, "prod-eu/istio/revision/1-20-8/version");
    assert_eq!(
        diff[0].to_string(),
        "prod-eu/istio/revision/1-20-8/version: 1.20.8 -> 1.20.7"
    );

    let mut relabelled = base.clone();
    relabelled.clusters[0]
        .istio
        .as_mut()
        .unwrap()
        .namespaces
        .pop();
    let diff = fingerprint_diff(&before, &fingerprint(&relabelled, &targets));
    assert_eq!(diff[0].fact, "prod-eu/istio/namespace/legacy");
    assert_eq!(diff[0].after, None);
}

#[test]
fn gloo_mesh_fingerprint_covers_replicas_groups_and_registrations() {
    let targets = to(&[("gloo-mesh", "1.1")]).targets;
    let base = fixture("gloo");
    let before = fingerprint(&base, &targets);
    let mut scaled = base.clone();
    scaled.clusters[0]
        .gloo_mesh
        .as_mut()
        .unwrap()
        .discovery
        .as_mut()
        .unwrap()
        .desired = 2;
    let diff = fingerprint_diff(&before, &fingerprint(&scaled, &targets));
    assert_eq!(diff[0].fact, "mgmt-cluster/gloo-mesh/discovery");
    let mut counted = base.clone();
    counted.clusters[0]
        .gloo_mesh
        .as_mut()
        .unwrap()
        .served_groups[0]
        .counts
        .insert("workloads".into(), 40);
    assert_eq!(fingerprint(&counted, &targets), before);
}

// --- Plan files ----------------------------------------------------------------------------------------

#[test]
fn plan_files_round_trip_in_yaml_and_json() {
    let plan = make("canary", &to(&[("istio", "1.24")])).unwrap();
    let yaml = to_yaml(&plan);
    let loaded = load(&yaml).unwrap();
    assert_eq!(
        loaded.integrity.as_deref(),
        Some(integrity_of(&plan).as_str())
    );
    let mut unsealed = loaded.clone();
    unsealed.integrity = None;
    assert_eq!(unsealed, plan);
    assert_eq!(to_yaml(&loaded), yaml, "stable output");
    let json = to_json(&plan);
    assert_eq!(load(&json).unwrap(), loaded);
}

#[test]
fn a_hand_edited_plan_is_refused() {
    let plan = make("gloo", &to(&[("gloo-mesh", "1.1")])).unwrap();
    let yaml = to_yaml(&plan);
    let edited = yaml.replacen("replicas: 0", "replicas: 3", 1);
    assert_ne!(edited, yaml);
    let err = load(&edited).unwrap_err();
    assert_eq!(err, PlanFileError::IntegrityMismatch);
    assert!(err.to_string().contains("re-run `kubectl meshup plan`"));
    // A step the plan model cannot express is a schema error, not a command.
    let injected = yaml.replacen("type: run", "type: shell", 1);
    assert!(matches!(load(&injected), Err(PlanFileError::Schema { .. })));
    let unknown_field = yaml.replacen(
        "  irreversible: true",
        "  irreversible: true\n  sudo: true",
        1,
    );
    assert!(load(&unknown_field).is_err());
}

#[test]
fn truncated_and_foreign_files_are_refused_clearly() {
    let plan = make("canary", &to(&[("istio", "1.24")])).unwrap();
    let yaml = to_yaml(&plan);
    for cut in [yaml.len() / 3, yaml.len() / 2, yaml.len() - 40] {
        let err = load(&yaml[..cut]).unwrap_err();
        assert!(err.to_string().contains("kubectl meshup plan"), "{err}");
    }
    let json = to_json(&plan);
    assert!(matches!(
        load(&json[..json.len() / 2]),
        Err(PlanFileError::Syntax { .. })
    ));
    let snapshot_yaml = include_str!("../../../../tests/fixtures/plan/istio-ambient-1.23.yaml");
    assert_eq!(
        load(snapshot_yaml).unwrap_err(),
        PlanFileError::WrongKind {
            found: "ClusterSnapshot".to_string()
        }
    );
    assert_eq!(load("  \n").unwrap_err(), PlanFileError::Empty);
    let other_version = yaml.replacen("meshup.dev/v1alpha1", "meshup.dev/v9", 1);
    assert!(matches!(
        load(&other_version),
        Err(PlanFileError::WrongApiVersion { .. })
    ));
}

proptest! {
    #[test]
    fn load_never_panics(text in ".{0,400}") {
        let _ = load(&text);
    }

    #[test]
    fn load_never_panics_on_mangled_plans(cut in 0usize..4000, byte in 0u8..128) {
        let plan = make("ambient", &{
            let mut r = to(&[("istio", "1.24")]);
            r.strategy = Strategy::InPlace;
            r
        }).unwrap();
        let yaml = to_yaml(&plan);
        let mut bytes = yaml.into_bytes();
        let at = cut % bytes.len();
        bytes[at] = byte;
        let text = String::from_utf8_lossy(&bytes);
        let _ = load(&text);
        let _ = load(&text[..at.min(text.len())]);
    }
}

// --- Cross-mesh with Gloo Mesh ---------------------------------------------------------------------------

#[test]
fn istio_outside_gloo_mesh_support_blocks_in_every_registered_cluster() {
    // Gloo Mesh 0.12 supports Istio 1.7 and 1.8 only.
    let err = make("gloo", &to(&[("istio", "1.10")])).unwrap_err();
    assert!(err.is_blocking());
    let msg = err.to_string();
    assert!(
        msg.contains("Gloo Mesh 0.12") && msg.contains("1.7–1.8"),
        "{msg}"
    );
    // With Gloo Mesh upgraded first (management cluster first), 1.10 is inside 1.1's range.
    let plan = make("gloo", &to(&[("gloo-mesh", "1.1"), ("istio", "1.10")])).unwrap();
    let ids = step_ids(&plan);
    let last_gloo = ids
        .iter()
        .rposition(|id| id.contains("meshctl-check"))
        .unwrap();
    let first_istio = ids
        .iter()
        .position(|id| id.contains("install-1-10"))
        .unwrap();
    assert!(last_gloo < first_istio, "{ids:?}");
    assert!(
        ids.iter()
            .any(|id| id.starts_with("remote-cluster-") && id.contains("install-1-10"))
    );
    assert_eq!(hop_targets(&plan, Mesh::Istio), ["1.10.6", "1.10.6"]);
}

#[test]
fn only_owners_a_restart_renews_are_restarted_and_the_others_are_warned_of() {
    let mut snapshot = fixture("canary");
    let istio = snapshot.clusters[0].istio.as_mut().unwrap();
    let old_app = istio
        .proxies
        .iter()
        .find(|p| p.owner == "Deployment/old-app")
        .unwrap()
        .clone();
    for owner in [
        "CronJob/nightly-export",
        "Job/reindex-28761234",
        "ReplicaSet/handmade",
        "DaemonSet/node-agent",
    ] {
        let mut group = old_app.clone();
        group.owner = owner.to_string();
        istio.proxies.push(group);
    }
    let plan = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("istio", "1.22")]),
    )
    .unwrap();
    let legacy: Vec<String> = plan
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::RestartWorkloads {
                namespace,
                workloads,
            } if namespace == "legacy" => Some(workloads.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(legacy, ["DaemonSet/node-agent", "Deployment/old-app"]);
    let every_restarted: Vec<&String> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RestartWorkloads { workloads, .. } => Some(workloads),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        every_restarted
            .iter()
            .all(|w| Renewal::of_owner(w) == Renewal::Restart),
        "{every_restarted:?}"
    );
    let warning = |needle: &str| {
        plan.warnings
            .iter()
            .find(|w| w.contains(needle))
            .unwrap_or_else(|| panic!("no warning with {needle}: {:#?}", plan.warnings))
            .clone()
    };
    let next_run = warning("next run");
    assert!(
        next_run.ends_with("legacy/CronJob/nightly-export, legacy/Job/reindex-28761234"),
        "{next_run}"
    );
    let by_hand = warning("by hand");
    assert!(
        by_hand.ends_with("legacy/Pod/debug-shell, legacy/ReplicaSet/handmade"),
        "{by_hand}"
    );
}

fn discovery_wait(plan: &UpgradePlan) -> (String, Option<String>, Vec<String>) {
    plan.steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Wait {
                condition:
                    WaitCondition::ResourcesPresent {
                        group,
                        version,
                        resources,
                    },
                ..
            } => Some((group.clone(), version.clone(), resources.clone())),
            _ => None,
        })
        .unwrap()
}

#[test]
fn across_1_0_discovery_is_awaited_for_what_the_target_serves_not_what_was_deleted() {
    let plan = make("gloo", &to(&[("gloo-mesh", "1.1")])).unwrap();
    // 0.12 served traffictargets; 1.x discovery writes destinations instead, at the version the
    // upgraded CRDs serve (v1), so the wait pins none.
    assert_eq!(
        discovery_wait(&plan),
        (
            "discovery.mesh.gloo.solo.io".to_string(),
            None,
            vec![
                "meshes".to_string(),
                "destinations".to_string(),
                "workloads".to_string()
            ]
        )
    );
}

#[test]
fn a_discovery_resource_observed_empty_is_not_awaited_under_its_new_name_either() {
    let mut snapshot = fixture("gloo");
    let gloo = snapshot.clusters[0].gloo_mesh.as_mut().unwrap();
    let group = gloo
        .served_groups
        .iter_mut()
        .find(|g| g.group == "discovery.mesh.gloo.solo.io")
        .unwrap();
    group.counts.insert("traffictargets".into(), 0);
    let plan = plan(
        &snapshot,
        &CompatData::embedded(),
        &to(&[("gloo-mesh", "1.1")]),
    )
    .unwrap();
    assert_eq!(discovery_wait(&plan).2, ["meshes", "workloads"]);
}

#[test]
fn each_gloo_mesh_line_has_its_discovery_resources() {
    use super::runbooks::gloo_mesh::discovery_resources;
    let v = |s: &str| Version::parse(s).unwrap();
    assert_eq!(
        discovery_resources(v("0.12.3")),
        &["meshes", "traffictargets", "workloads"]
    );
    assert_eq!(
        discovery_resources(v("1.0.0")),
        &["meshes", "destinations", "workloads"]
    );
    assert_eq!(
        discovery_resources(v("1.1.2")),
        &["meshes", "destinations", "workloads"]
    );
}
