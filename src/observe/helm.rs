//! Helm releases as Helm 3 stores them: one Secret (or ConfigMap, with `HELM_DRIVER=configmap`) per
//! release revision, named `sh.helm.release.v1.<release>.v<revision>` and labelled `owner=helm`,
//! `name=<release>`, `status=deployed`, `version=<revision>`. Its `release` key holds the release as
//! base64 of gzipped JSON (on top of the base64 that a Secret's `data` adds). Read here without the
//! `helm` binary, so a plan can reinstall a component with the values it was installed with.
//!
//! Only what a plan needs is kept: the release's name, namespace and revision, its chart and version,
//! and the user-supplied values (`config`, not the chart's defaults), with values that look like
//! credentials replaced by [`REDACTED`]. The chart's templates, files and rendered manifest are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

use crate::snapshot::{HelmRelease, InstallMethod, Istio, Workload};

/// The label selector of deployed Helm release storage objects.
pub const RELEASE_SELECTOR: &str = "owner=helm,status=deployed";

/// A release larger than this once decompressed is refused (Secrets hold at most 1 MiB compressed;
/// gzip of YAML rarely expands beyond 10x).
const MAX_RELEASE_BYTES: u64 = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("the release data is not base64: {0}")]
    Base64(String),
    #[error("the release data is not gzip: {0}")]
    Gzip(String),
    #[error("the release data is larger than {} MiB once decompressed", MAX_RELEASE_BYTES >> 20)]
    TooLarge,
    #[error("the release data is not a Helm 3 release: {0}")]
    Json(String),
}

/// The charts Istio publishes (`istio/base`, `istio/istiod`, `istio/gateway`, `istio/cni`,
/// `istio/ztunnel`); their releases are kept even when no observed workload names them (`base` owns
/// only CRDs and cluster-wide objects).
pub const ISTIO_CHARTS: [&str; 5] = ["base", "istiod", "gateway", "cni", "ztunnel"];

/// A Helm storage object, Secret or ConfigMap: only its name and its `release` entry are read. A
/// Secret's `data` arrives base64-encoded by the API (decoded by [`ByteString`]); a ConfigMap's `data`
/// is the stored text itself.
#[derive(Deserialize)]
pub struct StorageObject {
    pub metadata: ObjectMeta,
    #[serde(default)]
    data: BTreeMap<String, StorageValue>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StorageValue {
    Bytes(ByteString),
    Text(String),
}

impl StorageObject {
    pub fn release(&self) -> Result<HelmRelease, ReleaseError> {
        match self.data.get("release") {
            Some(StorageValue::Bytes(b)) => decode_release(&b.0),
            Some(StorageValue::Text(t)) => decode_release(t.as_bytes()),
            None => Err(ReleaseError::Json("no `release` entry".to_string())),
        }
    }
}

/// Where to look for the releases of `istio`'s components: the namespaces the components run in and
/// the namespaces their owning releases name, and the (namespace, release) pairs that own a component.
pub fn release_scope(istio: &Istio) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut namespaces = BTreeSet::new();
    let mut owners = BTreeSet::new();
    let workloads: Vec<&Workload> = istio
        .control_planes
        .iter()
        .map(|c| &c.istiod)
        .chain(istio.gateways.iter().map(|g| &g.workload))
        .chain(istio.ztunnel.iter())
        .chain(istio.cni.iter())
        .collect();
    for w in workloads {
        namespaces.insert(w.namespace.clone());
        if let Some(InstallMethod::Helm { release, namespace }) = &w.install {
            namespaces.insert(namespace.clone());
            owners.insert((namespace.clone(), release.clone()));
        }
    }
    namespaces.retain(|n| !n.is_empty());
    (namespaces, owners)
}

/// An Istio chart's release, or one that owns an observed component.
pub fn is_wanted(release: &HelmRelease, owners: &BTreeSet<(String, String)>) -> bool {
    ISTIO_CHARTS.contains(&release.chart.as_str())
        || owners.contains(&(release.namespace.clone(), release.name.clone()))
}

/// The fields of Helm's `release.Release` that a plan needs.
#[derive(Deserialize)]
struct StoredRelease {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    version: u32,
    #[serde(default)]
    info: Option<StoredInfo>,
    chart: Option<StoredChart>,
    #[serde(default)]
    config: Option<Value>,
}

#[derive(Deserialize)]
struct StoredInfo {
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct StoredChart {
    metadata: Option<StoredChartMetadata>,
}

#[derive(Deserialize)]
struct StoredChartMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "appVersion")]
    app_version: String,
}

/// Decodes the `release` value of a Helm storage object: `stored` is the value as the object holds it
/// after the API's own base64 is undone (a Secret's `data.release` decoded once, or a ConfigMap's
/// `data.release` as is), that is base64 text of gzipped JSON.
pub fn decode_release(stored: &[u8]) -> Result<HelmRelease, ReleaseError> {
    let text: Vec<u8> = stored
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let gzipped = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| ReleaseError::Base64(e.to_string()))?;
    // Helm 3 always compresses; a release written uncompressed (very old Helm 3 betas) is plain JSON.
    let json = if gzipped.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gzipped.as_slice())
            .take(MAX_RELEASE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| ReleaseError::Gzip(e.to_string()))?;
        if out.len() as u64 > MAX_RELEASE_BYTES {
            return Err(ReleaseError::TooLarge);
        }
        out
    } else {
        gzipped
    };
    let stored: StoredRelease =
        serde_json::from_slice(&json).map_err(|e| ReleaseError::Json(e.to_string()))?;
    let metadata = stored.chart.and_then(|c| c.metadata);
    let mut values = stored.config.unwrap_or(Value::Null);
    if !values.is_object() {
        values = Value::Object(Default::default());
    }
    crate::redact::json(&mut values);
    Ok(HelmRelease {
        name: stored.name,
        namespace: stored.namespace,
        revision: stored.version,
        status: stored.info.map(|i| i.status).unwrap_or_default(),
        chart: metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        chart_version: metadata
            .as_ref()
            .map(|m| m.version.clone())
            .unwrap_or_default(),
        app_version: metadata.map(|m| m.app_version).filter(|v| !v.is_empty()),
        values,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::redact::REDACTED;

    fn stored(json: &str) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    #[test]
    fn a_release_gives_its_chart_and_user_values_with_credentials_redacted() {
        let json = r#"{"name":"istiod-1-30-4","namespace":"istio-system","version":2,
            "info":{"status":"deployed"},
            "chart":{"metadata":{"name":"istiod","version":"1.30.4","appVersion":"1.30.4"},
                     "templates":[{"name":"x","data":"eA=="}],"values":{"pilot":{"replicaCount":1}}},
            "config":{"revision":"1-30-4","meshConfig":{"accessLogFile":"/dev/stdout"},
                      "global":{"imagePullSecrets":["regcred"],"caAddress":"ca:15012"},
                      "pilot":{"env":{"TOKEN":"s3cr3t"}},"auth":{"password":"hunter2"},
                      "tls":{"cert":"-----BEGIN PRIVATE KEY-----\nabc"}},
            "manifest":"---\nkind: Deployment"}"#;
        let release = decode_release(&stored(json)).unwrap();
        assert_eq!(release.name, "istiod-1-30-4");
        assert_eq!(release.namespace, "istio-system");
        assert_eq!(release.revision, 2);
        assert_eq!(release.status, "deployed");
        assert_eq!(release.chart, "istiod");
        assert_eq!(release.chart_version, "1.30.4");
        assert_eq!(release.app_version.as_deref(), Some("1.30.4"));
        assert_eq!(release.values["revision"], "1-30-4");
        assert_eq!(release.values["meshConfig"]["accessLogFile"], "/dev/stdout");
        assert_eq!(release.values["pilot"]["env"]["TOKEN"], REDACTED);
        assert_eq!(release.values["auth"]["password"], REDACTED);
        assert_eq!(release.values["tls"]["cert"], REDACTED);
        // Not credentials: a secret's *name*, an address.
        assert_eq!(release.values["global"]["imagePullSecrets"][0], "regcred");
        assert_eq!(release.values["global"]["caAddress"], "ca:15012");
        // The chart's defaults are not the user's values.
        assert!(
            release
                .values
                .get("pilot")
                .unwrap()
                .get("replicaCount")
                .is_none()
        );
    }

    /// A release Secret the real helm 3.21.4 wrote (`helm install istio-ingress gateway-1.31.0.tgz
    /// --set revision=1-31-0 --set service.type=ClusterIP --set env.AUTH_PASSWORD=s3cr3t
    /// --set-string podAnnotations.vault\.hashicorp\.com/agent-inject-token=hunter2`, then `helm
    /// upgrade --reuse-values --set replicaCount=2`, on the real control plane; read with `kubectl get
    /// secret -o json`, managedFields dropped).
    #[test]
    fn a_release_secret_written_by_the_real_helm_decodes() {
        let secret: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/helm/sh.helm.release.v1.istio-ingress.v2.json"
        ))
        .unwrap();
        assert_eq!(secret["type"], "helm.sh/release.v1");
        // The Secret's data is base64 (the API), of helm's own base64 of gzipped JSON.
        let stored = base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["release"].as_str().unwrap())
            .unwrap();
        let release = decode_release(&stored).unwrap();
        assert_eq!(
            (release.name.as_str(), release.namespace.as_str()),
            ("istio-ingress", "istio-ingress")
        );
        assert_eq!(release.revision, 2);
        assert_eq!(release.status, "deployed");
        assert_eq!(
            (release.chart.as_str(), release.chart_version.as_str()),
            ("gateway", "1.31.0")
        );
        assert_eq!(release.app_version.as_deref(), Some("1.31.0"));
        // The user's values of both commands (`--reuse-values` kept the first), nothing of the
        // chart's defaults, and what looks like a credential redacted.
        assert_eq!(
            release.values,
            serde_json::json!({
                "env": {"AUTH_PASSWORD": REDACTED},
                "podAnnotations": {"vault.hashicorp.com/agent-inject-token": REDACTED},
                "replicaCount": 2,
                "revision": "1-31-0",
                "service": {"type": "ClusterIP"}
            })
        );
    }

    #[test]
    fn a_release_without_user_values_has_an_empty_object() {
        let json = r#"{"name":"istio-base","namespace":"istio-system","version":1,
            "info":{"status":"deployed"},"chart":{"metadata":{"name":"base","version":"1.30.4"}},
            "config":null}"#;
        let release = decode_release(&stored(json)).unwrap();
        assert_eq!(release.values, serde_json::json!({}));
        assert_eq!(release.app_version, None);
    }

    #[test]
    fn damaged_release_data_is_refused_with_its_cause() {
        assert!(matches!(
            decode_release(b"not base64!"),
            Err(ReleaseError::Base64(_))
        ));
        let not_json = base64::engine::general_purpose::STANDARD.encode(b"\x1f\x8bnot gzip");
        assert!(matches!(
            decode_release(not_json.as_bytes()),
            Err(ReleaseError::Gzip(_))
        ));
        assert!(matches!(
            decode_release(&stored("[1,2]")),
            Err(ReleaseError::Json(_))
        ));
    }

    #[test]
    fn a_release_that_inflates_past_the_limit_is_refused() {
        let big = format!(
            r#"{{"name":"x","config":{{"pad":"{}"}}}}"#,
            "a".repeat((MAX_RELEASE_BYTES + 10) as usize)
        );
        assert_eq!(
            decode_release(&stored(&big)).unwrap_err(),
            ReleaseError::TooLarge
        );
    }
}
