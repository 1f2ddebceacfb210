//! Health gates read from the cluster: proxies at the expected version, a revision no longer used.
//! (`check-passes` re-observes through the caller: see [`super::HealthCheck`].)

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::ListParams;

use crate::version::{ImageVersion, Version, image_version};

use super::wait::Progress;

const PAGE: u32 = 500;
const PROXY_CONTAINER: &str = "istio-proxy";

/// Whether a proxy image's version satisfies the gate: same `major.minor`, and the same patch when the
/// gate names one. Pure.
pub fn proxy_matches(image: &str, want: &Version) -> Result<bool, String> {
    match image_version(image) {
        ImageVersion::Tagged { version, .. } => Ok(version.major == want.major
            && version.minor == want.minor
            && (want.patch.is_none() || version.patch == want.patch)),
        ImageVersion::Digest => Err(format!("{image} is pinned by digest")),
        ImageVersion::Unreadable(tag) => Err(format!("{image} has no version tag ({tag})")),
    }
}

fn proxy_image(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == PROXY_CONTAINER)
        .and_then(|c| c.image.as_deref())
}

/// Every istio-proxy in `namespaces` (all when empty) at `want`. Pods are listed in pages.
pub async fn proxies_at_version(
    client: &kube::Client,
    want: &Version,
    namespaces: &[String],
) -> Result<Progress, kube::Error> {
    let apis: Vec<(String, Api<Pod>)> = if namespaces.is_empty() {
        vec![("all namespaces".into(), Api::all(client.clone()))]
    } else {
        namespaces
            .iter()
            .map(|ns| (ns.clone(), Api::namespaced(client.clone(), ns)))
            .collect()
    };
    let mut total = 0u64;
    // "namespace/pod: reason", a few examples per wrong version.
    let mut off: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut off_count = 0u64;
    for (_, api) in apis {
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = api.list(&params).await?;
            for pod in &page.items {
                let Some(image) = proxy_image(pod) else {
                    continue;
                };
                if pod.metadata.deletion_timestamp.is_some() {
                    continue; // terminating: on its way out
                }
                total += 1;
                let verdict = proxy_matches(image, want);
                if verdict != Ok(true) {
                    off_count += 1;
                    let key = match verdict {
                        Ok(_) => image_version_text(image),
                        Err(why) => why,
                    };
                    let examples = off.entry(key).or_default();
                    if examples.len() < 3 {
                        examples.push(format!(
                            "{}/{}",
                            pod.metadata.namespace.as_deref().unwrap_or(""),
                            pod.metadata.name.as_deref().unwrap_or("")
                        ));
                    }
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(if off_count == 0 {
        Progress::Met
    } else {
        let detail = off
            .iter()
            .map(|(v, pods)| format!("{v} ({})", pods.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        Progress::Waiting(format!(
            "{off_count} of {total} proxies not at {want}: {detail}"
        ))
    })
}

fn image_version_text(image: &str) -> String {
    match image_version(image) {
        ImageVersion::Tagged { version, .. } => version.to_string(),
        _ => image.to_string(),
    }
}

/// No pod, namespace label or revision tag still uses the Istio `revision`.
pub async fn revision_unused(
    client: &kube::Client,
    revision: &str,
) -> Result<Progress, kube::Error> {
    let selector = format!("istio.io/rev={revision}");
    let mut users = Vec::new();
    let pods: Api<Pod> = Api::all(client.clone());
    let some_pods = pods
        .list_metadata(&ListParams::default().labels(&selector).limit(PAGE))
        .await?;
    let live_pods = some_pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    if live_pods > 0 {
        let more = if some_pods.metadata.continue_.is_some() {
            "+"
        } else {
            ""
        };
        users.push(format!("{live_pods}{more} pods"));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let labelled: Vec<String> = namespaces
        .list_metadata(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    if !labelled.is_empty() {
        users.push(format!("namespaces {}", labelled.join(", ")));
    }
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let tags: Vec<String> = webhooks
        .list_metadata(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|w| {
            w.metadata
                .labels
                .and_then(|l| l.get("istio.io/tag").cloned())
        })
        .collect();
    if !tags.is_empty() {
        users.push(format!("revision tags {}", tags.join(", ")));
    }
    Ok(if users.is_empty() {
        Progress::Met
    } else {
        Progress::Waiting(format!(
            "revision {revision} still used by {}",
            users.join("; ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minor_gate_accepts_any_patch_and_a_patch_gate_only_its_own() {
        let minor = Version::parse("1.24").expect("version");
        let exact = Version::parse("1.24.2").expect("version");
        assert_eq!(
            proxy_matches("docker.io/istio/proxyv2:1.24.3", &minor),
            Ok(true)
        );
        assert_eq!(
            proxy_matches("docker.io/istio/proxyv2:1.24.3", &exact),
            Ok(false)
        );
        assert_eq!(
            proxy_matches("docker.io/istio/proxyv2:1.24.2-distroless", &exact),
            Ok(true)
        );
        assert_eq!(
            proxy_matches("docker.io/istio/proxyv2:1.23.4", &minor),
            Ok(false)
        );
    }

    #[test]
    fn a_proxy_without_a_readable_version_cannot_pass() {
        let want = Version::parse("1.24").expect("version");
        assert!(proxy_matches("istio/proxyv2@sha256:abcd", &want).is_err());
        assert!(proxy_matches("istio/proxyv2:latest", &want).is_err());
    }
}
