//! Gloo Mesh Open Source: the management plane (`discovery`, `networking`), the remote agent, the API
//! groups the server actually serves (never the seed's spelling), and registered clusters.

use k8s_openapi::api::apps::v1::Deployment;

use super::workload::from_deployment;
use crate::snapshot::Workload;

/// Deployments that may belong to Gloo Mesh, narrowed server-side by their `app` label.
pub const DEPLOYMENT_SELECTOR: &str = "app in (discovery,networking,cert-agent,csr-agent)";

/// The group that holds `KubernetesCluster` resources.
pub const MULTICLUSTER_GROUP: &str = "multicluster.solo.io";

/// Gloo Mesh's own API groups: `discovery.mesh.gloo.solo.io` (1.x), `discovery.smh.solo.io` (0.x) and
/// their siblings.
pub fn is_gloo_group(group: &str) -> bool {
    group.ends_with(".solo.io") && (group.contains("mesh.gloo") || group.contains("smh"))
}

/// Groups whose object counts the runbooks need (the discovery output that an upgrade deletes).
pub fn counts_objects(group: &str) -> bool {
    is_gloo_group(group) && group.starts_with("discovery.")
}

/// Which Gloo Mesh part a Deployment is, if it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Discovery,
    Networking,
    Agent,
}

/// Classifies a Deployment by name (or `app` label) and confirms it is Gloo Mesh by its image or its
/// namespace, so an unrelated `discovery` Deployment is not taken for Gloo Mesh.
pub fn classify(d: &Deployment) -> Option<(Part, Workload)> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let app = d
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("app"))
        .map(String::as_str)
        .unwrap_or_default();
    let part = [name, app].iter().find_map(|n| match *n {
        "discovery" => Some(Part::Discovery),
        "networking" => Some(Part::Networking),
        "cert-agent" | "csr-agent" => Some(Part::Agent),
        _ => None,
    })?;
    let workload = from_deployment(d, name);
    let namespace = workload.namespace.as_str();
    let image = workload.version.image.as_str();
    let is_gloo = ["gloo-mesh", "service-mesh-hub", "solo-io"]
        .iter()
        .any(|marker| image.contains(marker) || namespace == *marker);
    is_gloo.then_some((part, workload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gloo_groups_are_recognised_by_shape_not_by_one_spelling() {
        for g in [
            "discovery.mesh.gloo.solo.io",
            "networking.mesh.gloo.solo.io",
            "settings.mesh.gloo.solo.io",
            "discovery.smh.solo.io",
            "networking.enterprise.mesh.gloo.solo.io",
        ] {
            assert!(is_gloo_group(g), "{g}");
        }
        for g in [
            "multicluster.solo.io",
            "gateway.solo.io",
            "networking.istio.io",
        ] {
            assert!(!is_gloo_group(g), "{g}");
        }
        assert!(counts_objects("discovery.mesh.gloo.solo.io"));
        assert!(!counts_objects("networking.mesh.gloo.solo.io"));
    }

    #[test]
    fn an_unrelated_discovery_deployment_is_not_gloo_mesh() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "discovery", "namespace": "search", "labels": {"app": "discovery"}},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "discovery", "image": "example.com/search/discovery:2.1.0"}]}}}
        }))
        .unwrap();
        assert!(classify(&d).is_none());
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "discovery", "namespace": "gloo-mesh", "labels": {"app": "discovery"}},
            "spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [{"name": "discovery", "image": "gcr.io/gloo-mesh/gloo-mesh:1.1.6"}]}}}
        }))
        .unwrap();
        let (part, w) = classify(&d).unwrap();
        assert_eq!(part, Part::Discovery);
        assert_eq!(w.version.version.unwrap().to_string(), "1.1.6");
    }
}
