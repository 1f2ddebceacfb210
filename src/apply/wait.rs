//! The conditions `wait` steps poll: rollout status as `kubectl rollout status` judges it (pure
//! functions over the workload objects), and "every resource of a group has objects again".

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersion;

use crate::plan::ObjectRef;

/// Where a condition stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Met,
    /// Met for everything the condition judges; the note names what it left aside (shown with the
    /// step's result).
    MetWithNote(String),
    /// Not yet, and why (shown as progress).
    Waiting(String),
    /// It will not be met without intervention.
    Failed(String),
    /// Not yet, and nothing the plan does will change that: what is left needs a person (pods of a
    /// Job still running, a pod without a controller). Polled a little longer, since it may settle on
    /// its own (the Job finishes), then failed with this message, which says what to do.
    NeedsPerson(String),
}

/// `kubectl rollout status deployment/NAME`: the controller saw the latest spec, all replicas are
/// updated, no old ones are left, the updated ones are available; `ProgressDeadlineExceeded` fails.
pub fn deployment_rollout(d: &Deployment) -> Progress {
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Progress::Waiting("waiting for the deployment spec update to be observed".into());
    }
    let deadline_exceeded = status.conditions.iter().flatten().any(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline_exceeded {
        return Progress::Failed("the rollout exceeded its progress deadline".into());
    }
    let desired = d.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        Progress::Waiting(format!(
            "{updated} of {desired} new replicas have been updated"
        ))
    } else if replicas > updated {
        Progress::Waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ))
    } else if available < updated {
        Progress::Waiting(format!(
            "{available} of {updated} updated replicas are available"
        ))
    } else {
        Progress::Met
    }
}

/// Whether an update strategy `type` rolls pods itself: `RollingUpdate`, also when unset (the API's
/// default); other strategies (`OnDelete`) have no rollout to watch and count as met.
fn rolls_pods(strategy_type: Option<&str>) -> bool {
    strategy_type.unwrap_or("RollingUpdate") == "RollingUpdate"
}

/// `kubectl rollout status statefulset/NAME` (RollingUpdate strategy only; others count as met).
pub fn statefulset_rollout(s: &StatefulSet) -> Progress {
    let spec = &s.spec;
    let strategy = spec.update_strategy.as_ref();
    if !rolls_pods(strategy.and_then(|u| u.type_.as_deref())) {
        return Progress::Met;
    }
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return Progress::Waiting("waiting for the statefulset spec update to be observed".into());
    }
    let desired = spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    if ready < desired {
        return Progress::Waiting(format!("{ready} of {desired} pods are ready"));
    }
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    if partition > 0 {
        let updated = status.updated_replicas.unwrap_or(0);
        let want = (desired - partition).max(0);
        return if updated < want {
            Progress::Waiting(format!("{updated} of {want} partitioned pods updated"))
        } else {
            Progress::Met
        };
    }
    if status.update_revision.is_some() && status.update_revision != status.current_revision {
        let updated = status.updated_replicas.unwrap_or(0);
        return Progress::Waiting(format!("{updated} of {desired} pods at the new revision"));
    }
    Progress::Met
}

/// `kubectl rollout status daemonset/NAME` (RollingUpdate strategy only; others count as met).
pub fn daemonset_rollout(d: &DaemonSet) -> Progress {
    let strategy = d.spec.update_strategy.as_ref();
    if !rolls_pods(strategy.and_then(|u| u.type_.as_deref())) {
        return Progress::Met;
    }
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Progress::Waiting("waiting for the daemonset spec update to be observed".into());
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        Progress::Waiting(format!("{updated} of {desired} updated pods scheduled"))
    } else if available < desired {
        Progress::Waiting(format!("{available} of {desired} updated pods available"))
    } else {
        Progress::Met
    }
}

/// Read the workload once and judge its rollout. A missing workload is waited for.
pub async fn rollout(client: &kube::Client, target: &ObjectRef) -> Result<Progress, kube::Error> {
    let missing = || {
        Progress::Waiting(format!(
            "{} {}/{} does not exist (yet)",
            target.kind, target.namespace, target.name
        ))
    };
    Ok(match target.kind.as_str() {
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), &target.namespace)
            .get_opt(&target.name)
            .await?
            .map_or_else(missing, |s| statefulset_rollout(&s)),
        "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), &target.namespace)
            .get_opt(&target.name)
            .await?
            .map_or_else(missing, |d| daemonset_rollout(&d)),
        _ => Api::<Deployment>::namespaced(client.clone(), &target.namespace)
            .get_opt(&target.name)
            .await?
            .map_or_else(missing, |d| deployment_rollout(&d)),
    })
}

/// Whether every listed resource of the group has at least one object (any namespace), each at
/// `version`, or without one at the most stable version the server serves it in now (after an
/// upgrade's CRD update: the new version). A group or resource the server does not serve yet (CRDs
/// just applied, discovery not caught up) is waited for.
pub async fn resources_present(
    client: &kube::Client,
    group: &str,
    version: Option<&str>,
    resources: &[String],
) -> Result<Progress, kube::Error> {
    let discovered = match version {
        Some(v) => kube::discovery::pinned_group(client, &GroupVersion::gv(group, v)).await,
        None => kube::discovery::group(client, group).await,
    };
    let served = match discovered {
        Ok(g) => g.recommended_resources(),
        Err(kube::Error::Api(s)) if s.is_not_found() => Vec::new(),
        Err(kube::Error::Discovery(kube::error::DiscoveryError::MissingApiGroup(_))) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut empty = Vec::new();
    for resource in resources {
        let Some((ar, _)) = served.iter().find(|(ar, _)| &ar.plural == resource) else {
            empty.push(format!("{resource} (not served yet)"));
            continue;
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
        let one = api.list_metadata(&ListParams::default().limit(1)).await?;
        if one.items.is_empty() {
            empty.push(resource.clone());
        }
    }
    Ok(if empty.is_empty() {
        Progress::Met
    } else {
        Progress::Waiting(format!("no {}.{group} yet", empty.join(", ")))
    })
}

/// The ApiResource of a plural in a group version, if the server serves it.
pub async fn served_resource(
    client: &kube::Client,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<Option<(ApiResource, kube::discovery::ApiCapabilities)>, kube::Error> {
    let g = match kube::discovery::pinned_group(client, &GroupVersion::gv(group, version)).await {
        Ok(g) => g,
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(g.recommended_resources()
        .into_iter()
        .find(|(ar, _)| ar.plural == plural))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetStatus, DeploymentCondition, DeploymentSpec, DeploymentStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(generation: i64, desired: i32, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: DeploymentSpec {
                replicas: Some(desired),
                ..DeploymentSpec::default()
            },
            status: Some(status),
        }
    }

    #[test]
    fn a_rollout_the_controller_has_not_seen_is_not_complete_even_if_counts_match() {
        let d = deployment(
            3,
            1,
            DeploymentStatus {
                observed_generation: Some(2),
                replicas: Some(1),
                updated_replicas: Some(1),
                available_replicas: Some(1),
                ..DeploymentStatus::default()
            },
        );
        assert!(matches!(deployment_rollout(&d), Progress::Waiting(_)));
    }

    #[test]
    fn old_replicas_pending_termination_keep_the_wait_going() {
        let d = deployment(
            2,
            2,
            DeploymentStatus {
                observed_generation: Some(2),
                replicas: Some(3),
                updated_replicas: Some(2),
                available_replicas: Some(2),
                ..DeploymentStatus::default()
            },
        );
        assert_eq!(
            deployment_rollout(&d),
            Progress::Waiting("1 old replicas are pending termination".into())
        );
    }

    #[test]
    fn a_complete_rollout_and_a_scaled_to_zero_deployment_are_met() {
        let full = DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(2),
            updated_replicas: Some(2),
            available_replicas: Some(2),
            ..DeploymentStatus::default()
        };
        assert_eq!(deployment_rollout(&deployment(2, 2, full)), Progress::Met);
        let zero = DeploymentStatus {
            observed_generation: Some(5),
            ..DeploymentStatus::default()
        };
        assert_eq!(deployment_rollout(&deployment(5, 0, zero)), Progress::Met);
    }

    #[test]
    fn progress_deadline_exceeded_fails() {
        let d = deployment(
            2,
            1,
            DeploymentStatus {
                observed_generation: Some(2),
                conditions: Some(vec![DeploymentCondition {
                    type_: Some("Progressing".into()),
                    status: Some("False".into()),
                    reason: Some("ProgressDeadlineExceeded".into()),
                    ..DeploymentCondition::default()
                }]),
                ..DeploymentStatus::default()
            },
        );
        assert!(matches!(deployment_rollout(&d), Progress::Failed(_)));
    }

    #[test]
    fn daemonset_waits_for_every_node_to_run_the_update() {
        let ds = DaemonSet {
            metadata: ObjectMeta {
                generation: Some(4),
                ..ObjectMeta::default()
            },
            spec: DaemonSetSpec::default(),
            status: Some(DaemonSetStatus {
                observed_generation: Some(4),
                desired_number_scheduled: 3,
                updated_number_scheduled: Some(3),
                number_available: Some(2),
                ..DaemonSetStatus::default()
            }),
        };
        assert_eq!(
            daemonset_rollout(&ds),
            Progress::Waiting("2 of 3 updated pods available".into())
        );
    }
}
