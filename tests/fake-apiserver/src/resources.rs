//! The served resource types: built-ins taken from k8s-openapi's constants, plus whatever the stored
//! CustomResourceDefinitions declare.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::{ClusterResourceScope, ListableResource, NamespaceResourceScope, Resource};
use serde_json::Value;

/// Storage key of a resource type: (group, plural). Objects of all served versions share it.
pub type ResKey = (String, String);

/// One served resource type (one group/version/plural).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    /// `/scale` subresource: (specReplicasPath, statusReplicasPath, labelSelectorPath) as JSON paths
    /// (`.spec.replicas`).
    pub scale: Option<ScalePaths>,
    /// Only `create` (SelfSubjectAccessReview): not stored, not listable.
    pub create_only: bool,
    /// Declared by a CustomResourceDefinition.
    pub custom: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

impl ScalePaths {
    fn standard() -> Self {
        ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        }
    }
}

impl ResourceType {
    pub fn key(&self) -> ResKey {
        (self.group.clone(), self.plural.clone())
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: the form used in error messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod`: the form used in "is invalid" messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            return vec!["create"];
        }
        let mut v = vec!["create", "delete"];
        if self.plural != "namespaces" {
            v.push("deletecollection");
        }
        v.extend(["get", "list", "patch", "update", "watch"]);
        v
    }

    /// Whether objects carry `metadata.generation`, bumped on spec changes.
    pub fn tracks_generation(&self) -> bool {
        self.custom
            || matches!(
                self.kind.as_str(),
                "Deployment"
                    | "DaemonSet"
                    | "StatefulSet"
                    | "ReplicaSet"
                    | "CustomResourceDefinition"
                    | "Pod"
            )
    }
}

/// Whether a k8s-openapi scope type is namespaced.
pub trait ScopeFlag {
    const NAMESPACED: bool;
}
impl ScopeFlag for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl ScopeFlag for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// Describe a k8s-openapi type as a served resource.
pub fn builtin<R>(short: &[&str], categories: &[&str], has_status: bool) -> ResourceType
where
    R: Resource + ListableResource,
    R::Scope: ScopeFlag,
{
    ResourceType {
        group: R::GROUP.into(),
        version: R::VERSION.into(),
        kind: R::KIND.into(),
        list_kind: R::LIST_KIND.into(),
        plural: R::URL_PATH_SEGMENT.into(),
        singular: R::KIND.to_ascii_lowercase(),
        namespaced: <R::Scope as ScopeFlag>::NAMESPACED,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        has_status,
        scale: None,
        create_only: false,
        custom: false,
    }
}

/// The built-in resource types the fake serves.
pub fn builtins() -> Vec<ResourceType> {
    let all = &["all"][..];
    let mut v = vec![
        builtin::<Namespace>(&["ns"], &[], true),
        builtin::<Node>(&["no"], &[], true),
        builtin::<Pod>(&["po"], all, true),
        builtin::<ConfigMap>(&["cm"], &[], false),
        builtin::<Secret>(&[], &[], false),
        builtin::<Service>(&["svc"], all, true),
        builtin::<ServiceAccount>(&["sa"], &[], false),
        builtin::<Event>(&["ev"], &[], false),
        builtin::<Deployment>(&["deploy"], all, true),
        builtin::<DaemonSet>(&["ds"], all, true),
        builtin::<StatefulSet>(&["sts"], all, true),
        builtin::<ReplicaSet>(&["rs"], all, true),
        builtin::<CustomResourceDefinition>(&["crd", "crds"], &["api-extensions"], true),
        builtin::<MutatingWebhookConfiguration>(&[], &["api-extensions"], false),
        builtin::<ValidatingWebhookConfiguration>(&[], &["api-extensions"], false),
        builtin::<Lease>(&[], &[], false),
    ];
    for r in &mut v {
        if matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet") {
            r.scale = Some(ScalePaths::standard());
        }
    }
    v.push(ResourceType {
        group: SelfSubjectAccessReview::GROUP.into(),
        version: SelfSubjectAccessReview::VERSION.into(),
        kind: SelfSubjectAccessReview::KIND.into(),
        list_kind: String::new(),
        plural: SelfSubjectAccessReview::URL_PATH_SEGMENT.into(),
        singular: SelfSubjectAccessReview::KIND.to_ascii_lowercase(),
        namespaced: false,
        short_names: vec![],
        categories: vec![],
        has_status: false,
        scale: None,
        create_only: true,
        custom: false,
    });
    v
}

/// The resource types a CustomResourceDefinition object declares (one per served version).
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let group = s(spec.get("group"));
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = s(names.get("plural"));
    let kind = s(names.get("kind"));
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err("spec.group, spec.names.plural and spec.names.kind are required".into());
    }
    let singular = match s(names.get("singular")) {
        x if x.is_empty() => kind.to_ascii_lowercase(),
        x => x,
    };
    let list_kind = match s(names.get("listKind")) {
        x if x.is_empty() => format!("{kind}List"),
        x => x,
    };
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = s(spec.get("scope")) != "Cluster";
    let mut out = Vec::new();
    for ver in spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if ver.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let sub = ver.get("subresources");
        let scale = sub.and_then(|s| s.get("scale")).map(|sc| ScalePaths {
            spec_replicas: sc
                .get("specReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".spec.replicas")
                .into(),
            status_replicas: sc
                .get("statusReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".status.replicas")
                .into(),
            label_selector: sc
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(String::from),
        });
        out.push(ResourceType {
            group: group.clone(),
            version: s(ver.get("name")),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            short_names: strs(names.get("shortNames")),
            categories: strs(names.get("categories")),
            has_status: sub.and_then(|s| s.get("status")).is_some(),
            scale,
            create_only: false,
            custom: true,
        });
    }
    Ok(out)
}

/// Sort versions the way Kubernetes orders them for preference: GA > beta > alpha, then higher first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    // v1, v2beta1, v1alpha2, other
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    for (pfx, rank) in [("beta", 2u8), ("alpha", 1u8)] {
        if let Some(n) = tail.strip_prefix(pfx)
            && let Ok(minor) = n.parse::<u32>()
        {
            return (rank, major, minor);
        }
    }
    (0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_come_from_k8s_openapi() {
        let b = builtins();
        let deploy = b.iter().find(|r| r.kind == "Deployment").unwrap();
        assert_eq!(deploy.group, "apps");
        assert_eq!(deploy.version, "v1");
        assert_eq!(deploy.plural, "deployments");
        assert_eq!(deploy.list_kind, "DeploymentList");
        assert!(deploy.namespaced);
        assert!(deploy.scale.is_some());
        let ns = b.iter().find(|r| r.kind == "Namespace").unwrap();
        assert!(!ns.namespaced);
        assert_eq!(ns.api_version(), "v1");
        assert!(!ns.verbs().contains(&"deletecollection"));
        let crd = b
            .iter()
            .find(|r| r.kind == "CustomResourceDefinition")
            .unwrap();
        assert_eq!(
            crd.qualified_plural(),
            "customresourcedefinitions.apiextensions.k8s.io"
        );
    }

    #[test]
    fn crd_versions_become_types() {
        let crd = serde_json::json!({
            "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v1beta1", "served": false, "storage": false}
                ]}
        });
        let t = from_crd(&crd).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].list_kind, "WidgetList");
        assert_eq!(t[0].singular, "widget");
        assert!(!t[0].namespaced);
        assert!(t[0].has_status);
        assert_eq!(t[0].short_names, vec!["wd"]);
    }

    #[test]
    fn version_order() {
        let mut v = vec!["v1alpha1", "v1beta1", "v2", "v1", "v2beta2", "v2beta1"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, ["v2", "v1", "v2beta2", "v2beta1", "v1beta1", "v1alpha1"]);
    }
}
