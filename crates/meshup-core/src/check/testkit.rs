//! Builders for small snapshots in rule tests, and the example snapshots in `examples/`.

use super::check;
use crate::compat::CompatData;
use crate::report::{CheckReport, Finding};
use crate::snapshot::{
    Cluster, ClusterSnapshot, GlooMesh, Istio, IstioControlPlane, Kmesh, KmeshMode, NodeGroup,
    ObservedVersion, ProxyGroup, RegisteredCluster, Workload,
};
use crate::version::{KernelVersion, KubeVersion};

/// The evaluation date the tests pin.
pub const TODAY: &str = "2026-11-21";

pub fn cluster(name: &str, git_version: &str) -> Cluster {
    Cluster {
        name: name.to_string(),
        server: None,
        kubernetes: KubeVersion::from_server(git_version, "", "").expect("test server version"),
        nodes: Vec::new(),
        istio: None,
        gloo_mesh: None,
        kmesh: None,
        unread: Vec::new(),
    }
}

/// What observe records for an image: the tag's version and flavor, or nothing for a digest.
pub fn observed(image: &str) -> ObservedVersion {
    ObservedVersion::of_image_tag(image)
}

pub fn workload(namespace: &str, name: &str, kind: &str, image: &str) -> Workload {
    Workload {
        namespace: namespace.to_string(),
        name: name.to_string(),
        kind: kind.to_string(),
        version: observed(image),
        desired: 1,
        ready: 1,
        install: None,
        replicas_before: None,
    }
}

pub fn istiod(revision: &str, image: &str) -> IstioControlPlane {
    let name = if revision == "default" {
        "istiod".to_string()
    } else {
        format!("istiod-{revision}")
    };
    IstioControlPlane {
        revision: revision.to_string(),
        istiod: workload("istio-system", &name, "Deployment", image),
        ambient_enabled: false,
        config: None,
    }
}

pub fn istio(control_planes: Vec<IstioControlPlane>) -> Istio {
    Istio {
        control_planes,
        revision_tags: Default::default(),
        webhooks: Vec::new(),
        ztunnel: None,
        cni: None,
        gateways: Vec::new(),
        namespaces: Vec::new(),
        proxies: Vec::new(),
        helm_releases: Vec::new(),
    }
}

pub fn proxies(namespace: &str, owner: &str, revision: &str, image: &str, pods: u64) -> ProxyGroup {
    ProxyGroup {
        namespace: namespace.to_string(),
        owner: owner.to_string(),
        revision: revision.to_string(),
        version: observed(image),
        pods,
    }
}

pub fn linux_nodes(kernel: &str, os_image: &str, names: &[&str]) -> NodeGroup {
    NodeGroup {
        kernel_version: kernel.to_string(),
        kernel: KernelVersion::parse(kernel),
        os_image: os_image.to_string(),
        operating_system: "linux".to_string(),
        architecture: "amd64".to_string(),
        kubelet_version: "v1.29.6".to_string(),
        container_runtime_version: "containerd://1.7.11".to_string(),
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

pub fn windows_nodes(names: &[&str]) -> NodeGroup {
    NodeGroup {
        kernel_version: "10.0.20348.2527".to_string(),
        kernel: None,
        os_image: "Windows Server 2022 Datacenter".to_string(),
        operating_system: "windows".to_string(),
        architecture: "amd64".to_string(),
        kubelet_version: "v1.29.6".to_string(),
        container_runtime_version: "containerd://1.7.11".to_string(),
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

pub fn kmesh(image: &str, mode: KmeshMode) -> Kmesh {
    Kmesh {
        daemonset: workload("kmesh-system", "kmesh", "DaemonSet", image),
        mode,
        mode_source: "container argument --mode".to_string(),
    }
}

pub fn gloo_management(image_tag: &str, registered: &[&str]) -> GlooMesh {
    GlooMesh {
        discovery: Some(workload(
            "gloo-mesh",
            "discovery",
            "Deployment",
            &format!("gcr.io/gloo-mesh/gloo-mesh:{image_tag}"),
        )),
        networking: Some(workload(
            "gloo-mesh",
            "networking",
            "Deployment",
            &format!("gcr.io/gloo-mesh/gloo-mesh:{image_tag}"),
        )),
        agent: None,
        served_groups: Vec::new(),
        registered_clusters: registered
            .iter()
            .map(|n| RegisteredCluster {
                name: n.to_string(),
                namespace: "gloo-mesh".to_string(),
            })
            .collect(),
    }
}

pub fn gloo_agent(image_tag: &str) -> GlooMesh {
    GlooMesh {
        discovery: None,
        networking: None,
        agent: Some(workload(
            "gloo-mesh",
            "cert-agent",
            "Deployment",
            &format!("gcr.io/gloo-mesh/cert-agent:{image_tag}"),
        )),
        served_groups: Vec::new(),
        registered_clusters: Vec::new(),
    }
}

/// Checks the clusters with the embedded data at [`TODAY`].
pub fn run(clusters: Vec<Cluster>) -> CheckReport {
    check(
        &ClusterSnapshot::new(clusters),
        &CompatData::embedded(),
        TODAY,
    )
}

/// The findings of one rule.
pub fn of<'a>(report: &'a CheckReport, rule: &str) -> Vec<&'a Finding> {
    report.findings.iter().filter(|f| f.rule == rule).collect()
}

/// The one finding of a rule; fails the test when there are none or several.
pub fn only<'a>(report: &'a CheckReport, rule: &str) -> &'a Finding {
    match of(report, rule).as_slice() {
        [one] => one,
        other => panic!("expected one {rule} finding, got {other:#?}"),
    }
}

pub const EXAMPLES: [&str; 3] = [
    "examples/istio-1.20-eks.yaml",
    "examples/gloo-mesh-fleet.yaml",
    "examples/kmesh.yaml",
];

pub fn load_example(path: &str) -> ClusterSnapshot {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

pub fn example_reports() -> Vec<CheckReport> {
    EXAMPLES
        .iter()
        .map(|p| check(&load_example(p), &CompatData::embedded(), TODAY))
        .collect()
}
