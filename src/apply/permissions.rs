//! Permissions first: what a plan needs in each cluster ([`required`], pure) and whether the user has
//! it ([`missing`], one SelfSubjectAccessReview per verb, group, resource and namespace).
//!
//! What each action needs is its kind's own answer ([`StepAction::needs`](super::action::StepAction)):
//! `run` steps call an external tool with the user's own credentials; what that tool needs is its own
//! business and is not checked here.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::plan::{ObjectRef, UpgradePlan};

/// One thing the plan needs to be allowed to do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub cluster: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    /// Empty: cluster-wide.
    pub namespace: String,
    /// Empty: any object.
    pub name: String,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if !self.name.is_empty() {
            write!(f, " {}", self.name)?;
        }
        if self.namespace.is_empty() {
            write!(f, " (cluster-wide)")?;
        } else {
            write!(f, " in namespace {}", self.namespace)?;
        }
        write!(f, " in cluster {}", self.cluster)
    }
}

/// The permissions a plan's actions add to, for one cluster.
pub(in crate::apply) struct Needs<'a> {
    cluster: &'a str,
    set: BTreeSet<Permission>,
}

impl Needs<'_> {
    pub(in crate::apply) fn add(
        &mut self,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: &str,
    ) {
        self.add_sub(verbs, group, resource, "", namespace);
    }

    fn add_sub(&mut self, verbs: &[&str], group: &str, resource: &str, sub: &str, namespace: &str) {
        for verb in verbs {
            self.set.insert(Permission {
                cluster: self.cluster.to_string(),
                verb: verb.to_string(),
                group: group.to_string(),
                resource: resource.to_string(),
                subresource: sub.to_string(),
                namespace: namespace.to_string(),
                name: String::new(),
            });
        }
    }

    pub(in crate::apply) fn workload(&mut self, verbs: &[&str], target: &ObjectRef, sub: &str) {
        let resource = workload_resource(&target.kind);
        self.add_sub(verbs, "apps", resource, sub, &target.namespace);
    }
}

/// `Deployment` -> `deployments`, and the other apps/v1 workload kinds.
pub fn workload_resource(kind: &str) -> &'static str {
    match kind {
        "StatefulSet" => "statefulsets",
        "DaemonSet" => "daemonsets",
        "ReplicaSet" => "replicasets",
        _ => "deployments",
    }
}

/// Every permission the plan's steps (and their undo) need in `cluster`, plus the journal and lock in
/// `journal_namespace` (`None` for `--dry-run`, which writes neither).
pub fn required(
    plan: &UpgradePlan,
    cluster: &str,
    journal_namespace: Option<&str>,
) -> BTreeSet<Permission> {
    let mut needs = Needs {
        cluster,
        set: BTreeSet::new(),
    };
    if let Some(ns) = journal_namespace {
        needs.add(&["get", "create", "update"], "", "configmaps", ns);
        needs.add(
            &["get", "create", "update", "delete"],
            "coordination.k8s.io",
            "leases",
            ns,
        );
    }
    for step in plan.steps.iter().filter(|s| s.cluster == cluster) {
        for action in std::iter::once(&step.action).chain(step.undo.as_ref()) {
            super::action::of(action).needs(&mut needs);
        }
    }
    needs.set
}

/// Ask the API server about each permission; the ones refused, in order.
pub async fn missing(
    client: &kube::Client,
    wanted: &BTreeSet<Permission>,
) -> Result<Vec<Permission>, kube::Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut refused = Vec::new();
    for p in wanted {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(p.verb.clone()),
                    group: Some(p.group.clone()),
                    resource: Some(p.resource.clone()),
                    subresource: (!p.subresource.is_empty()).then(|| p.subresource.clone()),
                    namespace: (!p.namespace.is_empty()).then(|| p.namespace.clone()),
                    name: (!p.name.is_empty()).then(|| p.name.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = api.create(&PostParams::default(), &review).await?;
        let allowed = answer.status.map(|s| s.allowed).unwrap_or(false);
        if !allowed {
            refused.push(p.clone());
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_kubectl_auth_can_i() {
        let p = Permission {
            cluster: "mgmt".into(),
            verb: "patch".into(),
            group: "apps".into(),
            resource: "deployments".into(),
            subresource: "scale".into(),
            namespace: "gloo-mesh".into(),
            name: String::new(),
        };
        assert_eq!(
            p.to_string(),
            "patch deployments/scale.apps in namespace gloo-mesh in cluster mgmt"
        );
    }
}
