//! What a wait or gate polls ([`Awaited`]) and one reading of it ([`evaluate`]): the IO readers in
//! `wait` and `gates`, and the check rules through the caller's [`HealthCheck`].

use super::HealthCheck;
use super::{gates, wait, wait::Progress};

/// What a wait or gate polls.
pub(super) enum Awaited {
    Rollout(crate::plan::ObjectRef),
    Resources {
        group: String,
        version: Option<String>,
        resources: Vec<String>,
    },
    Proxies {
        version: crate::version::Version,
        namespaces: Vec<String>,
    },
    RevisionUnused(String),
    Health,
    NodeKernels(crate::version::Minor),
    IstiodAmbient {
        namespace: String,
        revision: String,
    },
}

pub(super) async fn evaluate(
    client: &kube::Client,
    cluster: &str,
    awaited: &Awaited,
    health: Option<HealthCheck>,
) -> Result<Progress, String> {
    let kube = |e: kube::Error| crate::client::brief(&e);
    match awaited {
        Awaited::Rollout(target) => wait::rollout(client, target).await.map_err(kube),
        Awaited::Resources {
            group,
            version,
            resources,
        } => wait::resources_present(client, group, version.as_deref(), resources)
            .await
            .map_err(kube),
        Awaited::Proxies {
            version,
            namespaces,
        } => gates::proxies_at_version(client, version, namespaces)
            .await
            .map_err(kube),
        Awaited::RevisionUnused(revision) => {
            gates::revision_unused(client, revision).await.map_err(kube)
        }
        Awaited::NodeKernels(min) => gates::node_kernels_at_least(client, *min)
            .await
            .map_err(kube),
        Awaited::IstiodAmbient {
            namespace,
            revision,
        } => gates::istiod_ambient(client, namespace, revision)
            .await
            .map_err(kube),
        Awaited::Health => {
            let Some(health) = health else {
                return Ok(Progress::Failed(
                    "no health check is wired into this apply; run `kubectl meshup check` yourself"
                        .to_string(),
                ));
            };
            let failures = health(cluster.to_string()).await?;
            Ok(if failures.is_empty() {
                Progress::Met
            } else {
                Progress::Waiting(failures.join("; "))
            })
        }
    }
}
