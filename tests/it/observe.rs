//! observe against the fake API server, seeded with objects as the vendors' charts render them
//! (tests/fixtures/cluster/*.yaml).

use std::path::Path;

use fake_apiserver::{FakeApiServer, Fault, GenerateSpec, Generated};
use kubectl_meshup::client::{ConnectionOptions, connect};
use kubectl_meshup::compat::CompatData;
use kubectl_meshup::observe::{ObserveOptions, observe, observe_paged};
use kubectl_meshup::report::{CheckReport, Severity};
use kubectl_meshup::snapshot::{Cluster, ClusterSnapshot, KmeshMode, VersionSource};
use kubectl_meshup::version::{Distribution, Flavor, Version};

use crate::support::sidecar_pod;

fn fixture(name: &str) -> std::path::PathBuf {
    crate::support::fixture("cluster").join(name)
}

fn seeded(files: &[&str]) -> FakeApiServer {
    let server = FakeApiServer::start();
    server
        .seed_paths(files.iter().map(|f| fixture(f)))
        .expect("fixtures seed");
    server
}

async fn observe_one(server: &FakeApiServer) -> Cluster {
    let opts = ConnectionOptions {
        kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
        ..Default::default()
    };
    let targets = connect(&opts).await.expect("connect");
    let mut snapshot = observe(&targets, &ObserveOptions::default())
        .await
        .expect("observe");
    assert_eq!(snapshot.clusters.len(), 1);
    snapshot.clusters.remove(0)
}

fn v(s: &str) -> Option<Version> {
    Some(Version::parse(s).unwrap())
}

#[tokio::test]
async fn istio_canary_install_with_ambient_and_nodes() {
    let server = seeded(&[
        "nodes.yaml",
        "istio-1-22-ambient.yaml",
        "istio-1-20-digest.yaml",
    ]);
    let cluster = observe_one(&server).await;

    assert_eq!(cluster.name, "fake-apiserver");
    assert_eq!(cluster.kubernetes.version, Version::new(1, 29, 6));
    assert_eq!(cluster.kubernetes.distribution, Distribution::Eks);
    assert!(cluster.unread.is_empty(), "{:?}", cluster.unread);

    // Nodes: the two identical Amazon Linux nodes share a group; Windows has no Linux kernel.
    assert_eq!(cluster.nodes.len(), 3);
    let amzn = cluster
        .nodes
        .iter()
        .find(|g| g.os_image == "Amazon Linux 2")
        .unwrap();
    assert_eq!(amzn.names.len(), 2);
    assert_eq!(amzn.kernel.as_ref().unwrap().to_string(), "5.10.225");
    let rhel = cluster
        .nodes
        .iter()
        .find(|g| g.os_image.starts_with("Red Hat"))
        .unwrap();
    assert_eq!(rhel.kernel.as_ref().unwrap().to_string(), "4.18.0");
    let windows = cluster.nodes.iter().find(|g| !g.is_linux()).unwrap();
    assert_eq!(
        (windows.kernel.as_ref(), windows.names.as_slice()),
        (None, &["akswin000000".to_string()][..])
    );

    let istio = cluster.istio.expect("istio found");
    let revisions: Vec<&str> = istio
        .control_planes
        .iter()
        .map(|c| c.revision.as_str())
        .collect();
    assert_eq!(revisions, ["1-20", "1-22"]);
    let old = &istio.control_planes[0];
    assert_eq!(old.istiod.version.version, v("1.20.8"));
    assert_eq!(
        old.istiod.version.source,
        VersionSource::ChartLabel,
        "digest-pinned image"
    );
    assert!(!old.ambient_enabled);
    let new = &istio.control_planes[1];
    assert_eq!(new.istiod.version.version, v("1.22.3"));
    assert_eq!(new.istiod.version.source, VersionSource::ImageTag);
    assert!(new.ambient_enabled);
    assert_eq!((new.istiod.desired, new.istiod.ready), (2, 2));

    assert_eq!(
        istio.revision_tags.get("default").map(String::as_str),
        Some("1-22")
    );
    assert_eq!(istio.webhooks.len(), 2);
    let ztunnel = istio.ztunnel.as_ref().unwrap();
    assert_eq!(ztunnel.version.version, v("1.22.3"));
    assert_eq!(ztunnel.version.flavor, Flavor::Distroless);
    let cni = istio.cni.as_ref().unwrap();
    assert_eq!(
        (cni.name.as_str(), cni.desired, cni.ready),
        ("istio-cni-node", 3, 2)
    );
    assert_eq!(istio.gateways.len(), 1);
    assert_eq!(istio.gateways[0].workload.name, "istio-ingressgateway");
    assert_eq!(istio.gateways[0].revision.as_deref(), Some("1-22"));

    let enrolled: Vec<(&str, &str, &str)> = istio
        .namespaces
        .iter()
        .map(|n| (n.name.as_str(), n.label.as_str(), n.value.as_str()))
        .collect();
    assert_eq!(
        enrolled,
        [
            ("bookinfo", "istio.io/rev", "1-22"),
            ("legacy", "istio-injection", "enabled"),
            ("payments", "istio.io/dataplane-mode", "ambient"),
        ]
    );

    let proxies: Vec<(&str, &str, &str, Option<Version>, u64)> = istio
        .proxies
        .iter()
        .map(|p| {
            (
                p.namespace.as_str(),
                p.owner.as_str(),
                p.revision.as_str(),
                p.version.version,
                p.pods,
            )
        })
        .collect();
    assert_eq!(
        proxies,
        [
            ("bookinfo", "Deployment/reviews-v1", "1-22", v("1.22.3"), 2),
            ("bookinfo", "StatefulSet/ratings-db", "1-22", v("1.22.3"), 1),
            ("legacy", "Deployment/billing", "1-20", v("1.20.7"), 1),
        ]
    );
    assert!(cluster.gloo_mesh.is_none() && cluster.kmesh.is_none());
}

/// istioctl before 1.24 stored the IstioOperator it installed from as `installed-state[-<rev>]`:
/// observe reads it for an istioctl-installed revision (redacted), and only there; a cluster without
/// the IstioOperator API (most of them now) answers 404, which is no unread.
#[tokio::test]
async fn the_installed_state_istio_operator_of_an_istioctl_install_is_read() {
    let server = seeded(&["istio-1-22-ambient.yaml"]);
    let without = observe_one(&server).await;
    assert!(without.unread.is_empty(), "{:?}", without.unread);
    let cp = &without.istio.as_ref().unwrap().control_planes[0];
    assert_eq!(cp.revision, "1-22");
    assert_eq!(cp.config.as_ref().unwrap().installed_state, None);

    server
        .seed(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "istiooperators.install.istio.io"},
            "spec": {
                "group": "install.istio.io",
                "names": {"kind": "IstioOperator", "listKind": "IstioOperatorList", "plural": "istiooperators", "singular": "istiooperator", "shortNames": ["iop", "io"]},
                "scope": "Namespaced",
                "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        }))
        .unwrap();
    server
        .seed(serde_json::json!({
            "apiVersion": "install.istio.io/v1alpha1",
            "kind": "IstioOperator",
            "metadata": {"name": "installed-state-1-22", "namespace": "istio-system",
                "annotations": {"install.istio.io/ignoreReconcile": "true"}},
            "spec": {
                "profile": "ambient",
                "revision": "1-22",
                "meshConfig": {"accessLogFile": "/dev/stdout"},
                "values": {"pilot": {"env": {"EXTERNAL_CA_TOKEN": "s3cr3t"}}}
            }
        }))
        .unwrap();
    let with = observe_one(&server).await;
    assert!(with.unread.is_empty(), "{:?}", with.unread);
    let config = with.istio.as_ref().unwrap().control_planes[0]
        .config
        .clone()
        .unwrap();
    assert_eq!(
        config.installed_state_name.as_deref(),
        Some("istio-system/installed-state-1-22")
    );
    let spec = config.installed_state.unwrap();
    assert_eq!(spec["meshConfig"]["accessLogFile"], "/dev/stdout");
    assert_eq!(spec["profile"], "ambient");
    assert_eq!(
        spec["values"]["pilot"]["env"]["EXTERNAL_CA_TOKEN"],
        "[redacted]"
    );
}

#[tokio::test]
async fn pods_spanning_several_pages_fold_to_the_same_groups_with_requests_per_page() {
    let server = seeded(&["istio-1-22-ambient.yaml"]);
    server
        .seed(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();
    for i in 0..1_100 {
        let (name, proxy) = if i % 4 == 0 {
            ("cart", "1.21.6")
        } else {
            ("web", "1.22.3")
        };
        server.seed(sidecar_pod("shop", name, i, proxy)).unwrap();
    }
    server.clear_requests();
    let cluster = observe_one(&server).await;
    let shop: Vec<(String, u64)> = cluster
        .istio
        .unwrap()
        .proxies
        .into_iter()
        .filter(|p| p.namespace == "shop")
        .map(|p| (p.owner, p.pods))
        .collect();
    assert_eq!(
        shop,
        [
            ("Deployment/cart".to_string(), 275),
            ("Deployment/web".to_string(), 825)
        ]
    );
    // 1,104 pods in pages of 500: three requests, each with limit=500, the later two with a token.
    let pod_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/pods")
        .collect();
    assert_eq!(pod_requests.len(), 3, "{pod_requests:?}");
    assert!(pod_requests.iter().all(|r| r.query.contains("limit=500")));
    assert_eq!(
        pod_requests
            .iter()
            .filter(|r| r.query.contains("continue="))
            .count(),
        2
    );
}

#[tokio::test]
async fn an_expired_continue_token_restarts_the_list_without_counting_twice() {
    let server = seeded(&["istio-1-22-ambient.yaml"]);
    for i in 0..700 {
        server
            .seed(sidecar_pod("bookinfo", "web", i, "1.22.3"))
            .unwrap();
    }
    let fault = server.inject(Fault::expired_continue().on("/api/v1/pods").times(1));
    let cluster = observe_one(&server).await;
    assert_eq!(server.fault_hits(fault), 1);
    let web = cluster
        .istio
        .unwrap()
        .proxies
        .into_iter()
        .find(|p| p.owner == "Deployment/web")
        .unwrap();
    assert_eq!(web.pods, 700);
}

#[tokio::test]
async fn forbidden_pods_become_an_unread_entry_and_the_rest_is_read() {
    let server = seeded(&["nodes.yaml", "istio-1-22-ambient.yaml"]);
    server.deny("list", "", "pods");
    let cluster = observe_one(&server).await;
    assert_eq!(cluster.unread.len(), 1, "{:?}", cluster.unread);
    let unread = &cluster.unread[0];
    assert_eq!(unread.what, "pods in all namespaces");
    assert!(unread.reason.starts_with("forbidden"), "{}", unread.reason);
    assert!(unread.leaves_unjudged.contains("data plane"));
    let istio = cluster.istio.unwrap();
    assert!(istio.proxies.is_empty());
    assert_eq!(istio.control_planes.len(), 1);
    assert_eq!(cluster.nodes.len(), 3);
}

#[tokio::test]
async fn gloo_mesh_1_management_plane_groups_counts_and_registered_clusters() {
    let server = seeded(&["gloo-mesh-1-1.yaml"]);
    let cluster = observe_one(&server).await;
    let gloo = cluster.gloo_mesh.expect("gloo mesh found");
    assert_eq!(gloo.version(), v("1.1.6"));
    assert!(gloo.is_management() && gloo.agent.is_none());
    assert_eq!(gloo.discovery.as_ref().unwrap().namespace, "gloo-mesh");
    let mut groups: Vec<&str> = gloo
        .served_groups
        .iter()
        .map(|g| g.group.as_str())
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            "discovery.mesh.gloo.solo.io",
            "networking.mesh.gloo.solo.io",
            "settings.mesh.gloo.solo.io"
        ]
    );
    let discovery = gloo
        .served_groups
        .iter()
        .find(|g| g.group == "discovery.mesh.gloo.solo.io")
        .unwrap();
    assert_eq!(discovery.version, "v1");
    assert_eq!(discovery.counts.get("meshes"), Some(&2));
    assert_eq!(discovery.counts.get("workloads"), Some(&3));
    assert_eq!(discovery.counts.get("destinations"), Some(&0));
    let networking = gloo
        .served_groups
        .iter()
        .find(|g| g.group == "networking.mesh.gloo.solo.io")
        .unwrap();
    assert!(
        networking.counts.is_empty(),
        "only discovery output is counted"
    );
    let mut registered: Vec<&str> = gloo
        .registered_clusters
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    registered.sort();
    assert_eq!(registered, ["cluster-1", "cluster-2"]);
}

#[tokio::test]
async fn gloo_mesh_0_9_serves_the_smh_groups() {
    let server = seeded(&["gloo-mesh-0-9.yaml"]);
    let gloo = observe_one(&server)
        .await
        .gloo_mesh
        .expect("gloo mesh found");
    assert_eq!(gloo.version(), v("0.9.3"));
    let discovery = gloo
        .served_groups
        .iter()
        .find(|g| g.group == "discovery.smh.solo.io")
        .expect("served as the release names it");
    assert_eq!(discovery.counts.get("traffictargets"), Some(&1));
    assert_eq!(gloo.registered_clusters.len(), 1);
}

#[tokio::test]
async fn kmesh_modes_from_the_daemon_arguments() {
    for (file, version, mode) in [
        ("kmesh-dual-engine.yaml", "1.0.0", KmeshMode::DualEngine),
        (
            "kmesh-kernel-native-old.yaml",
            "0.4.1",
            KmeshMode::KernelNative,
        ),
    ] {
        let server = seeded(&[file]);
        let kmesh = observe_one(&server).await.kmesh.expect("kmesh found");
        assert_eq!(kmesh.daemonset.version.version, v(version), "{file}");
        assert_eq!(kmesh.mode, mode, "{file}");
        assert!(
            kmesh.mode_source.contains("--mode="),
            "{}",
            kmesh.mode_source
        );
        assert_eq!((kmesh.daemonset.desired, kmesh.daemonset.ready), (3, 3));
    }
}

// ----- big generated clusters: paging, restarts, planted problems -------------------------------

/// A generated cluster of 2,000 pods in 25 namespaces on 60 nodes (one old-kernel node, one
/// out-of-skew Deployment planted deep in the pod list).
fn generated() -> (FakeApiServer, Generated) {
    let server = FakeApiServer::start();
    let spec: GenerateSpec = "nodes=60,pods=2000,namespaces=25".parse().unwrap();
    let generated = server.generate(&spec).expect("generate");
    (server, generated)
}

async fn observe_with_pages(server: &FakeApiServer, page_size: u32) -> ClusterSnapshot {
    let opts = ConnectionOptions {
        kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
        ..Default::default()
    };
    let targets = connect(&opts).await.expect("connect");
    observe_paged(&targets, &ObserveOptions::default(), page_size)
        .await
        .expect("observe")
}

fn judged(snapshot: &ClusterSnapshot) -> CheckReport {
    kubectl_meshup::check::check(snapshot, &CompatData::embedded(), "2025-06-01")
}

fn pod_list_requests(server: &FakeApiServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/pods")
        .count()
}

#[tokio::test]
async fn a_check_of_a_generated_cluster_finds_the_planted_problems_with_one_request_per_page() {
    let (server, g) = generated();
    server.clear_requests();
    let report = judged(&observe_with_pages(&server, 500).await);

    let fails: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .collect();
    let kernel: Vec<_> = fails.iter().filter(|f| f.rule == "kmesh.kernel").collect();
    assert_eq!(kernel.len(), 1, "{kernel:#?}");
    assert_eq!(kernel[0].subject, format!("kernel {}", g.old_kernel));
    assert!(
        kernel[0].message.contains(&g.old_kernel_node),
        "{}",
        kernel[0].message
    );
    assert!(
        kernel[0].message.starts_with("1 node runs kernel 4.18.0"),
        "{}",
        kernel[0].message
    );

    let skew: Vec<_> = fails
        .iter()
        .filter(|f| f.rule == "istio.data-plane-skew")
        .collect();
    assert_eq!(skew.len(), 1, "{skew:#?}");
    let (ns, name) = g.skewed_deployment.split_once('/').unwrap();
    assert!(
        skew[0]
            .message
            .contains(&format!("{ns}/Deployment/{name}: {}", g.skewed_pods)),
        "{}",
        skew[0].message
    );
    assert!(
        skew[0]
            .message
            .contains("proxy 1.20.8, 2 minors behind istiod 1-22-8")
    );

    // Requests grow with pages, not objects: exactly ceil(pods / 500) pod list requests.
    assert_eq!(g.pods, 2_000);
    assert_eq!(pod_list_requests(&server), 4);
    assert!(server.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn a_list_spanning_many_pages_gives_the_same_verdicts_as_one_page() {
    let (server, _) = generated();
    server.clear_requests();
    let one_page = observe_with_pages(&server, 5_000).await;
    assert_eq!(pod_list_requests(&server), 1);
    server.clear_requests();
    let many_pages = observe_with_pages(&server, 50).await;
    assert_eq!(pod_list_requests(&server), 40);
    assert_eq!(many_pages, one_page);
    assert_eq!(judged(&many_pages), judged(&one_page));
}

#[tokio::test]
async fn an_expired_continue_token_restarts_the_pod_list_with_the_same_verdicts() {
    let (server, _) = generated();
    let clean = judged(&observe_with_pages(&server, 500).await);
    server.clear_requests();
    let fault = server.inject(Fault::expired_continue().on("/api/v1/pods").times(1));
    let restarted = judged(&observe_with_pages(&server, 500).await);
    assert_eq!(server.fault_hits(fault), 1);
    // The first page, the second answered 410, then the four pages again.
    assert_eq!(pod_list_requests(&server), 6);
    assert_eq!(restarted, clean);
}

/// The objects each Istio chart renders (`helm template` of the packaged charts of 1.30.4 and
/// 1.31.0, tests/fixtures/rendered; tests/it/real/istio.rs keeps them equal to what helm renders),
/// seeded as they are: observe's server-side selectors find istiod, its webhook, the gateway,
/// istio-cni and ztunnel.
#[tokio::test]
async fn every_component_the_istio_charts_render_is_detected() {
    for version in ["1.30.4", "1.31.0"] {
        let server = FakeApiServer::start();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rendered")
            .join(format!("istio-{version}"));
        for chart in [
            "base",
            "istiod",
            "gateway",
            "gateway-revision",
            "cni",
            "ztunnel",
        ] {
            let text = std::fs::read_to_string(dir.join(format!("{chart}.yaml"))).unwrap();
            let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
            // The kinds observe reads; the rest (CRDs, RBAC, HPA, ...) is not needed for it.
            for doc in docs.into_iter().filter(|d| {
                ["Deployment", "DaemonSet", "MutatingWebhookConfiguration"]
                    .contains(&d["kind"].as_str().unwrap_or_default())
            }) {
                server.seed(doc).unwrap();
            }
        }
        let cluster = observe_one(&server).await;
        let want = v(version);
        let istio = cluster.istio.as_ref().expect("Istio observed");
        assert_eq!(istio.control_planes.len(), 1, "{version}");
        let cp = &istio.control_planes[0];
        assert_eq!(
            (cp.revision.as_str(), cp.istiod.name.as_str()),
            ("default", "istiod")
        );
        assert_eq!(cp.istiod.version.version, want, "{version}");
        let hooks: Vec<_> = istio
            .webhooks
            .iter()
            .map(|w| (w.name.as_str(), w.revision.as_str()))
            .collect();
        assert_eq!(hooks, [("istio-sidecar-injector", "default")], "{version}");
        // Both gateways: the one named as istioctl names it (`istio: ingressgateway`) and the one
        // named as the Helm guide names it (`istio: ingress`), with the revision the chart put on
        // its pod template only. `helm template` output carries Helm's `managed-by` label but not
        // the release annotations `helm install` adds: no release to upgrade (as with a GitOps
        // tool applying rendered charts), so the install method is unknown, with that evidence.
        let gateways: Vec<_> = istio
            .gateways
            .iter()
            .map(|g| {
                (
                    g.workload.namespace.as_str(),
                    g.workload.name.as_str(),
                    g.revision.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            gateways,
            [
                ("istio-gateways", "istio-ingress", Some("canary")),
                ("istio-ingress", "istio-ingressgateway", None),
            ],
            "{version}"
        );
        for g in &istio.gateways {
            assert_eq!(
                g.workload.install,
                Some(kubectl_meshup::snapshot::InstallMethod::Unknown {
                    evidence: "app.kubernetes.io/managed-by: Helm".to_string()
                }),
                "{version}"
            );
        }
        let ztunnel = istio
            .ztunnel
            .as_ref()
            .expect("ztunnel as its chart renders it");
        assert_eq!(ztunnel.version.version, want, "{version}");
        let cni = istio
            .cni
            .as_ref()
            .expect("istio-cni as its chart renders it");
        assert_eq!(cni.name, "istio-cni-node");
        assert_eq!(cni.version.version, want, "{version}");
    }
}
