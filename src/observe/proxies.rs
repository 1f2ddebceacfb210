//! The Istio data plane: pods carrying an `istio-proxy` container (a sidecar, or a native sidecar in
//! `initContainers`), folded page by page into groups per namespace, owner, revision and proxy image.
//! The pod list itself is never kept.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::paging::{Meta, null_as_default};
use super::workload::observed_version;
use crate::snapshot::ProxyGroup;

const PROXY_CONTAINER: &str = "istio-proxy";

/// The fields of a Pod that observe reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodFacts {
    pub metadata: Meta,
    #[serde(deserialize_with = "null_as_default")]
    pub spec: PodSpecFacts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpecFacts {
    #[serde(deserialize_with = "null_as_default")]
    pub containers: Vec<ContainerFacts>,
    #[serde(deserialize_with = "null_as_default")]
    pub init_containers: Vec<ContainerFacts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContainerFacts {
    pub name: String,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    namespace: String,
    owner: String,
    revision: String,
    image: String,
}

/// Proxy counts per namespace, owner, revision and image.
#[derive(Debug, Default)]
pub struct ProxyFold(BTreeMap<GroupKey, u64>);

impl ProxyFold {
    pub fn add(&mut self, pod: PodFacts) {
        let Some(image) = proxy_image(&pod.spec) else {
            return;
        };
        let key = GroupKey {
            owner: owner_of(&pod.metadata),
            revision: revision_of(&pod.metadata),
            namespace: pod.metadata.namespace,
            image: image.to_string(),
        };
        *self.0.entry(key).or_default() += 1;
    }

    pub fn finish(self) -> Vec<ProxyGroup> {
        self.0
            .into_iter()
            .map(|(key, pods)| ProxyGroup {
                version: observed_version(&key.image, &BTreeMap::new()),
                namespace: key.namespace,
                owner: key.owner,
                revision: key.revision,
                pods,
            })
            .collect()
    }
}

/// The image of the pod's `istio-proxy` container, unless it is ztunnel: the ztunnel chart names its
/// container `istio-proxy` too, but ztunnel is judged as an ambient component, not as a proxy.
fn proxy_image(spec: &PodSpecFacts) -> Option<&str> {
    spec.containers
        .iter()
        .chain(&spec.init_containers)
        .find(|c| c.name == PROXY_CONTAINER)
        .map(|c| c.image.as_str())
        .filter(|image| !is_ztunnel(image))
}

/// `docker.io/istio/ztunnel:1.22.8-distroless`, `gcr.io/istio-release/ztunnel@sha256:…`.
fn is_ztunnel(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let repository = without_digest.rsplit('/').next().unwrap_or(without_digest);
    repository.split(':').next() == Some("ztunnel")
}

/// The top owner that can be named from the pod alone: a ReplicaSet's Deployment is its name without
/// the `pod-template-hash` suffix (no request per pod). The one owner-naming rule: observe names
/// `ProxyGroup::owner` with it and apply's proxy gate names the pods it counts with it, so the owners
/// the planner restarts are the owners the gate judges.
pub fn owner_of(meta: &Meta) -> String {
    let owner = meta
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| meta.owner_references.first());
    match owner {
        None => format!("Pod/{}", meta.name),
        Some(o) if o.kind == "ReplicaSet" => match deployment_of_replicaset(&o.name, meta) {
            Some(deployment) => format!("Deployment/{deployment}"),
            None => format!("ReplicaSet/{}", o.name),
        },
        Some(o) => format!("{}/{}", o.kind, o.name),
    }
}

fn deployment_of_replicaset<'a>(replicaset: &'a str, meta: &Meta) -> Option<&'a str> {
    let hash = meta.labels.get("pod-template-hash")?;
    replicaset
        .strip_suffix(hash.as_str())?
        .strip_suffix('-')
        .filter(|d| !d.is_empty())
}

#[derive(Deserialize)]
struct SidecarStatus {
    revision: Option<String>,
}

/// `istio.io/rev` on the pod, else the revision recorded by the injector in `sidecar.istio.io/status`,
/// else `default`.
fn revision_of(meta: &Meta) -> String {
    if let Some(rev) = meta.labels.get("istio.io/rev").filter(|r| !r.is_empty()) {
        return rev.clone();
    }
    meta.annotations
        .get("sidecar.istio.io/status")
        .and_then(|s| serde_json::from_str::<SidecarStatus>(s).ok())
        .and_then(|s| s.revision)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::VersionSource;
    use crate::version::Version;

    fn pod(json: serde_json::Value) -> PodFacts {
        serde_json::from_value(json).unwrap()
    }

    fn sidecar_pod(name: &str, rs: &str, hash: &str, image: &str) -> PodFacts {
        pod(serde_json::json!({
            "metadata": {"name": name, "namespace": "bookinfo",
                "labels": {"app": "reviews", "pod-template-hash": hash},
                "annotations": {"sidecar.istio.io/status": "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"revision\":\"1-22\"}"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "controller": true}]},
            "spec": {"containers": [{"name": "reviews", "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.20.1"},
                                     {"name": "istio-proxy", "image": image}]}
        }))
    }

    #[test]
    fn sidecars_group_per_owner_revision_and_version() {
        let mut fold = ProxyFold::default();
        for i in 0..3 {
            fold.add(sidecar_pod(
                &format!("reviews-v1-7f6d8c9b5-{i}"),
                "reviews-v1-7f6d8c9b5",
                "7f6d8c9b5",
                "docker.io/istio/proxyv2:1.22.3",
            ));
        }
        fold.add(sidecar_pod(
            "reviews-v1-5c4d-x",
            "reviews-v1-5c4d",
            "5c4d",
            "docker.io/istio/proxyv2:1.21.6",
        ));
        fold.add(pod(serde_json::json!({
            "metadata": {"name": "plain", "namespace": "bookinfo"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
        })));
        let groups = fold.finish();
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert!(groups.iter().all(|g| g.owner == "Deployment/reviews-v1"));
        assert!(groups.iter().all(|g| g.revision == "1-22"));
        let new = groups
            .iter()
            .find(|g| g.version.version == Some(Version::new(1, 22, 3)))
            .unwrap();
        assert_eq!(new.pods, 3);
        assert_eq!(new.version.source, VersionSource::ImageTag);
    }

    #[test]
    fn native_sidecars_in_init_containers_count() {
        let mut fold = ProxyFold::default();
        fold.add(pod(serde_json::json!({
            "metadata": {"name": "db-0", "namespace": "data", "labels": {"istio.io/rev": "canary"},
                "ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": true}]},
            "spec": {"initContainers": [{"name": "istio-proxy", "image": "gcr.io/istio-release/proxyv2:1.24.1", "restartPolicy": "Always"}],
                     "containers": [{"name": "postgres", "image": "postgres:16"}]}
        })));
        let groups = fold.finish();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].owner, "StatefulSet/db");
        assert_eq!(groups[0].revision, "canary");
    }

    #[test]
    fn ztunnel_pods_are_not_proxies() {
        let mut fold = ProxyFold::default();
        for image in [
            "docker.io/istio/ztunnel:1.22.8-distroless",
            "gcr.io/istio-release/ztunnel@sha256:0a1b2c",
        ] {
            fold.add(pod(serde_json::json!({
                "metadata": {"name": "ztunnel-x7k2p", "namespace": "istio-system", "labels": {"app": "ztunnel"},
                    "ownerReferences": [{"kind": "DaemonSet", "name": "ztunnel", "controller": true}]},
                "spec": {"containers": [{"name": "istio-proxy", "image": image}]}
            })));
        }
        assert!(fold.finish().is_empty());
    }

    #[test]
    fn standalone_pods_and_replicasets_without_hash() {
        let meta: Meta = serde_json::from_value(serde_json::json!({"name": "debug"})).unwrap();
        assert_eq!(owner_of(&meta), "Pod/debug");
        let meta: Meta = serde_json::from_value(serde_json::json!({
            "name": "x", "ownerReferences": [{"kind": "ReplicaSet", "name": "handmade"}]
        }))
        .unwrap();
        assert_eq!(owner_of(&meta), "ReplicaSet/handmade");
        assert_eq!(revision_of(&meta), "default");
    }
}
