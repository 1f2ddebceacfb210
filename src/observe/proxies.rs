//! The Istio data plane: pods carrying an `istio-proxy` container (a sidecar, or a native sidecar in
//! `initContainers`), folded page by page into groups per namespace, owner, revision and proxy image.
//! The pod list itself is never kept.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::paging::{Meta, OwnerRef, null_as_default};
use super::workload::observed_version;
use crate::snapshot::ProxyGroup;

const PROXY_CONTAINER: &str = "istio-proxy";

/// The fields of a Pod that observe reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodFacts {
    #[serde(deserialize_with = "pod_meta")]
    pub metadata: Meta,
    #[serde(deserialize_with = "null_as_default")]
    pub spec: PodSpecFacts,
}

/// The pod labels the fold reads (owner and revision); every other label is skipped while parsing.
const POD_LABELS: &[&str] = &["pod-template-hash", "istio.io/rev"];
/// The pod annotations the fold reads.
const POD_ANNOTATIONS: &[&str] = &["sidecar.istio.io/status"];

/// A pod's [`Meta`] with only the labels and annotations in [`POD_LABELS`] and [`POD_ANNOTATIONS`]:
/// at 150,000 pods the others are millions of strings that would be allocated and dropped unread.
fn pod_meta<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Meta, D::Error> {
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    struct PodMeta {
        name: String,
        namespace: String,
        #[serde(deserialize_with = "kept_labels")]
        labels: BTreeMap<String, String>,
        #[serde(deserialize_with = "kept_annotations")]
        annotations: BTreeMap<String, String>,
        #[serde(deserialize_with = "null_as_default")]
        owner_references: Vec<OwnerRef>,
    }
    fn kept_labels<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, String>, D::Error> {
        d.deserialize_option(KeptEntries(POD_LABELS))
    }
    fn kept_annotations<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, String>, D::Error> {
        d.deserialize_option(KeptEntries(POD_ANNOTATIONS))
    }
    let m = Option::<PodMeta>::deserialize(d)?.unwrap_or_default();
    Ok(Meta {
        name: m.name,
        namespace: m.namespace,
        labels: m.labels,
        annotations: m.annotations,
        owner_references: m.owner_references,
    })
}

/// Reads a string map (or null) keeping only the entries whose key is in the list; keys are compared
/// without allocating (borrowed from the page unless they contain escapes) and other values skipped.
struct KeptEntries(&'static [&'static str]);

impl<'de> serde::de::Visitor<'de> for KeptEntries {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of strings or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut kept = BTreeMap::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if self.0.contains(&key.0.as_ref()) {
                kept.insert(key.0.into_owned(), map.next_value::<String>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(kept)
    }
}

/// A map key, borrowed from the input where it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
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
        .filter(|image| !is_ztunnel_image(image))
}

/// `docker.io/istio/ztunnel:1.22.8-distroless`, `gcr.io/istio-release/ztunnel@sha256:…`.
pub fn is_ztunnel_image(image: &str) -> bool {
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
/// else `default`. (istiod's injector writes `istio.io/rev` as an annotation, so an injected pod
/// carries the label only when its template did.)
pub fn revision_of(meta: &Meta) -> String {
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
    fn pod_metadata_keeps_only_the_labels_and_annotations_the_fold_reads() {
        let page = br#"{"metadata":{"name":"p","namespace":"n",
            "labels":{"app":"x","pod-template-hash":"abc","istio.io\/rev":"1-22","big":"\u00e9"},
            "annotations":{"kubectl.kubernetes.io/restartedAt":"t","sidecar.istio.io/status":"{\"revision\":\"r\"}"},
            "ownerReferences":null},"spec":null}"#;
        let pod: PodFacts = serde_json::from_slice(page).unwrap();
        let labels: Vec<_> = pod.metadata.labels.iter().collect();
        assert_eq!(
            labels,
            [
                (&"istio.io/rev".to_string(), &"1-22".to_string()),
                (&"pod-template-hash".to_string(), &"abc".to_string())
            ]
        );
        assert_eq!(
            pod.metadata
                .annotations
                .get("sidecar.istio.io/status")
                .map(String::as_str),
            Some(r#"{"revision":"r"}"#)
        );
        assert_eq!(pod.metadata.annotations.len(), 1);
        let bare: PodFacts =
            serde_json::from_slice(br#"{"metadata":{"name":"q","labels":null}}"#).unwrap();
        assert_eq!(bare.metadata.name, "q");
        assert!(bare.metadata.labels.is_empty() && bare.metadata.annotations.is_empty());
        let null_meta: PodFacts = serde_json::from_slice(br#"{"metadata":null}"#).unwrap();
        assert!(null_meta.metadata.name.is_empty());
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
