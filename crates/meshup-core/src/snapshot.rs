//! `ClusterSnapshot`: the plain, serializable facts that `observe` reads from clusters and that `check`
//! and `plan` decide on. Nothing here talks to a cluster; a snapshot can be written to a file and read
//! back (`kubectl meshup snapshot`, `--snapshot FILE`).
//!
//! Facts are aggregates: nodes grouped by identical platform facts, proxies grouped per version,
//! namespace and owning workload. A snapshot of a 5,000-node, 150,000-pod cluster stays small.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::version::{Flavor, ImageVersion, KernelVersion, KubeVersion, Version, image_version};

pub const API_VERSION: &str = "meshup.dev/v1alpha1";
pub const SNAPSHOT_KIND: &str = "ClusterSnapshot";

/// The document `kubectl meshup snapshot` writes: one or several clusters (kube contexts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSnapshot {
    pub api_version: String,
    pub kind: String,
    /// When the facts were read (RFC 3339), for people; no rule depends on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    pub clusters: Vec<Cluster>,
}

impl ClusterSnapshot {
    pub fn new(clusters: Vec<Cluster>) -> Self {
        Self {
            api_version: API_VERSION.to_string(),
            kind: SNAPSHOT_KIND.to_string(),
            observed_at: None,
            clusters,
        }
    }
}

/// Everything observed in one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// The kube context name (or the name given on the command line); findings and steps refer to it.
    pub name: String,
    /// The API server URL, for people and for telling clusters apart; never a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub kubernetes: KubeVersion,
    #[serde(default)]
    pub nodes: Vec<NodeGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<Istio>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gloo_mesh: Option<GlooMesh>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kmesh: Option<Kmesh>,
    /// Facts that could not be read (forbidden, not found, failed) and what that leaves unjudged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<Unread>,
}

impl Cluster {
    /// The cluster's istiod revisions; none when no Istio was found.
    pub fn istio_control_planes(&self) -> &[IstioControlPlane] {
        self.istio
            .as_ref()
            .map(|i| i.control_planes.as_slice())
            .unwrap_or_default()
    }

    /// Each installed mesh's version, for people and metrics: one per istiod revision, one for Gloo
    /// Mesh, one for Kmesh; `unknown` where the version could not be read.
    pub fn mesh_versions(&self) -> Vec<MeshVersion> {
        let shown = |v: Option<&Version>| {
            v.map(|v| v.to_string())
                .unwrap_or_else(|| "unknown".to_string())
        };
        let mut out: Vec<MeshVersion> = self
            .istio_control_planes()
            .iter()
            .map(|cp| MeshVersion {
                mesh: "istio",
                revision: cp.revision.clone(),
                version: shown(cp.istiod.version.version.as_ref()),
            })
            .collect();
        if let Some(gloo) = &self.gloo_mesh {
            out.push(MeshVersion {
                mesh: "gloo-mesh",
                revision: String::new(),
                version: shown(gloo.version().as_ref()),
            });
        }
        if let Some(kmesh) = &self.kmesh {
            out.push(MeshVersion {
                mesh: "kmesh",
                revision: String::new(),
                version: shown(kmesh.daemonset.version.version.as_ref()),
            });
        }
        out
    }
}

/// One installed mesh's version ([`Cluster::mesh_versions`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeshVersion {
    /// `istio`, `gloo-mesh` or `kmesh`.
    pub mesh: &'static str,
    /// The istiod revision (`default`, `1-22`); empty for the other meshes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// `1.22.3`, or `unknown`.
    pub version: String,
}

impl std::fmt::Display for MeshVersion {
    /// `istio 1.22.3 (1-22)`, `gloo-mesh 1.0.0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.mesh, self.version)?;
        if !self.revision.is_empty() && self.revision != "default" {
            write!(f, " ({})", self.revision)?;
        }
        Ok(())
    }
}

/// Nodes that share every platform fact, with their names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeGroup {
    /// `status.nodeInfo.kernelVersion` as reported.
    pub kernel_version: String,
    /// Parsed Linux kernel; `None` for Windows nodes and unreadable strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelVersion>,
    pub os_image: String,
    /// `linux` or `windows`.
    pub operating_system: String,
    pub architecture: String,
    pub kubelet_version: String,
    pub container_runtime_version: String,
    pub names: Vec<String>,
}

impl NodeGroup {
    pub fn is_linux(&self) -> bool {
        self.operating_system.eq_ignore_ascii_case("linux")
    }
}

/// Where a version fact came from, so a finding can say how sure it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    ImageTag,
    /// The image is pinned by digest; the version came from chart labels (`app.kubernetes.io/version`,
    /// `helm.sh/chart`, `operator.istio.io/version`).
    ChartLabel,
    /// Neither could be read.
    Unknown,
}

/// A mesh component's version as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedVersion {
    /// `None` when it could not be read (see `source` and `image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    pub flavor: Flavor,
    pub source: VersionSource,
    pub image: String,
}

impl ObservedVersion {
    /// What an image reference's tag says: its version and flavor, or no version for an image pinned
    /// by digest or a tag that is not one (`latest`); observe then falls back to chart labels.
    pub fn of_image_tag(image: &str) -> ObservedVersion {
        let (version, flavor, source) = match image_version(image) {
            ImageVersion::Tagged { version, flavor } => {
                (Some(version), flavor, VersionSource::ImageTag)
            }
            ImageVersion::Digest | ImageVersion::Unreadable(_) => {
                (None, Flavor::Upstream, VersionSource::Unknown)
            }
        };
        ObservedVersion {
            version,
            flavor,
            source,
            image: image.to_string(),
        }
    }
}

/// A Deployment or DaemonSet the rules care about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    /// `Deployment` or `DaemonSet`.
    pub kind: String,
    pub version: ObservedVersion,
    /// Desired replicas (Deployment `spec.replicas`, DaemonSet `desiredNumberScheduled`).
    pub desired: u32,
    /// Ready replicas (Deployment `status.readyReplicas`, DaemonSet `numberReady`).
    pub ready: u32,
    /// The replicas an apply scaled this workload down from, as its
    /// [`REPLICAS_BEFORE_ANNOTATION`] annotation records them (present while an apply has it scaled
    /// down): what a scale-up restores, and what a plan made now counts as its replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_before: Option<u32>,
    /// How the object was installed, from its own labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallMethod>,
}

/// How a mesh component was installed, as its object shows it: the plan upgrades it the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum InstallMethod {
    /// Owned by a Helm release (the `meta.helm.sh/release-name` and `-namespace` annotations Helm sets).
    Helm { release: String, namespace: String },
    /// Installed by `istioctl install` (the `install.operator.istio.io/owning-resource` label it sets).
    Istioctl {
        #[serde(rename = "owningResource")]
        owning_resource: String,
    },
    /// Neither mark: hand-applied manifests, or an operator (Sail, a vendor's); `evidence` says what was
    /// seen (`app.kubernetes.io/managed-by: sail-operator`).
    Unknown { evidence: String },
}

/// A Helm release of a mesh chart, as Helm stored it (read from its storage Secret, never the `helm`
/// binary). `values` are the user-supplied values only (the chart's defaults are not in them), with
/// credential-looking values redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    /// Helm's release revision (`helm history`), not an Istio revision.
    pub revision: u32,
    pub status: String,
    pub chart: String,
    pub chart_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    #[serde(default)]
    pub values: serde_json::Value,
}

/// The annotation a scale-down writes on the object it scales: the replicas it had just before, so
/// the count survives a lost journal. The matching scale-up removes it.
pub const REPLICAS_BEFORE_ANNOTATION: &str = "meshup.dev/replicas-before";

impl Workload {
    /// The replicas this workload runs when no apply holds it scaled down: the desired count, or, at
    /// zero, the count a scale-down recorded (an annotation left on a running object is stale).
    pub fn usual_replicas(&self) -> u32 {
        match (self.desired, self.replicas_before) {
            (0, Some(before)) => before,
            (desired, _) => desired,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Istio {
    /// One per istiod Deployment (one per revision).
    pub control_planes: Vec<IstioControlPlane>,
    /// `istio.io/tag` revision tags: tag name -> revision it points at.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revision_tags: BTreeMap<String, String>,
    /// Injection webhooks and the revision each serves; an old revision is removable only when none
    /// points at it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<IstioWebhook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ztunnel: Option<Workload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<Workload>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<IstioGateway>,
    /// Namespaces enrolled in the mesh, with the label that enrolls them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<MeshNamespace>,
    /// Pods with an `istio-proxy` container, grouped per proxy version, namespace and owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<ProxyGroup>,
    /// The Helm releases of Istio's charts (`base`, `istiod`, `gateway`, `cni`, `ztunnel`) and of any
    /// chart that owns an Istio component, in the namespaces where the components run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_releases: Vec<HelmRelease>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioControlPlane {
    /// `istio.io/rev` label; `default` when absent.
    pub revision: String,
    pub istiod: Workload,
    /// `PILOT_ENABLE_AMBIENT` on istiod (Kmesh Dual-Engine and ambient need it).
    pub ambient_enabled: bool,
    /// The configuration this revision runs with, read back from the cluster: what a new revision
    /// installed by istioctl must be given to behave the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<IstiodConfig>,
}

/// An istiod revision's configuration as the cluster holds it: the mesh config of its ConfigMap
/// (`istio` or `istio-<rev>`, key `mesh`) and the literal env and resources of its `discovery`
/// container. Values that look like credentials are redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstiodConfig {
    /// `namespace/name` of the ConfigMap the mesh config was read from; `None` when it was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_config_map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_config: Option<serde_json::Value>,
    /// Env vars set literally on the `discovery` container (not from Secrets or fields).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The `discovery` container's resources (requests, limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<serde_json::Value>,
    /// `namespace/name` of the `installed-state[-<rev>]` IstioOperator istioctl stored at install
    /// (releases before 1.24 did), when the cluster still has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_state_name: Option<String>,
    /// Its `spec` (credential-looking values redacted): the configuration the revision was installed
    /// from, which a new revision is then given instead of what can be read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_state: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioWebhook {
    /// `MutatingWebhookConfiguration` or `ValidatingWebhookConfiguration`.
    pub kind: String,
    pub name: String,
    pub revision: String,
    /// The `istio.io/tag` this webhook implements, if it is a revision tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioGateway {
    pub workload: Workload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshNamespace {
    pub name: String,
    /// `istio-injection=enabled`, `istio.io/rev=<rev or tag>`, or `istio.io/dataplane-mode=ambient`.
    pub label: String,
    pub value: String,
}

/// How many proxies of one version run in one namespace under one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyGroup {
    pub namespace: String,
    /// The top owner found: `Deployment/reviews-v1`, `StatefulSet/db`, `Pod/standalone`.
    pub owner: String,
    /// The `istio.io/rev` the pods were injected by (`default` when unlabeled).
    pub revision: String,
    pub version: ObservedVersion,
    pub pods: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlooMesh {
    /// The management plane, when this cluster runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Workload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<Workload>,
    /// The remote-cluster agent, when this cluster is registered to a management plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Workload>,
    /// Gloo Mesh API groups the server actually serves (from discovery), with their resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub served_groups: Vec<ServedGroup>,
    /// `KubernetesCluster` resources: the clusters registered to this management plane.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registered_clusters: Vec<RegisteredCluster>,
}

impl GlooMesh {
    /// The management plane's version, from discovery (or networking).
    pub fn version(&self) -> Option<Version> {
        [&self.discovery, &self.networking, &self.agent]
            .into_iter()
            .flatten()
            .find_map(|w| w.version.version)
    }

    pub fn is_management(&self) -> bool {
        self.discovery.is_some() || self.networking.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedGroup {
    pub group: String,
    pub version: String,
    /// Plural resource names, for example `meshes`, `traffictargets`, `workloads`.
    pub resources: Vec<String>,
    /// How many objects each resource held when observed (only for the groups the runbooks touch).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredCluster {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kmesh {
    pub daemonset: Workload,
    pub mode: KmeshMode,
    /// Where the mode was read: the container argument or config that set it.
    pub mode_source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name", content = "raw")]
pub enum KmeshMode {
    /// `dual-engine` (older releases: `workload`).
    DualEngine,
    /// `kernel-native` (older releases: `ads`).
    KernelNative,
    /// A mode string this version of the tool does not know.
    Unknown(String),
}

/// A fact that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unread {
    /// What was being read, as a person would say it: `pods in all namespaces`.
    pub what: String,
    /// Why: `forbidden: list pods at the cluster scope`.
    pub reason: String,
    /// What that leaves unjudged: `the Istio data plane (proxy versions)`.
    pub leaves_unjudged: String,
}
