//! Deployments and DaemonSets as the rules see them: name, replicas and the version of one container,
//! read from its image tag, or from chart labels when the image is pinned by digest.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::snapshot::{
    InstallMethod, ObservedVersion, REPLICAS_BEFORE_ANNOTATION, VersionSource, Workload,
};
use crate::version::{Flavor, Version};

/// Labels that carry a chart's version, in the order they are trusted.
const CHART_VERSION_LABELS: [&str; 3] = [
    "app.kubernetes.io/version",
    "operator.istio.io/version",
    "helm.sh/chart",
];

/// The version an image reference says, falling back to chart labels when the image cannot say
/// (pinned by digest, or a tag such as `latest`).
pub fn observed_version(image: &str, labels: &BTreeMap<String, String>) -> ObservedVersion {
    let tagged = ObservedVersion::of_image_tag(image);
    if tagged.version.is_some() {
        return tagged;
    }
    match chart_label_version(labels) {
        Some((version, flavor)) => ObservedVersion {
            version: Some(version),
            flavor,
            source: VersionSource::ChartLabel,
            image: image.to_string(),
        },
        None => tagged,
    }
}

/// `app.kubernetes.io/version: 1.22.3`, `operator.istio.io/version: 1.22.3`, `helm.sh/chart: istiod-1.22.3`.
fn chart_label_version(labels: &BTreeMap<String, String>) -> Option<(Version, Flavor)> {
    CHART_VERSION_LABELS.iter().find_map(|key| {
        let value = labels.get(*key)?;
        let text = if *key == "helm.sh/chart" {
            chart_version_part(value)?
        } else {
            value.as_str()
        };
        let (version, suffix) = Version::parse_prefix(text)?;
        version.patch?;
        Some((version, Flavor::from_suffix(suffix)))
    })
}

/// `istiod-1.22.3` -> `1.22.3`: the part after the first `-` that starts a version.
fn chart_version_part(chart: &str) -> Option<&str> {
    chart
        .match_indices('-')
        .map(|(i, _)| &chart[i + 1..])
        .find(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// The container named `name`, else the first one.
pub fn pick_container<'a>(spec: Option<&'a PodSpec>, name: &str) -> Option<&'a Container> {
    let containers = &spec?.containers;
    containers
        .iter()
        .find(|c| c.name == name)
        .or_else(|| containers.first())
}

fn labels_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn workload(
    kind: &str,
    meta: &ObjectMeta,
    container: Option<&Container>,
    desired: u32,
    ready: u32,
) -> Workload {
    let image = container.and_then(|c| c.image.clone()).unwrap_or_default();
    Workload {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        kind: kind.to_string(),
        version: observed_version(&image, &labels_of(meta)),
        desired,
        ready,
        install: Some(install_method(meta)),
        replicas_before: replicas_before(meta),
    }
}

/// How an object was installed, from the marks each installer leaves on what it creates: Helm's
/// release annotations, istioctl's owning-resource label; otherwise whatever says who manages it.
pub fn install_method(meta: &ObjectMeta) -> InstallMethod {
    let annotation = |key: &str| {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .filter(|v| !v.is_empty())
    };
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .filter(|v| !v.is_empty())
    };
    if let Some(release) = annotation("meta.helm.sh/release-name") {
        let namespace = annotation("meta.helm.sh/release-namespace")
            .cloned()
            .or_else(|| meta.namespace.clone())
            .unwrap_or_default();
        return InstallMethod::Helm {
            release: release.clone(),
            namespace,
        };
    }
    if let Some(owner) = label("install.operator.istio.io/owning-resource") {
        return InstallMethod::Istioctl {
            owning_resource: owner.clone(),
        };
    }
    let evidence = label("app.kubernetes.io/managed-by")
        .map(|m| format!("app.kubernetes.io/managed-by: {m}"))
        .unwrap_or_else(|| "no Helm release annotation and no istioctl label".to_string());
    InstallMethod::Unknown { evidence }
}

/// The count a scale-down recorded in [`REPLICAS_BEFORE_ANNOTATION`]; `None` when absent or not a
/// number.
pub fn replicas_before(meta: &ObjectMeta) -> Option<u32> {
    meta.annotations
        .as_ref()?
        .get(REPLICAS_BEFORE_ANNOTATION)?
        .trim()
        .parse()
        .ok()
}

fn count(n: Option<i32>) -> u32 {
    n.unwrap_or(0).max(0) as u32
}

pub fn from_deployment(d: &Deployment, container: &str) -> Workload {
    let pod_spec = d.spec.template.spec.as_ref();
    workload(
        "Deployment",
        &d.metadata,
        pick_container(pod_spec, container),
        count(Some(d.spec.replicas.unwrap_or(1))),
        count(d.status.as_ref().and_then(|s| s.ready_replicas)),
    )
}

pub fn from_daemonset(ds: &DaemonSet, container: &str) -> Workload {
    let pod_spec = ds.spec.template.spec.as_ref();
    let status = ds.status.as_ref();
    workload(
        "DaemonSet",
        &ds.metadata,
        pick_container(pod_spec, container),
        count(status.map(|s| s.desired_number_scheduled)),
        count(status.map(|s| s.number_ready)),
    )
}

/// The value of an env var set literally on a container.
pub fn env_value<'a>(container: Option<&'a Container>, name: &str) -> Option<&'a str> {
    container?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn meta(labels_: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            namespace: Some("istio-system".into()),
            labels: Some(labels(labels_)),
            annotations: Some(labels(annotations)),
            ..Default::default()
        }
    }

    #[test]
    fn the_install_method_is_read_from_each_installers_marks() {
        // Helm sets the release annotations on everything it creates (and managed-by: Helm).
        let helm = meta(
            &[("app.kubernetes.io/managed-by", "Helm")],
            &[
                ("meta.helm.sh/release-name", "istiod-canary"),
                ("meta.helm.sh/release-namespace", "istio-config"),
            ],
        );
        assert_eq!(
            install_method(&helm),
            InstallMethod::Helm {
                release: "istiod-canary".into(),
                namespace: "istio-config".into()
            }
        );
        // Without the namespace annotation (Helm before 3.2), the object's own namespace.
        let old_helm = meta(&[], &[("meta.helm.sh/release-name", "istiod")]);
        assert_eq!(
            install_method(&old_helm),
            InstallMethod::Helm {
                release: "istiod".into(),
                namespace: "istio-system".into()
            }
        );
        let istioctl = meta(
            &[
                ("install.operator.istio.io/owning-resource", "unknown"),
                ("operator.istio.io/component", "Pilot"),
            ],
            &[],
        );
        assert_eq!(
            install_method(&istioctl),
            InstallMethod::Istioctl {
                owning_resource: "unknown".into()
            }
        );
        let sail = meta(&[("app.kubernetes.io/managed-by", "sail-operator")], &[]);
        assert_eq!(
            install_method(&sail),
            InstallMethod::Unknown {
                evidence: "app.kubernetes.io/managed-by: sail-operator".into()
            }
        );
        assert!(matches!(
            install_method(&meta(&[], &[])),
            InstallMethod::Unknown { .. }
        ));
    }

    #[test]
    fn tagged_images_win_over_labels() {
        let v = observed_version(
            "docker.io/istio/pilot:1.20.3-distroless",
            &labels(&[("app.kubernetes.io/version", "1.19.0")]),
        );
        assert_eq!(v.version, Some(Version::new(1, 20, 3)));
        assert_eq!(v.flavor, Flavor::Distroless);
        assert_eq!(v.source, VersionSource::ImageTag);
    }

    #[test]
    fn digest_pinned_images_fall_back_to_chart_labels() {
        let image = "gcr.io/istio-release/pilot@sha256:2b7e5e0d7b1f6a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4";
        let v = observed_version(image, &labels(&[("helm.sh/chart", "istiod-1.22.3")]));
        assert_eq!(v.version, Some(Version::new(1, 22, 3)));
        assert_eq!(v.source, VersionSource::ChartLabel);
        let v = observed_version(
            image,
            &labels(&[("operator.istio.io/version", "1.21.6-mspider")]),
        );
        assert_eq!(v.version, Some(Version::new(1, 21, 6)));
        assert_eq!(v.flavor, Flavor::Mspider);
        let v = observed_version(image, &labels(&[("app", "istiod")]));
        assert_eq!((v.version, v.source), (None, VersionSource::Unknown));
    }

    #[test]
    fn the_recorded_replicas_come_from_the_annotation_when_it_is_a_number() {
        let meta = |value: &str| ObjectMeta {
            annotations: Some(labels(&[("meshup.dev/replicas-before", value)])),
            ..ObjectMeta::default()
        };
        assert_eq!(replicas_before(&meta("3")), Some(3));
        assert_eq!(replicas_before(&meta(" 2 ")), Some(2));
        assert_eq!(replicas_before(&meta("three")), None);
        assert_eq!(replicas_before(&meta("-1")), None);
        assert_eq!(replicas_before(&ObjectMeta::default()), None);
    }

    #[test]
    fn chart_names_with_dashes() {
        assert_eq!(chart_version_part("istiod-1.22.3"), Some("1.22.3"));
        assert_eq!(chart_version_part("istio-cni-1.23.0"), Some("1.23.0"));
        assert_eq!(chart_version_part("gloo-mesh"), None);
    }
}
