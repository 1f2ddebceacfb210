//! `UpgradePlan`: the reviewable, applicable document `plan` writes and `apply` executes.
//!
//! A plan can only express the typed actions below. An external tool is one of a fixed set, run with an
//! argument vector (never a shell), so a hand-edited plan cannot run an arbitrary command.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::version::{Flavor, Minor, Version};

pub const PLAN_KIND: &str = "UpgradePlan";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mesh {
    Istio,
    GlooMesh,
    Kmesh,
}

impl Mesh {
    /// Every mesh a plan can target, in the order `--help` lists them.
    pub const ALL: [Mesh; 3] = [Mesh::Istio, Mesh::GlooMesh, Mesh::Kmesh];

    pub fn as_str(self) -> &'static str {
        match self {
            Mesh::Istio => "istio",
            Mesh::GlooMesh => "gloo-mesh",
            Mesh::Kmesh => "kmesh",
        }
    }

    /// The product name for sentences: `Istio`, `Gloo Mesh`, `Kmesh`.
    pub fn title(self) -> &'static str {
        match self {
            Mesh::Istio => "Istio",
            Mesh::GlooMesh => "Gloo Mesh",
            Mesh::Kmesh => "Kmesh",
        }
    }
}

impl fmt::Display for Mesh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mesh {
    type Err = String;

    /// `istio`, `gloo-mesh`, `kmesh` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mesh::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let known: Vec<&str> = Mesh::ALL.iter().map(|m| m.as_str()).collect();
                format!(
                    "unknown mesh `{s}`: the known meshes are {}",
                    known.join(", ")
                )
            })
    }
}

/// `--to istio=1.24`, `--to istio=1.24.2`, or with the image flavor the vendor lists the build by:
/// `--to istio=1.22.4-mspider`, `--to istio=1.24.3-distroless`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub mesh: Mesh,
    pub version: Version,
    /// The image tag suffix asked for (`mspider`, `distroless`, `solo`); none keeps the installed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
}

/// The accepted form of a target, for messages.
pub const TARGET_FORM: &str =
    "MESH=VERSION, for example istio=1.24, istio=1.22.4-mspider, gloo-mesh=1.1.0 or kmesh=1.1";

impl Target {
    /// The flavor asked for, as the version parser reads image tags.
    pub fn flavor(&self) -> Option<Flavor> {
        self.flavor.as_deref().map(Flavor::from_suffix)
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    /// `istio=1.24`, `istio=1.22.4-mspider`, `gloo-mesh=1.1.0`, `kmesh=v1.1.0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((mesh, version)) = s.split_once('=') else {
            return Err(format!("`{s}` is not a target: use {TARGET_FORM}"));
        };
        let mesh: Mesh = mesh.parse()?;
        let text = version.trim();
        let (number, suffix) = text.split_once('-').unwrap_or((text, ""));
        let version = Version::parse(number)
            .map_err(|_| format!("`{text}` is not a {mesh} version: use {TARGET_FORM}"))?;
        let flavor = match suffix {
            "" if !text.ends_with('-') => None,
            _ if mesh != Mesh::Istio => {
                return Err(format!(
                    "`{text}`: only Istio builds come in flavors (-mspider, -distroless, a vendor suffix); use {mesh}=VERSION"
                ));
            }
            _ if suffix.is_empty()
                || !suffix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
                || suffix.len() > 63 =>
            {
                return Err(format!(
                    "`{text}`: `{suffix}` is not an image tag suffix (letters, digits, `-`, `.`, `_`); use {TARGET_FORM}"
                ));
            }
            // `1.24.3-debug` is an upstream build with a debug base image: the same as no suffix.
            _ if Flavor::from_suffix(suffix) == Flavor::Upstream => None,
            _ => Some(suffix.to_ascii_lowercase()),
        };
        Ok(Target {
            mesh,
            version,
            flavor,
        })
    }
}

/// Where the plan's helm steps take the vendors' charts from: the vendors' own repositories, or a
/// mirror per mesh (`plan --chart-repo istio=URL`), as an air-gapped site installs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRepos {
    pub istio: String,
    pub gloo_mesh: String,
}

impl Default for ChartRepos {
    fn default() -> Self {
        ChartRepos {
            istio: super::runbooks::ISTIO_CHART_REPO.to_string(),
            gloo_mesh: super::runbooks::gloo_mesh::CHART_REPO.to_string(),
        }
    }
}

impl ChartRepos {
    /// The repositories that are not the vendor's, as `(mesh, url)`.
    pub fn mirrors(&self) -> Vec<(Mesh, &str)> {
        let vendor = ChartRepos::default();
        [
            (Mesh::Istio, &self.istio, &vendor.istio),
            (Mesh::GlooMesh, &self.gloo_mesh, &vendor.gloo_mesh),
        ]
        .into_iter()
        .filter(|(_, url, vendor)| url != vendor)
        .map(|(mesh, url, _)| (mesh, url.as_str()))
        .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// A new revision beside the old one; workloads move over; the old one is removed last.
    #[default]
    Canary,
    /// The running control plane is upgraded where it is.
    InPlace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradePlan {
    pub api_version: String,
    pub kind: String,
    pub metadata: PlanMetadata,
    pub targets: Vec<Target>,
    pub strategy: Strategy,
    pub clusters: Vec<String>,
    /// The facts the plan depends on; `apply` re-observes and refuses the plan when they changed.
    pub fingerprint: Fingerprint,
    /// CURRENT -> TARGET per component, as kubeadm's plan table shows it.
    pub components: Vec<ComponentChange>,
    /// Each version hop and why it was chosen.
    pub hops: Vec<Hop>,
    /// Things the reviewer must know (downgrades, manual Kubernetes upgrades, irreversible steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
    /// sha256 over the canonical JSON of everything above; set when the plan is written, checked when
    /// it is read, so a truncated or hand-edited plan is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanMetadata {
    /// The kubectl-meshup version that made the plan.
    pub tool_version: String,
    /// The compatibility data's date.
    pub compat_data: String,
    /// Where that data came from: `built in`, the `compat update` file, or `--compat FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat_data_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// `sha256`.
    pub algorithm: String,
    /// Hex digest of `facts` in their canonical (sorted key=value lines) form.
    pub value: String,
    /// Fact name -> value, for example `cluster-a/istio/revision/1-20/version` -> `1.20.3`.
    pub facts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentChange {
    pub cluster: String,
    /// `istio`, `istio (revision 1-20)`, `gloo-mesh`, `kmesh`, `kubernetes`.
    pub component: String,
    pub current: String,
    pub target: String,
    /// The versions passed through, current first, target last.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hop {
    pub cluster: String,
    pub mesh: Mesh,
    pub from: Version,
    pub to: Version,
    pub strategy: Strategy,
    /// Why this hop: the rule that limits hop size and the support facts that allow `to`.
    pub reason: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub downgrade: bool,
    /// The upgrade notes of each minor this hop moves into, to read before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgrade_notes: Vec<HopNote>,
}

/// One upgrade note of a minor a hop crosses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HopNote {
    pub minor: Minor,
    pub title: String,
    pub url: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Stable within the plan, for example `gloo-mesh-02-scale-down-discovery`.
    pub id: String,
    pub cluster: String,
    pub title: String,
    pub reason: Reason,
    pub action: Action,
    /// The step cannot be rolled back once done; `apply` says so before running it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub irreversible: bool,
    /// How to reverse the step, where a way exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Action>,
}

/// Which runbook step or rule asks for a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reason {
    /// `gloo-mesh-pre-1.0`, `istio-canary`, `istio-in-place`, `kmesh`, `daocloud-wizard`, `check`.
    pub runbook: String,
    /// The runbook's own step, for example `step 2 of 10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub text: String,
    /// The document the runbook or rule comes from.
    pub source: String,
}

/// A Kubernetes object a step acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    /// `Deployment`, `StatefulSet`, `DaemonSet`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// External tools a plan may run. Nothing else can be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Helm,
    Istioctl,
    Meshctl,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Helm => "helm",
            Tool::Istioctl => "istioctl",
            Tool::Meshctl => "meshctl",
        }
    }

    /// The arguments that make the tool print its own (client) version without contacting a cluster
    /// or server: `istioctl version --remote=false`, `meshctl version`, `helm version --short`.
    pub fn version_args(self) -> &'static [&'static str] {
        match self {
            Tool::Helm => &["version", "--short"],
            Tool::Istioctl => &["version", "--remote=false"],
            Tool::Meshctl => &["version"],
        }
    }

    /// Where the tool's release `version` is downloaded.
    pub fn release_url(self, version: Version) -> String {
        match self {
            Tool::Helm => format!("https://github.com/helm/helm/releases/tag/v{version}"),
            Tool::Istioctl => format!("https://github.com/istio/istio/releases/tag/{version}"),
            Tool::Meshctl => {
                format!("https://github.com/solo-io/gloo-mesh/releases/tag/v{version}")
            }
        }
    }
}

/// How the pods of a proxy's owner get a new sidecar, by the owner's kind as the snapshot names it
/// (`Kind/name`: observe names a Deployment's ReplicaSet `Deployment/...`, a pod without a controller
/// `Pod/...`). The planner restarts only [`Renewal::Restart`] owners and the proxies gate judges only
/// their pods, so the two agree on what a restart can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Renewal {
    /// Deployment, StatefulSet, DaemonSet: a rolling restart replaces every pod.
    Restart,
    /// Job, CronJob: the pods of the next run are injected anew; running ones are left to finish.
    NextRun,
    /// A pod without a controller, a ReplicaSet without a Deployment (a template change does not
    /// replace its pods), any other controller: a person recreates the pods.
    ByHand,
}

impl Renewal {
    pub fn of_kind(kind: &str) -> Self {
        match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" => Renewal::Restart,
            "Job" | "CronJob" => Renewal::NextRun,
            _ => Renewal::ByHand,
        }
    }

    /// `Deployment/reviews-v1` -> `Restart`, `CronJob/nightly-export` -> `NextRun`, `Pod/x` -> `ByHand`.
    pub fn of_owner(owner: &str) -> Self {
        Renewal::of_kind(owner.split_once('/').map_or(owner, |(kind, _)| kind))
    }

    /// How such pods get the new sidecar, in a few words for messages.
    pub fn how(self) -> &'static str {
        match self {
            Renewal::Restart => "rolling restart",
            Renewal::NextRun => "next run",
            Renewal::ByHand => "recreate by hand",
        }
    }
}

/// How a scale step keeps the count it replaces, so that the matching scale-up brings it back even
/// when the journal is lost (deleted, or the API server restored from an old backup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicasBefore {
    /// A scale-down: the count found just before (or the one an earlier scale-down already recorded on
    /// the object) goes into the journal and into the object's `meshup.dev/replicas-before`
    /// annotation, written before the scale.
    Record,
    /// A scale-up: to the count the journal recorded, else the annotation's, else the plan's
    /// `replicas`; the annotation is removed afterwards.
    Restore,
}

/// The typed actions a step can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Set replicas through the `/scale` subresource. The replicas before the change are recorded in
    /// the journal so the step can be undone. With `replicasBefore`, a scale-down also keeps them on
    /// the object and the matching scale-up restores them (see [`ReplicasBefore`]).
    #[serde(rename_all = "camelCase")]
    Scale {
        target: ObjectRef,
        /// The replicas to set; for a restoring scale-up, the count observed when the plan was made,
        /// used only when neither the journal nor the object recorded one.
        replicas: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas_before: Option<ReplicasBefore>,
    },
    /// Delete every object of one resource in an API group (all namespaces unless one is given).
    #[serde(rename_all = "camelCase")]
    DeleteCollection {
        group: String,
        version: String,
        resource: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// Server-side apply (field manager `kubectl-meshup`) of manifests rendered by a Helm chart's CRDs.
    #[serde(rename_all = "camelCase")]
    ApplyCrds {
        /// The chart's name in its repository (`gloo-mesh`: `helm show crds CHART --repo REPO` looks it up
        /// in that repository's index), its repository URL and version.
        chart: String,
        repo: String,
        version: String,
    },
    /// Run an external tool with an argument vector.
    #[serde(rename_all = "camelCase")]
    Run {
        tool: Tool,
        args: Vec<String>,
        timeout_seconds: u64,
        /// Configuration the plan carries to the tool: apply writes it to a private file and passes it
        /// (`helm --values FILE`, `istioctl -f FILE`), so the upgraded component keeps the installed
        /// configuration. Part of the plan, so a reviewer sees it and the integrity hash covers it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<CarriedConfig>,
    },
    /// Wait for a condition, failing after the timeout.
    #[serde(rename_all = "camelCase")]
    Wait {
        condition: WaitCondition,
        timeout_seconds: u64,
    },
    /// Set (value `Some`) or remove (value `None`) namespace labels.
    LabelNamespace {
        namespace: String,
        labels: BTreeMap<String, Option<String>>,
    },
    /// Rolling restart (the `kubectl.kubernetes.io/restartedAt` annotation) of the workloads whose pods
    /// carry proxies in a namespace.
    #[serde(rename_all = "camelCase")]
    RestartWorkloads {
        namespace: String,
        /// `Deployment/reviews-v1`, ...: the owners recorded in the snapshot, only of the kinds a
        /// restart renews ([`Renewal::Restart`]).
        workloads: Vec<String>,
    },
    /// A health gate that must pass before the next step.
    Gate { gate: Gate },
    /// Something the tool cannot do (upgrade Kubernetes through the provider): shown, then confirmed.
    Manual {
        instructions: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<Vec<String>>,
    },
}

impl Action {
    /// The chart repository a helm run (`--repo URL`) or a CRD step takes its chart from.
    pub fn chart_repo(&self) -> Option<&str> {
        super::action::of(self).chart_repo()
    }

    /// The `type` tag, as documented.
    pub fn type_name(&self) -> &'static str {
        super::action::of(self).type_name()
    }
}

/// Configuration carried from the installed component to the tool that upgrades it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CarriedConfig {
    pub kind: ConfigKind,
    /// Where it was read, for the reviewer: `Helm release istio-system/istiod-1-30-4 (revision 2)`, or
    /// `read back from ConfigMap istio-system/istio-1-30-4 (mesh) and Deployment istiod-1-30-4`.
    pub source: String,
    /// The values (Helm) or the IstioOperator (istioctl), as a document.
    pub document: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigKind {
    /// A Helm values file: `helm … --values FILE`.
    HelmValues,
    /// An IstioOperator file: `istioctl install -f FILE`.
    IstioOperator,
}

impl ConfigKind {
    /// The flag that hands the file to the tool.
    pub fn flag(self) -> &'static str {
        match self {
            ConfigKind::HelmValues => "--values",
            ConfigKind::IstioOperator => "-f",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WaitCondition {
    /// As `kubectl rollout status`: observedGeneration caught up, all replicas updated and available.
    RolloutComplete { target: ObjectRef },
    /// Every listed resource of the group has at least one object again (Gloo Mesh "discovery is complete").
    #[serde(rename_all = "camelCase")]
    ResourcesPresent {
        group: String,
        /// Pins the group version; without it each resource is looked up at the most stable version
        /// the server serves when the wait runs (after an upgrade, the new CRDs' version).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        resources: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Gate {
    /// Every istio-proxy in the given namespaces (all when empty) reports `version`.
    #[serde(rename_all = "camelCase")]
    ProxiesAtVersion {
        version: Version,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        namespaces: Vec<String>,
    },
    /// No pod, namespace label, revision tag or webhook still uses `revision`.
    #[serde(rename_all = "camelCase")]
    RevisionUnused { revision: String },
    /// The check rules pass for the cluster (no `fail` findings).
    CheckPasses,
    /// Every Linux node runs a kernel of at least `min` (Kmesh needs eBPF features from 5.10).
    #[serde(rename_all = "camelCase")]
    NodeKernelsAtLeast { min: Minor },
    /// istiod of `revision` runs with `PILOT_ENABLE_AMBIENT=true` (Kmesh Dual-Engine needs it).
    #[serde(rename_all = "camelCase")]
    IstiodAmbientEnabled { namespace: String, revision: String },
    /// The `tool` found on the search path reports `version` as its own version (its
    /// [`Tool::version_args`] command; same major.minor, and the same patch when `version` has one):
    /// the runbooks install and manage a release with the CLI of that release.
    #[serde(rename_all = "camelCase")]
    ToolVersion { tool: Tool, version: Version },
}

impl Gate {
    /// The `kind` tag, as documented.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Gate::ProxiesAtVersion { .. } => "proxies-at-version",
            Gate::RevisionUnused { .. } => "revision-unused",
            Gate::CheckPasses => "check-passes",
            Gate::NodeKernelsAtLeast { .. } => "node-kernels-at-least",
            Gate::IstiodAmbientEnabled { .. } => "istiod-ambient-enabled",
            Gate::ToolVersion { .. } => "tool-version",
        }
    }
}
