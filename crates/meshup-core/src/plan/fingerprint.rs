//! The facts a plan depends on, and how `apply` tells that they changed.
//!
//! Included, per cluster: the API server the context named (without any `user:pass@`: apply checks
//! before each tool step that the context still names it), the Kubernetes minor; for the targeted meshes and the meshes whose ranges
//! constrain them: component versions and flavors (as image tags), Istio revisions, tags, namespace
//! labels, the workloads that carry sidecars and the proxy versions running, gateways and ambient
//! components, Gloo Mesh Deployments with their replicas (the plan's undo restores them; while an
//! apply holds one scaled down, the count its `meshup.dev/replicas-before` annotation records), the served
//! API groups and their non-empty resources, registered clusters, Kmesh's DaemonSet and mode, and the
//! oldest Linux kernel when Kmesh is targeted. Left out on purpose: node and pod counts, object counts,
//! timestamps and anything else the steps do not depend on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Fingerprint, Mesh, Target};
use crate::snapshot::{Cluster, ClusterSnapshot, ObservedVersion, Workload};
use crate::version::{KernelVersion, image_version};

/// One fact that differs between a plan's fingerprint and the cluster now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactChange {
    pub fact: String,
    /// `None`: the fact did not exist when the plan was made.
    pub before: Option<String>,
    /// `None`: the fact no longer exists.
    pub after: Option<String>,
}

impl fmt::Display for FactChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".to_string());
        write!(
            f,
            "{}: {} -> {}",
            self.fact,
            show(&self.before),
            show(&self.after)
        )
    }
}

pub fn fingerprint(snapshot: &ClusterSnapshot, targets: &[Target]) -> Fingerprint {
    let meshes: BTreeSet<Mesh> = targets.iter().map(|t| t.mesh).collect();
    let mut facts = BTreeMap::new();
    for cluster in &snapshot.clusters {
        cluster_facts(cluster, &meshes, &mut facts);
    }
    let value = digest(&facts);
    Fingerprint {
        algorithm: "sha256".to_string(),
        value,
        facts,
    }
}

/// The facts whose values differ, were added or disappeared, in fact-name order.
pub fn fingerprint_diff(planned: &Fingerprint, now: &Fingerprint) -> Vec<FactChange> {
    let names: BTreeSet<&String> = planned.facts.keys().chain(now.facts.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let before = planned.facts.get(name);
            let after = now.facts.get(name);
            (before != after).then(|| FactChange {
                fact: name.clone(),
                before: before.cloned(),
                after: after.cloned(),
            })
        })
        .collect()
}

/// The name of the fact that records which API server `cluster` (a kube context) named.
fn server_fact(cluster: &str) -> String {
    format!("{cluster}/server")
}

/// The API server the plan was made against for `cluster`, if the plan recorded one.
pub fn recorded_server<'a>(fingerprint: &'a Fingerprint, cluster: &str) -> Option<&'a str> {
    fingerprint
        .facts
        .get(&server_fact(cluster))
        .map(String::as_str)
}

/// A server URL as the plan records it and as apply compares it: any `user:pass@` dropped (a
/// credential has no place in a plan file), no trailing `/`.
pub fn server_identity(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// Hex sha256 over `name=value` lines in name order.
pub(crate) fn digest(facts: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in facts {
        hasher.update(k.as_bytes());
        hasher.update(b"=");
        hasher.update(v.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cluster_facts(cluster: &Cluster, meshes: &BTreeSet<Mesh>, facts: &mut BTreeMap<String, String>) {
    let c = &cluster.name;
    if let Some(server) = &cluster.server {
        facts.insert(server_fact(c), server_identity(server));
    }
    let mut put = |k: String, v: String| {
        facts.insert(format!("{c}/{k}"), v);
    };
    put(
        "kubernetes/minor".into(),
        cluster.kubernetes.minor().to_string(),
    );
    // Every targeted mesh is planned against the others' ranges, so the installed neighbours count too.
    let any_target = !meshes.is_empty();

    if let Some(istio) = &cluster.istio
        && any_target
    {
        for cp in &istio.control_planes {
            let r = &cp.revision;
            put(
                format!("istio/revision/{r}/istiod"),
                workload_id(&cp.istiod),
            );
            put(
                format!("istio/revision/{r}/version"),
                tag(&cp.istiod.version),
            );
            put(
                format!("istio/revision/{r}/ambient"),
                cp.ambient_enabled.to_string(),
            );
        }
        for (t, rev) in &istio.revision_tags {
            put(format!("istio/tag/{t}"), rev.clone());
        }
        // The configuration a plan carries: a new Helm release revision (a `helm upgrade` since) or a
        // changed mesh config makes the plan stale.
        for release in &istio.helm_releases {
            put(
                format!("istio/helm/{}/{}", release.namespace, release.name),
                format!(
                    "{} {} revision {}",
                    release.chart, release.chart_version, release.revision
                ),
            );
        }
        for cp in &istio.control_planes {
            if let Some(mesh) = cp.config.as_ref().and_then(|c| c.mesh_config.as_ref()) {
                put(
                    format!("istio/revision/{}/mesh-config", cp.revision),
                    hex(&sha2::Sha256::digest(mesh.to_string().as_bytes())),
                );
            }
        }
        for ns in &istio.namespaces {
            put(
                format!("istio/namespace/{}", ns.name),
                format!("{}={}", ns.label, ns.value),
            );
        }
        let mut owners: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut versions = BTreeSet::new();
        for p in &istio.proxies {
            owners.entry(&p.namespace).or_default().insert(&p.owner);
            versions.insert(tag(&p.version));
        }
        for (ns, o) in owners {
            put(
                format!("istio/sidecars/{ns}"),
                o.into_iter().collect::<Vec<_>>().join(","),
            );
        }
        if !versions.is_empty() {
            put(
                "istio/proxy-versions".into(),
                versions.into_iter().collect::<Vec<_>>().join(","),
            );
        }
        for gw in &istio.gateways {
            let w = &gw.workload;
            put(
                format!("istio/gateway/{}/{}", w.namespace, w.name),
                tag(&w.version),
            );
        }
        for (name, w) in [("ztunnel", &istio.ztunnel), ("istio-cni", &istio.cni)] {
            if let Some(w) = w {
                put(
                    format!("istio/{name}"),
                    format!("{} {}", workload_id(w), tag(&w.version)),
                );
            }
        }
    }

    if let Some(gloo) = &cluster.gloo_mesh
        && any_target
    {
        for (role, w) in [
            ("discovery", &gloo.discovery),
            ("networking", &gloo.networking),
            ("agent", &gloo.agent),
        ] {
            if let Some(w) = w {
                put(
                    format!("gloo-mesh/{role}"),
                    format!(
                        "{} {} replicas={}",
                        workload_id(w),
                        tag(&w.version),
                        w.usual_replicas()
                    ),
                );
            }
        }
        for g in &gloo.served_groups {
            let empty: Vec<&str> = g
                .resources
                .iter()
                .filter(|r| g.counts.get(*r) == Some(&0))
                .map(String::as_str)
                .collect();
            let mut value = format!("{} {}", g.version, g.resources.join(","));
            if !empty.is_empty() {
                value.push_str(&format!(" (empty: {})", empty.join(",")));
            }
            put(format!("gloo-mesh/group/{}", g.group), value);
        }
        for rc in &gloo.registered_clusters {
            put(
                format!("gloo-mesh/registered/{}", rc.name),
                rc.namespace.clone(),
            );
        }
    }

    if let Some(kmesh) = &cluster.kmesh
        && any_target
    {
        put(
            "kmesh/daemonset".into(),
            format!(
                "{} {}",
                workload_id(&kmesh.daemonset),
                tag(&kmesh.daemonset.version)
            ),
        );
        put("kmesh/mode".into(), format!("{:?}", kmesh.mode));
    }
    if meshes.contains(&Mesh::Kmesh) && cluster.kmesh.is_some() {
        let oldest: Option<&KernelVersion> = cluster
            .nodes
            .iter()
            .filter(|g| g.is_linux())
            .filter_map(|g| g.kernel.as_ref())
            .min_by_key(|k| (k.major, k.minor, k.patch));
        if let Some(k) = oldest {
            put(
                "nodes/oldest-linux-kernel".into(),
                format!("{}.{}", k.major, k.minor),
            );
        }
    }
}

fn workload_id(w: &Workload) -> String {
    format!("{}/{}/{}", w.kind, w.namespace, w.name)
}

/// A version with its flavor as an image tag (`1.20.8-mspider`), or the image when unreadable.
fn tag(v: &ObservedVersion) -> String {
    match v.version {
        Some(version) => super::istio_install::tag_for(version, &v.flavor),
        None => match image_version(&v.image) {
            crate::version::ImageVersion::Tagged { version, flavor } => {
                super::istio_install::tag_for(version, &flavor)
            }
            _ => v.image.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_recorded_without_credentials() {
        assert_eq!(
            server_identity("https://admin:s3cret@10.0.0.1:6443/"),
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            server_identity("https://user@api.example.com/k8s/clusters/c-1"),
            "https://api.example.com/k8s/clusters/c-1"
        );
        assert_eq!(
            server_identity("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_cluster_moved_to_another_server_changes_the_fingerprint() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/istio-1.20-eks.yaml"
        ))
        .expect("example snapshot");
        let snapshot: ClusterSnapshot = serde_saphyr::from_str(&text).expect("snapshot");
        let targets = [Target {
            mesh: Mesh::Istio,
            version: crate::version::Version::new(1, 24, 0),
            flavor: None,
        }];
        let before = fingerprint(&snapshot, &targets);
        let name = snapshot.clusters[0].name.clone();
        assert_eq!(
            recorded_server(&before, &name),
            snapshot.clusters[0].server.as_deref()
        );
        let mut moved = snapshot.clone();
        moved.clusters[0].server = Some("https://u:p@other.example.com:6443".into());
        let after = fingerprint(&moved, &targets);
        assert_ne!(before.value, after.value);
        assert_eq!(
            recorded_server(&after, &name),
            Some("https://other.example.com:6443")
        );
        let changes = fingerprint_diff(&before, &after);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].fact, format!("{name}/server"));
    }
}
