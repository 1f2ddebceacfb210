//! The kube actions a step takes, through kube-rs. Each is idempotent (scale to N, delete a collection,
//! label, restart with a recorded timestamp, server-side apply), so a step interrupted in the middle can
//! be run again on resume. With `dry_run` every write goes with `dryRun=All`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::Scope;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::plan::{ObjectRef, Renewal};
use crate::snapshot::REPLICAS_BEFORE_ANNOTATION;

use super::wait::served_resource;

pub const FIELD_MANAGER: &str = "kubectl-meshup";
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{what}: {}", crate::client::brief(.source))]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "server-side apply of {object} conflicts with another field manager: {message}; re-run with --force-conflicts to take those fields over as `{FIELD_MANAGER}`"
    )]
    Conflict { object: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ActionError {
    let what = what.into();
    move |source| ActionError::Api { what, source }
}

fn patch_params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        ..PatchParams::default()
    }
}

/// The replicas a workload has now, read through `/scale`.
pub async fn current_replicas(client: &Client, target: &ObjectRef) -> Result<u32, ActionError> {
    let what = format!(
        "read the scale of {} {}/{}",
        target.kind, target.namespace, target.name
    );
    let scale = workload_api(client, target, true)?
        .get_scale(&target.name)
        .await
        .map_err(api_err(what))?;
    let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
    Ok(u32::try_from(replicas).unwrap_or(0))
}

fn unscalable(kind: &str) -> ActionError {
    ActionError::Invalid(format!(
        "cannot scale a {kind}: only Deployment and StatefulSet have /scale here"
    ))
}

/// The API of `target`'s kind in its namespace: a Deployment or StatefulSet, also a DaemonSet unless
/// the action needs `/scale` (`scalable`); another kind is refused (`unscalable`, or, for a
/// restart, by the core's [`Renewal`] rule, which [`parse_workload`] applies first).
fn workload_api(
    client: &Client,
    target: &ObjectRef,
    scalable: bool,
) -> Result<Api<DynamicObject>, ActionError> {
    let resource = match target.kind.as_str() {
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "DaemonSet" if !scalable => ApiResource::erase::<DaemonSet>(&()),
        other if scalable => return Err(unscalable(other)),
        // Which kinds a restart renews is the core's rule (`Renewal`); parse_workload applies it first.
        other => {
            return Err(ActionError::Invalid(format!(
                "cannot restart a {other}: its pods are renewed by {}",
                Renewal::of_kind(other).how()
            )));
        }
    };
    Ok(Api::namespaced_with(
        client.clone(),
        &target.namespace,
        &resource,
    ))
}

/// Set replicas through `/scale`.
pub async fn scale(
    client: &Client,
    target: &ObjectRef,
    replicas: u32,
    dry_run: bool,
) -> Result<(), ActionError> {
    let what = format!(
        "scale {} {}/{} to {replicas}",
        target.kind, target.namespace, target.name
    );
    let body = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
    let pp = patch_params(dry_run);
    workload_api(client, target, true)?
        .patch_scale(&target.name, &pp, &body)
        .await
        .map(drop)
        .map_err(api_err(what))
}

/// Where the count a restoring scale-up brings back came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoredFrom {
    Journal,
    Annotation,
    Plan,
}

impl RestoredFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoredFrom::Journal => "the journal",
            RestoredFrom::Annotation => REPLICAS_BEFORE_ANNOTATION,
            RestoredFrom::Plan => "the plan",
        }
    }
}

/// The count a restoring scale-up brings back: the journal's (what the scale-down saw just before it
/// scaled), else the object's annotation, else the count the plan observed. A recorded zero counts as
/// none: a scale-up never restores to zero.
pub fn restore_count(
    journal: Option<u32>,
    annotated: Option<u32>,
    planned: u32,
) -> (u32, RestoredFrom) {
    match (journal.filter(|n| *n > 0), annotated.filter(|n| *n > 0)) {
        (Some(n), _) => (n, RestoredFrom::Journal),
        (None, Some(n)) => (n, RestoredFrom::Annotation),
        (None, None) => (planned, RestoredFrom::Plan),
    }
}

/// The count a recording scale-down keeps: the live count, unless the object is at zero and an
/// earlier scale-down left its count on it (then that one: the zero is that scale-down's doing). An
/// annotation on a running object is stale and loses to the live count.
pub fn count_before(annotated: Option<u32>, live: u32) -> u32 {
    if live > 0 {
        live
    } else {
        annotated.unwrap_or(0)
    }
}

/// The count a scale-down recorded on the object in [`REPLICAS_BEFORE_ANNOTATION`], if any (a
/// count that is not a number counts as none).
pub async fn recorded_replicas(
    client: &Client,
    target: &ObjectRef,
) -> Result<Option<u32>, ActionError> {
    let what = format!("read {} {}/{}", target.kind, target.namespace, target.name);
    let meta = workload_api(client, target, true)?
        .get(&target.name)
        .await
        .map_err(api_err(what))?
        .metadata;
    Ok(crate::observe::workload::replicas_before(&meta))
}

/// Write `Some(n)` into the object's [`REPLICAS_BEFORE_ANNOTATION`], or remove it with `None` (a
/// merge patch of the annotation alone).
pub async fn record_replicas(
    client: &Client,
    target: &ObjectRef,
    replicas: Option<u32>,
    dry_run: bool,
) -> Result<(), ActionError> {
    let value = replicas.map(|n| n.to_string());
    let what = match &value {
        Some(n) => format!(
            "annotate {} {}/{} with {REPLICAS_BEFORE_ANNOTATION}={n}",
            target.kind, target.namespace, target.name
        ),
        None => format!(
            "remove the {REPLICAS_BEFORE_ANNOTATION} annotation of {} {}/{}",
            target.kind, target.namespace, target.name
        ),
    };
    let body = Patch::Merge(json!({
        "metadata": { "annotations": { REPLICAS_BEFORE_ANNOTATION: value } }
    }));
    workload_api(client, target, true)?
        .patch(&target.name, &patch_params(dry_run), &body)
        .await
        .map(drop)
        .map_err(api_err(what))
}

/// Delete every object of `resource` in `group/version` (in `namespace`, or in every namespace that
/// has some). Returns how many objects the server reported deleted, when it says.
pub async fn delete_collection(
    client: &Client,
    group: &str,
    version: &str,
    resource: &str,
    namespace: Option<&str>,
    dry_run: bool,
) -> Result<usize, ActionError> {
    let what = format!("delete all {resource}.{group}");
    let Some((ar, caps)) = served_resource(client, group, version, resource)
        .await
        .map_err(api_err(what.clone()))?
    else {
        // Nothing served means nothing to delete (the CRD is gone); the step's goal holds.
        return Ok(0);
    };
    let dp = DeleteParams {
        dry_run,
        ..DeleteParams::default()
    };
    let namespaces: Vec<Option<String>> = match (caps.scope, namespace) {
        (Scope::Cluster, _) => vec![None],
        (Scope::Namespaced, Some(ns)) => vec![Some(ns.to_string())],
        (Scope::Namespaced, None) => {
            // deletecollection is not served across namespaces: find the namespaces that hold some.
            let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let found: BTreeSet<String> = crate::observe::paging::fold_typed(
                &ListParams::default().limit(500),
                |p| {
                    let all = &all;
                    async move { all.list_metadata(&p).await }
                },
                |found: &mut BTreeSet<String>, o| found.extend(o.metadata.namespace),
            )
            .await
            .map_err(api_err(what.clone()))?;
            found.into_iter().map(Some).collect()
        }
    };
    let mut deleted = 0;
    for ns in namespaces {
        let api: Api<DynamicObject> = match &ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let answer = api
            .delete_collection(&dp, &ListParams::default())
            .await
            .map_err(api_err(what.clone()))?;
        if let Some(list) = answer.left() {
            deleted += list.items.len();
        }
    }
    Ok(deleted)
}

/// Server-side apply each CustomResourceDefinition in `manifests` (multi-document YAML, as `helm show
/// crds` prints it) with field manager `kubectl-meshup`. Returns the CRD names.
pub async fn apply_crds(
    client: &Client,
    manifests: &str,
    dry_run: bool,
    force_conflicts: bool,
) -> Result<Vec<String>, ActionError> {
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(manifests)
        .map_err(|e| ActionError::Invalid(format!("the chart's CRDs are not valid YAML: {e}")))?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut pp = PatchParams::apply(FIELD_MANAGER);
    pp.dry_run = dry_run;
    if force_conflicts {
        pp = pp.force();
    }
    let mut names = Vec::new();
    for doc in documents.into_iter().filter(|d| !d.is_null()) {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if kind != "CustomResourceDefinition" || name.is_empty() {
            return Err(ActionError::Invalid(format!(
                "the chart's CRDs contain a {kind:?} named {name:?}; only named CustomResourceDefinitions are applied"
            )));
        }
        let object = format!("CustomResourceDefinition {name}");
        match api.patch(&name, &pp, &Patch::Apply(&doc)).await {
            Ok(_) => names.push(name),
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                return Err(ActionError::Conflict {
                    object,
                    message: status.message.clone(),
                });
            }
            Err(e) => return Err(api_err(format!("server-side apply {object}"))(e)),
        }
    }
    Ok(names)
}

/// Set (`Some`) or remove (`None`) labels on a namespace with a merge patch.
pub async fn label_namespace(
    client: &Client,
    namespace: &str,
    labels: &BTreeMap<String, Option<String>>,
    dry_run: bool,
) -> Result<(), ActionError> {
    let body = Patch::Merge(json!({ "metadata": { "labels": labels } }));
    Api::<Namespace>::all(client.clone())
        .patch(namespace, &patch_params(dry_run), &body)
        .await
        .map(drop)
        .map_err(api_err(format!("label namespace {namespace}")))
}

/// `Deployment/reviews-v1` -> the workload it names.
pub fn parse_workload(namespace: &str, text: &str) -> Result<ObjectRef, ActionError> {
    let (kind, name) = text
        .split_once('/')
        .filter(|(k, n)| !k.is_empty() && !n.is_empty())
        .ok_or_else(|| {
            ActionError::Invalid(format!(
                "workload {text:?} is not KIND/NAME (for example Deployment/reviews-v1)"
            ))
        })?;
    let renewal = Renewal::of_kind(kind);
    if renewal != Renewal::Restart {
        return Err(ActionError::Invalid(format!(
            "cannot restart a {kind} ({text}): only a Deployment, StatefulSet or DaemonSet is restarted; its pods are renewed by {}; make a new plan",
            renewal.how()
        )));
    }
    Ok(ObjectRef {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// Rolling restart as `kubectl rollout restart` does it: set the pod template's `restartedAt`
/// annotation. Using the value recorded in the journal makes a repeated restart a no-op.
pub async fn restart(
    client: &Client,
    target: &ObjectRef,
    restarted_at: &str,
    dry_run: bool,
) -> Result<(), ActionError> {
    let body = Patch::Merge(json!({
        "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: restarted_at } } } }
    }));
    let pp = patch_params(dry_run);
    let what = format!(
        "restart {} {}/{}",
        target.kind, target.namespace, target.name
    );
    workload_api(client, target, false)?
        .patch(&target.name, &pp, &body)
        .await
        .map(drop)
        .map_err(api_err(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_takes_the_journal_then_the_annotation_then_the_plan_and_never_zero() {
        assert_eq!(
            restore_count(Some(3), Some(2), 1),
            (3, RestoredFrom::Journal)
        );
        assert_eq!(
            restore_count(None, Some(2), 1),
            (2, RestoredFrom::Annotation)
        );
        assert_eq!(
            restore_count(Some(0), Some(2), 1),
            (2, RestoredFrom::Annotation)
        );
        assert_eq!(restore_count(None, None, 3), (3, RestoredFrom::Plan));
        assert_eq!(restore_count(Some(0), Some(0), 1), (1, RestoredFrom::Plan));
    }

    #[test]
    fn a_second_scale_down_keeps_the_first_ones_count() {
        assert_eq!(count_before(None, 3), 3);
        assert_eq!(count_before(Some(3), 0), 3);
        assert_eq!(count_before(Some(0), 2), 2);
        // A count left behind on a running object is stale: the live one wins.
        assert_eq!(count_before(Some(3), 5), 5);
        assert_eq!(count_before(None, 0), 0);
    }

    #[test]
    fn workloads_are_kind_slash_name() {
        let w = parse_workload("bookinfo", "Deployment/reviews-v1").expect("valid");
        assert_eq!(w.kind, "Deployment");
        assert_eq!(w.name, "reviews-v1");
        assert!(parse_workload("bookinfo", "reviews-v1").is_err());
        assert!(parse_workload("bookinfo", "Pod/standalone").is_err());
        assert!(parse_workload("reports", "CronJob/nightly-export").is_err());
        assert!(parse_workload("data", "StatefulSet/ledger").is_ok());
        assert!(parse_workload("istio-system", "DaemonSet/ztunnel").is_ok());
    }
}
