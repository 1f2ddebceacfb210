//! The compatibility data's shape. The data itself is `data/compat.json`, embedded at build time
//! (`--compat FILE` overrides it). Every row carries the `source` it was read from.

use serde::{Deserialize, Serialize};

use crate::snapshot::KmeshMode;
use crate::version::{Minor, Version};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompatData {
    pub schema_version: u32,
    /// The date the newest fact in the data was read (`YYYY-MM-DD`).
    pub date: String,
    /// The documents the data was gathered from, for `kubectl meshup version`.
    pub sources: Vec<String>,
    pub istio: IstioData,
    pub gloo_mesh: GlooMeshData,
    pub kmesh: KmeshData,
    pub mspider: MspiderData,
}

/// A value with the rule text and the document it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule<T> {
    pub value: T,
    pub rule: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioData {
    pub releases: Vec<IstioRelease>,
    /// In-place (`istioctl upgrade`, Helm in place): at most this many minors per hop.
    pub in_place_max_minors: Rule<u64>,
    /// Revision-based (canary): at most this many minors per hop.
    pub canary_max_minors: Rule<u64>,
    /// A downgrade moves at most this many minors.
    pub downgrade_max_minors: Rule<u64>,
    /// The control plane may lead the data plane by this many minors; the data plane may never lead.
    pub data_plane_max_lag_minors: Rule<u64>,
    /// ztunnel and istio-cni work with a control plane up to this many minors newer; no canary for them.
    pub ambient_components_max_lag_minors: Rule<u64>,
    /// The first release where ambient mode is GA.
    pub ambient_ga: Rule<Minor>,
    /// Each minor's upgrade notes (istio.io), for the plan's hops that cross it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgrade_notes: Vec<UpgradeNotes>,
}

/// The upgrade notes page of one Istio minor: what changes when a cluster moves to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeNotes {
    pub minor: Minor,
    /// The page on istio.io.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub source: String,
    pub notes: Vec<UpgradeNote>,
}

/// One section of an upgrade notes page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeNote {
    pub title: String,
    /// The installed settings this note changes, renames or removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<NoteSetting>,
}

/// A setting a note changes: `meshConfig.<path>`, `istiod.env.<NAME>`, `helm.<chart>[.<values path>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteSetting {
    pub path: String,
    /// `default`, `behaviour`, `removed` or `renamed`.
    pub change: String,
    /// The new name, for `renamed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioRelease {
    pub minor: Minor,
    /// Kubernetes minors istio.io lists as supported.
    pub supported_k8s: Vec<Minor>,
    /// "Tested, but not supported".
    #[serde(default)]
    pub tested_k8s: Vec<Minor>,
    /// Known patch releases (`0` is the `.0` release), ascending.
    #[serde(default)]
    pub patches: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    /// End of life (`YYYY-MM-DD`), when a date is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eol: Option<String>,
    /// `final`, `planned`, `expected` or `unknown`.
    pub eol_status: String,
    pub source: String,
    /// True where a value is inferred or truncated in the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl IstioRelease {
    /// The newest known patch of this minor (`.0` when none is recorded).
    pub fn newest_patch(&self) -> Version {
        Version::new(
            self.minor.major,
            self.minor.minor,
            self.patches.iter().copied().max().unwrap_or(0),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlooMeshData {
    pub releases: Vec<GlooMeshRelease>,
    /// Remote clusters may run this many minors behind the management cluster.
    pub remote_max_lag_minors: Rule<u64>,
    /// The changelog's BREAKING_CHANGE entries (runbook step 5), for the hops that cross their minor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaking_changes: Vec<BreakingChange>,
}

/// One BREAKING_CHANGE entry of a vendor changelog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakingChange {
    pub minor: Minor,
    /// The release it appeared in, as the changelog names it (`v1.0.0-beta4`).
    pub release: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlooMeshRelease {
    pub minor: Minor,
    pub istio: Vec<Minor>,
    /// Supported Kubernetes minors; empty when the source gives only a minimum.
    #[serde(default)]
    pub k8s: Vec<Minor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_min: Option<Minor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_patch: Option<Version>,
    /// Which upgrade procedure applies: `pre-1.0` (the ten-step runbook) or `helm` (1.x).
    pub runbook: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KmeshData {
    /// Every Linux node needs at least this kernel.
    pub kernel_min: Rule<Minor>,
    /// Dual-Engine needs istiod with `PILOT_ENABLE_AMBIENT=true`, hence at least this Istio.
    pub dual_engine_min_istio: Rule<Minor>,
    /// OS images on which Kernel-Native L7 works without Kmesh's kernel patches.
    pub kernel_native_l7_native_os: Rule<Vec<String>>,
    pub releases: Vec<KmeshRelease>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KmeshRelease {
    /// `1.1` for the `1.1.x` row; `None` for `main/latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<Minor>,
    pub mode: KmeshMode,
    pub istio: Vec<Minor>,
    pub k8s: Vec<Minor>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MspiderData {
    /// DaoCloud's customized builds and upstream builds are never mixed in one upgrade.
    pub no_mixed_upgrade: Rule<bool>,
    /// Upgrades cannot be rolled back.
    pub no_rollback: Rule<bool>,
    /// Istio versions DaoCloud ships as `-mspider` builds, as release notes list them.
    pub istio_versions: Vec<Version>,
    pub source: String,
}
