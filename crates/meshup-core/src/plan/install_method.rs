//! How the installed Istio was installed, and the configuration a plan carries so the upgraded
//! control plane behaves like the old one. Istio's guidance: keep the method the mesh was installed
//! with (a mesh installed by istioctl is upgraded with istioctl, one installed by Helm with Helm) and
//! give the new revision the same configuration.
//!
//! - Helm: the user-supplied values of the release that owns istiod (read from Helm's storage, the
//!   chart's defaults not included), carried as a values file: `--reset-values --values FILE` takes the
//!   new chart's defaults plus the user's values, which `--reuse-values` across chart versions does not.
//! - istioctl: the configuration read back from the cluster (mesh config, user env, resources) as an
//!   IstioOperator file for `istioctl install -f`.
//! - Anything else (hand-applied manifests, an operator): the plan does not invent an install command.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::snapshot::{
    HelmRelease, InstallMethod, Istio, IstioControlPlane, IstiodConfig, Workload,
};

use super::model::{CarriedConfig, ConfigKind};

/// Env vars the istiod chart sets itself (istio-control/istio-discovery/templates/deployment.yaml): a
/// new revision gets its own, so they are not carried.
const CHART_ENV: [&str; 19] = [
    "CA_TRUSTED_NODE_ACCOUNTS",
    "CLUSTER_ID",
    "EXTERNAL_ISTIOD",
    "GODEBUG",
    "GOMAXPROCS",
    "GOMEMLIMIT",
    "ISTIOD_CUSTOM_HOST",
    "KUBECONFIG",
    "PILOT_CA_CERT_CONFIGMAP",
    "PILOT_CERT_PROVIDER",
    "PILOT_CRL_CONFIGMAP",
    "PILOT_ENABLE_ANALYSIS",
    "PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS",
    "PILOT_NODE_UNTAINT_CONTROLLERS_TAINT_NAME",
    "PILOT_TRACE_SAMPLING",
    "PLATFORM",
    "POD_NAME",
    "POD_NAMESPACE",
    "REVISION",
];

/// How the planner upgrades a cluster's Istio.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Method {
    /// Installed by Helm; the releases were read.
    Helm {
        /// The release of the `istiod` chart that owns the oldest control plane.
        istiod: Box<HelmRelease>,
        /// The `base` chart's release, when there is one.
        base: Option<Box<HelmRelease>>,
    },
    /// Installed by istioctl.
    Istioctl {
        /// `None` when the snapshot holds no read-back configuration.
        config: Option<CarriedConfig>,
    },
    /// The snapshot does not say (written by an older kubectl-meshup, before the method was read):
    /// each strategy plans as it did then (a canary with istioctl, in place with Helm reusing the
    /// release's values), and the plan warns.
    NotRecorded,
    /// Installed some other way, or by Helm with releases that could not be read: a person runs the
    /// install with the configuration the plan shows.
    Unknown { evidence: String },
}

impl Method {
    /// The method of `cp` (the oldest control plane) in `istio`.
    pub fn read(istio: &Istio, cp: &IstioControlPlane) -> Method {
        match &cp.istiod.install {
            Some(InstallMethod::Helm { release, namespace }) => {
                match find_release(istio, namespace, release) {
                    Some(istiod) => Method::Helm {
                        istiod: Box::new(istiod.clone()),
                        base: istio
                            .helm_releases
                            .iter()
                            .find(|r| r.chart == "base")
                            .cloned()
                            .map(Box::new),
                    },
                    None => Method::Unknown {
                        evidence: format!(
                            "istiod is owned by Helm release {namespace}/{release}, whose stored values could not be read (see the snapshot's unread list); grant read access to Secrets in {namespace} or upgrade it with helm yourself"
                        ),
                    },
                }
            }
            Some(InstallMethod::Istioctl { .. }) => Method::Istioctl {
                config: cp
                    .config
                    .as_ref()
                    .map(|c| installed_state(c).unwrap_or_else(|| read_back(cp))),
            },
            None => Method::NotRecorded,
            Some(InstallMethod::Unknown { evidence }) => Method::Unknown {
                evidence: format!("istiod {} shows {evidence}", cp.istiod.name),
            },
        }
    }
}

/// The release `namespace/name` among the observed ones.
pub(crate) fn find_release<'a>(
    istio: &'a Istio,
    namespace: &str,
    name: &str,
) -> Option<&'a HelmRelease> {
    istio
        .helm_releases
        .iter()
        .find(|r| r.namespace == namespace && r.name == name)
}

/// The release that owns `workload`, when it is a Helm release that was read.
pub(crate) fn release_of<'a>(istio: &'a Istio, workload: &Workload) -> Option<&'a HelmRelease> {
    match &workload.install {
        Some(InstallMethod::Helm { release, namespace }) => find_release(istio, namespace, release),
        _ => None,
    }
}

/// A release's values for a new install or upgrade: `revision` is left out (the plan sets it), the
/// rest as stored.
pub(crate) fn helm_values(release: &HelmRelease) -> CarriedConfig {
    let mut values = release.values.clone();
    if let Some(map) = values.as_object_mut() {
        map.remove("revision");
    }
    CarriedConfig {
        kind: ConfigKind::HelmValues,
        source: format!(
            "user-supplied values of Helm release {}/{} (release revision {}, chart {} {})",
            release.namespace, release.name, release.revision, release.chart, release.chart_version
        ),
        document: values,
    }
}

/// The IstioOperator istioctl stored when it installed the revision (`installed-state[-<rev>]`), when
/// the cluster still has it: the configuration it was installed from, without what the new install
/// sets itself (`revision`, `hub`, `tag`: `istioctl install --set`).
fn installed_state(config: &IstiodConfig) -> Option<CarriedConfig> {
    let mut spec = config.installed_state.clone()?;
    if let Some(map) = spec.as_object_mut() {
        for key in ["revision", "hub", "tag"] {
            map.remove(key);
        }
    }
    Some(CarriedConfig {
        kind: ConfigKind::IstioOperator,
        source: format!(
            "IstioOperator {} that istioctl stored when it installed the revision",
            config
                .installed_state_name
                .as_deref()
                .unwrap_or("installed-state")
        ),
        document: json!({
            "apiVersion": "install.istio.io/v1alpha1",
            "kind": "IstioOperator",
            "spec": spec,
        }),
    })
}

/// An IstioOperator holding what the cluster says `cp` runs with: its mesh config (without the
/// revision-specific discovery address), the env vars a user set (not the chart's own) and the
/// resources of istiod.
pub(crate) fn read_back(cp: &IstioControlPlane) -> CarriedConfig {
    let config = cp.config.clone().unwrap_or_default();
    let mut spec = serde_json::Map::new();
    let mut read_from = Vec::new();
    if let Some(mut mesh) = config.mesh_config.clone() {
        if let Some(default_config) = mesh.get_mut("defaultConfig").and_then(Value::as_object_mut) {
            default_config.remove("discoveryAddress");
        }
        spec.insert("meshConfig".into(), mesh);
        if let Some(cm) = &config.mesh_config_map {
            read_from.push(format!("ConfigMap {cm} (mesh)"));
        }
    }
    let env: BTreeMap<&String, &String> = config
        .env
        .iter()
        .filter(|(k, _)| !CHART_ENV.contains(&k.as_str()))
        .collect();
    if !env.is_empty() {
        spec.insert("values".into(), json!({ "pilot": { "env": env } }));
    }
    if let Some(resources) = &config.resources {
        spec.insert(
            "components".into(),
            json!({ "pilot": { "k8s": { "resources": resources } } }),
        );
    }
    if !env.is_empty() || config.resources.is_some() {
        read_from.push(format!(
            "Deployment {}/{} (env, resources)",
            cp.istiod.namespace, cp.istiod.name
        ));
    }
    let source = if read_from.is_empty() {
        format!(
            "nothing could be read back for istiod {}: the new revision gets istioctl's defaults",
            cp.istiod.name
        )
    } else {
        format!(
            "read back from the cluster (the IstioOperator it was installed from is not stored there): {}",
            read_from.join(", ")
        )
    };
    CarriedConfig {
        kind: ConfigKind::IstioOperator,
        source,
        document: json!({
            "apiVersion": "install.istio.io/v1alpha1",
            "kind": "IstioOperator",
            "spec": Value::Object(spec),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit;
    use crate::snapshot::IstiodConfig;

    /// The configuration an istioctl-installed control plane's plan carries.
    fn istioctl_config(cp: &IstioControlPlane) -> CarriedConfig {
        let istio = testkit::istio(vec![cp.clone()]);
        match Method::read(&istio, cp) {
            Method::Istioctl {
                config: Some(config),
            } => config,
            other => panic!("not an istioctl install carrying its configuration: {other:?}"),
        }
    }

    fn helm_release(name: &str, chart: &str, values: Value) -> HelmRelease {
        HelmRelease {
            name: name.into(),
            namespace: "istio-system".into(),
            revision: 3,
            status: "deployed".into(),
            chart: chart.into(),
            chart_version: "1.30.4".into(),
            app_version: Some("1.30.4".into()),
            values,
        }
    }

    #[test]
    fn helm_installs_carry_the_release_values_without_the_revision() {
        let mut cp = testkit::istiod("1-30-4", "docker.io/istio/pilot:1.30.4");
        cp.istiod.install = Some(InstallMethod::Helm {
            release: "istiod-1-30-4".into(),
            namespace: "istio-system".into(),
        });
        let mut istio = testkit::istio(vec![cp.clone()]);
        istio.helm_releases = vec![
            helm_release("istio-base", "base", json!({})),
            helm_release(
                "istiod-1-30-4",
                "istiod",
                json!({"revision": "1-30-4", "meshConfig": {"accessLogFile": "/dev/stdout"}}),
            ),
        ];
        let method = Method::read(&istio, &cp);
        let Method::Helm { istiod, base } = &method else {
            panic!("{method:?}")
        };
        assert_eq!(base.as_ref().unwrap().name, "istio-base");
        let carried = helm_values(istiod);
        assert_eq!(carried.kind, ConfigKind::HelmValues);
        assert_eq!(
            carried.document,
            json!({"meshConfig": {"accessLogFile": "/dev/stdout"}})
        );
        assert!(carried.source.contains("istio-system/istiod-1-30-4"));

        // The release was not readable: no guessing.
        istio.helm_releases.clear();
        assert!(matches!(
            Method::read(&istio, &cp),
            Method::Unknown { evidence } if evidence.contains("istio-system/istiod-1-30-4")
        ));
    }

    #[test]
    fn an_installed_state_istio_operator_is_carried_in_place_of_what_is_read_back() {
        let mut cp = testkit::istiod("1-22-3", "docker.io/istio/pilot:1.22.3");
        cp.istiod.install = Some(InstallMethod::Istioctl {
            owning_resource: "installed-state-1-22-3".into(),
        });
        cp.config = Some(IstiodConfig {
            mesh_config: Some(json!({"accessLogFile": "/dev/stdout"})),
            installed_state_name: Some("istio-system/installed-state-1-22-3".into()),
            installed_state: Some(json!({
                "profile": "default",
                "revision": "1-22-3",
                "hub": "docker.io/istio",
                "tag": "1.22.3",
                "meshConfig": {"accessLogFile": "/dev/stdout", "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
                "components": {"ingressGateways": [{"name": "istio-ingressgateway", "enabled": true}]}
            })),
            ..IstiodConfig::default()
        });
        let config = istioctl_config(&cp);
        // What the revision was installed from, not what can be read back; without what the new
        // install sets itself.
        assert_eq!(
            config.document,
            json!({
                "apiVersion": "install.istio.io/v1alpha1",
                "kind": "IstioOperator",
                "spec": {
                    "profile": "default",
                    "meshConfig": {"accessLogFile": "/dev/stdout", "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
                    "components": {"ingressGateways": [{"name": "istio-ingressgateway", "enabled": true}]}
                }
            })
        );
        assert_eq!(
            config.source,
            "IstioOperator istio-system/installed-state-1-22-3 that istioctl stored when it installed the revision"
        );
    }

    #[test]
    fn istioctl_installs_carry_what_is_read_back_as_an_istio_operator() {
        let mut cp = testkit::istiod("1-30-4", "docker.io/istio/pilot:1.30.4");
        cp.istiod.install = Some(InstallMethod::Istioctl {
            owning_resource: "unknown".into(),
        });
        cp.config = Some(IstiodConfig {
            mesh_config_map: Some("istio-system/istio-1-30-4".into()),
            mesh_config: Some(json!({
                "accessLogFile": "/dev/stdout",
                "defaultConfig": {"discoveryAddress": "istiod-1-30-4.istio-system.svc:15012", "holdApplicationUntilProxyStarts": true}
            })),
            env: [("REVISION", "1-30-4"), ("PILOT_ENABLE_STATUS", "true")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            resources: Some(json!({"limits": {"memory": "1Gi"}})),
            ..IstiodConfig::default()
        });
        let config = istioctl_config(&cp);
        assert_eq!(config.kind, ConfigKind::IstioOperator);
        assert_eq!(
            config.document,
            json!({
                "apiVersion": "install.istio.io/v1alpha1",
                "kind": "IstioOperator",
                "spec": {
                    "meshConfig": {"accessLogFile": "/dev/stdout", "defaultConfig": {"holdApplicationUntilProxyStarts": true}},
                    "values": {"pilot": {"env": {"PILOT_ENABLE_STATUS": "true"}}},
                    "components": {"pilot": {"k8s": {"resources": {"limits": {"memory": "1Gi"}}}}}
                }
            })
        );
        assert!(
            config
                .source
                .contains("ConfigMap istio-system/istio-1-30-4")
        );
    }

    #[test]
    fn other_installers_are_not_guessed_and_old_snapshots_say_so() {
        let mut cp = testkit::istiod("default", "docker.io/istio/pilot:1.30.4");
        cp.istiod.install = Some(InstallMethod::Unknown {
            evidence: "app.kubernetes.io/managed-by: sail-operator".into(),
        });
        let istio = testkit::istio(vec![cp.clone()]);
        assert!(matches!(
            Method::read(&istio, &cp),
            Method::Unknown { evidence } if evidence.contains("sail-operator")
        ));
        cp.istiod.install = None;
        assert_eq!(Method::read(&istio, &cp), Method::NotRecorded);
    }
}
