//! The apply lock: a `coordination.k8s.io/v1` Lease `kubectl-meshup-lock` beside the journal.
//!
//! The holder renews it every third of its duration while the apply runs (a background task that stops
//! when the [`LockGuard`] is dropped, so a killed or dropped apply lets it expire). A second apply is
//! refused while the lease is held and not expired; `--break-lock` takes it over regardless.
//!
//! [`while_held`] runs the apply with the locks and gives them back on every way out: success, error,
//! interrupt, and a panic (released, then the panic goes on).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use super::journal::{MANAGED_BY, MANAGED_BY_LABEL};

pub const LOCK_NAME: &str = "kubectl-meshup-lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another apply holds the lock Lease {namespace}/{LOCK_NAME} in cluster {cluster} (holder {holder}, renewed {renewed}); wait for it to finish, or if that process is gone, re-run with --break-lock"
    )]
    Held {
        cluster: String,
        namespace: String,
        holder: String,
        renewed: String,
    },
    #[error(
        "cannot read or write the lock Lease {namespace}/{LOCK_NAME} in cluster {cluster}: {}", crate::client::brief(.source)
    )]
    Api {
        cluster: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// Who holds a lock: host, process id and a random part, so two processes never look alike.
pub fn holder_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    let random = std::collections::hash_map::RandomState::new();
    let nonce = std::hash::BuildHasher::hash_one(&random, std::process::id());
    format!("{host}-{}-{:08x}", std::process::id(), nonce as u32)
}

/// Whether a lease held by someone else still stands at `now`. Pure.
pub fn is_live(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return false;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true; // held with no time: treat as live, --break-lock is the way out
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    renewed.0 + SignedDuration::from_secs(duration) > now
}

/// The held lock; dropping it stops the renewal (the lease then expires on its own).
pub struct LockGuard {
    api: Api<Lease>,
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl LockGuard {
    /// Give the lock back (delete the lease if still ours). Failures are ignored: the lease expires.
    pub async fn release(self) {
        self.renewal.abort();
        if let Ok(Some(lease)) = self.api.get_opt(LOCK_NAME).await {
            let ours = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.holder.as_str());
            if ours {
                let _ = self.api.delete(LOCK_NAME, &DeleteParams::default()).await;
            }
        }
    }
}

/// Run `work` holding `locks`, then release them, whatever `work` ends with. A panic in `work` is
/// caught, the locks are released, and the panic resumes.
pub async fn while_held<T>(locks: Vec<LockGuard>, work: impl Future<Output = T>) -> T {
    use futures::FutureExt as _;
    let outcome = std::panic::AssertUnwindSafe(work).catch_unwind().await;
    release_all(locks).await;
    match outcome {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Give every lock back, in order.
pub async fn release_all(locks: Vec<LockGuard>) {
    for guard in locks {
        guard.release().await;
    }
}

/// Take the lock in one cluster.
pub async fn acquire(
    client: kube::Client,
    cluster: &str,
    namespace: &str,
    holder: &str,
    duration: Duration,
    break_lock: bool,
) -> Result<LockGuard, LockError> {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let api_err = |source| LockError::Api {
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        source,
    };
    let seconds = i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let now = Timestamp::now();
    let existing = api.get_opt(LOCK_NAME).await.map_err(api_err)?;
    let mut lease = lease_for(namespace, holder, seconds, now);
    // Another apply taking the lock between our read and our write makes the write conflict (409).
    let raced = |e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 409 => LockError::Held {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            holder: "another apply that took it just now".to_string(),
            renewed: "just now".to_string(),
        },
        other => api_err(other),
    };
    match existing {
        None => {
            api.create(&PostParams::default(), &lease)
                .await
                .map_err(raced)?;
        }
        Some(found) => {
            let other = found
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default();
            if other != holder && is_live(&found, now) && !break_lock {
                let renewed = found
                    .spec
                    .as_ref()
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0.to_string())
                    .unwrap_or_else(|| "at an unknown time".to_string());
                return Err(LockError::Held {
                    cluster: cluster.to_string(),
                    namespace: namespace.to_string(),
                    holder: other,
                    renewed,
                });
            }
            lease.metadata.resource_version = found.metadata.resource_version;
            api.replace(LOCK_NAME, &PostParams::default(), &lease)
                .await
                .map_err(raced)?;
        }
    }
    let renewal = tokio::spawn(renew_forever(api.clone(), holder.to_string(), duration / 3));
    Ok(LockGuard {
        api,
        holder: holder.to_string(),
        renewal,
    })
}

async fn renew_forever(api: Api<Lease>, holder: String, every: Duration) {
    let every = every.max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(every).await;
        let Ok(Some(mut lease)) = api.get_opt(LOCK_NAME).await else {
            continue;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(holder.as_str()) {
            return; // broken by someone else: stop renewing, their apply owns it now
        }
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        // A failed renewal is retried at the next tick; the lease only lapses after its duration.
        let _ = api.replace(LOCK_NAME, &PostParams::default(), &lease).await;
    }
}

fn lease_for(namespace: &str, holder: &str, seconds: i32, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LOCK_NAME.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(std::collections::BTreeMap::from([(
                MANAGED_BY_LABEL.to_string(),
                MANAGED_BY.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_live_until_its_duration_after_renewal() {
        let now = Timestamp::now();
        let lease = lease_for("gloo-mesh", "host-1-abc", 60, now);
        assert!(is_live(&lease, now + SignedDuration::from_secs(59)));
        assert!(!is_live(&lease, now + SignedDuration::from_secs(61)));
    }

    #[test]
    fn a_released_lease_is_not_live() {
        let now = Timestamp::now();
        let mut lease = lease_for("gloo-mesh", "host-1-abc", 60, now);
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
        }
        assert!(!is_live(&lease, now));
    }

    #[test]
    fn holder_identities_differ() {
        assert_ne!(holder_identity(), holder_identity());
    }
}
