//! Health gates read from the cluster: proxies at the expected version, a revision no longer used,
//! node kernels new enough, istiod with ambient enabled. (`check-passes` re-observes through the
//! caller: see [`super::HealthCheck`].)

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::api::ListParams;

use crate::observe::paging::{Meta, OwnerRef, fold_typed};
use crate::observe::workload::{env_value, pick_container};
use crate::observe::{is_ztunnel_image, owner_of, revision_of};
use crate::plan::Renewal;
use crate::verdict::{KernelVerdict, kmesh_kernel};
use crate::version::{ImageVersion, KernelVersion, Minor, Version, image_version};

use super::wait::Progress;

const PAGE: u32 = 500;
const PROXY_CONTAINER: &str = "istio-proxy";

/// Whether a proxy image's version satisfies the gate: same `major.minor`, and the same patch when the
/// gate names one. Pure.
pub fn proxy_matches(image: &str, want: &Version) -> Result<bool, String> {
    match image_version(image) {
        ImageVersion::Tagged { version, .. } => Ok(version.satisfies(want)),
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

/// The owner a pod's proxies are counted under: observe's one naming rule
/// ([`crate::observe::owner_of`]) applied to the pod's metadata, so the gate reads the same names
/// the planner decided restarts from.
pub fn pod_owner(pod: &Pod) -> String {
    let meta = &pod.metadata;
    let facts = Meta {
        name: meta.name.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        owner_references: meta
            .owner_references
            .iter()
            .flatten()
            .map(|o| OwnerRef {
                kind: o.kind.clone(),
                name: o.name.clone(),
                controller: o.controller,
            })
            .collect(),
        ..Meta::default()
    };
    owner_of(&facts)
}

/// The Istio revision whose injector gave the pod its proxy (observe's one rule: the `istio.io/rev`
/// label, else the revision in `sidecar.istio.io/status`, else `default`), or `None` for a pod
/// without one: istiod's own pods carry `istio.io/rev` but no proxy, and ztunnel's `istio-proxy` is no
/// sidecar.
fn sidecar_revision(pod: &Pod) -> Option<String> {
    let image = proxy_image(pod)?;
    if is_ztunnel_image(image) {
        return None;
    }
    let meta = Meta {
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        ..Meta::default()
    };
    Some(revision_of(&meta))
}

/// A pod that has finished (a Job's completed pod) or is terminating runs no proxy any more.
fn is_gone(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_some() || matches!(phase, Some("Succeeded" | "Failed"))
}

/// How many owners a "left on" note names per version before it only counts the rest.
const NAMED_OWNERS: usize = 5;

/// What the proxies gate found in the pods listed so far.
#[derive(Debug, Default)]
struct ProxyTally {
    /// Proxies a restart renews.
    total: u64,
    /// "namespace/pod", a few examples per wrong version.
    off: BTreeMap<String, Vec<String>>,
    off_count: u64,
    /// Version -> owners left aside on it, as `Kind/name (how they renew)`.
    left: BTreeMap<String, BTreeSet<String>>,
}

impl ProxyTally {
    fn add(&mut self, pod: &Pod, want: &Version, one_namespace: bool) {
        let Some(image) = proxy_image(pod) else {
            return;
        };
        if is_gone(pod) {
            return;
        }
        let owner = pod_owner(pod);
        let renewal = Renewal::of_owner(&owner);
        if renewal == Renewal::Restart {
            self.total += 1;
        }
        let version = match proxy_matches(image, want) {
            Ok(true) => return,
            Ok(false) => image_version_text(image),
            Err(why) => why,
        };
        if renewal != Renewal::Restart {
            let named = if one_namespace {
                owner
            } else {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("");
                format!("{ns}/{owner}")
            };
            self.left
                .entry(version)
                .or_default()
                .insert(format!("{named} ({})", renewal.how()));
            return;
        }
        self.off_count += 1;
        let examples = self.off.entry(version).or_default();
        if examples.len() < 3 {
            examples.push(format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.name.as_deref().unwrap_or("")
            ));
        }
    }

    fn merge(&mut self, other: ProxyTally) {
        self.total += other.total;
        self.off_count += other.off_count;
        for (version, pods) in other.off {
            let examples = self.off.entry(version).or_default();
            for pod in pods {
                if examples.len() < 3 {
                    examples.push(pod);
                }
            }
        }
        for (version, owners) in other.left {
            self.left.entry(version).or_default().extend(owners);
        }
    }
}

/// Every istio-proxy in `namespaces` (all when empty) at `want`, judging only pods whose owner a
/// restart renews ([`Renewal::Restart`]): the pods of Jobs, CronJobs and bare pods keep their proxy
/// until their next run or until a person recreates them (the plan warns of them), so they cannot
/// hold the gate; when met, the note names those left on another version. Pods are listed in pages.
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
    let one_namespace = namespaces.len() == 1;
    let params = ListParams::default().limit(PAGE);
    let mut tally = ProxyTally::default();
    for (_, api) in apis {
        // Each namespace's list is folded on its own, so that a restarted list (410) starts afresh.
        let listed = fold_typed(
            &params,
            |p| {
                let api = &api;
                async move { api.list(&p).await }
            },
            |t: &mut ProxyTally, pod: Pod| t.add(&pod, want, one_namespace),
        )
        .await?;
        tally.merge(listed);
    }
    let ProxyTally {
        total,
        off,
        off_count,
        left,
    } = tally;
    Ok(if off_count > 0 {
        let detail = off
            .iter()
            .map(|(v, pods)| format!("{v} ({})", pods.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        Progress::Waiting(format!(
            "{off_count} of {total} proxies not at {want}: {detail}"
        ))
    } else if left.is_empty() {
        Progress::Met
    } else {
        Progress::MetWithNote(left_note(&left))
    })
}

/// `left on 1.20.8: CronJob/nightly-export (next run), Pod/debug (recreate by hand)`.
fn left_note(left: &BTreeMap<String, BTreeSet<String>>) -> String {
    left.iter()
        .map(|(version, owners)| {
            let named: Vec<&str> = owners
                .iter()
                .take(NAMED_OWNERS)
                .map(String::as_str)
                .collect();
            let more = owners.len().saturating_sub(NAMED_OWNERS);
            let rest = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("left on {version}: {}{rest}", named.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn image_version_text(image: &str) -> String {
    match image_version(image) {
        ImageVersion::Tagged { version, .. } => version.to_string(),
        _ => image.to_string(),
    }
}

/// What a pod the plan does not renew should get from a person, for the revision gate's message:
/// `Pod legacy/debug-shell still runs revision 1-20-3; recreate it by hand`. Pure.
pub fn pod_left_on_revision(namespace: &str, name: &str, owner: &str, revision: &str) -> String {
    let pod = format!("Pod {namespace}/{name}");
    match Renewal::of_owner(owner) {
        Renewal::NextRun => format!(
            "{pod} of {owner} still runs revision {revision}; let it finish or delete it (the next run is injected by the new revision)"
        ),
        Renewal::ByHand if owner.starts_with("Pod/") => {
            format!("{pod} still runs revision {revision}; recreate it by hand")
        }
        _ => format!(
            "{pod} of {owner} still runs revision {revision}; recreate it by hand (a restart of {owner} does not replace it)"
        ),
    }
}

/// No running pod, namespace label or revision tag still uses the Istio `revision`. Finished pods
/// (a Job's Succeeded or Failed ones) and terminating ones are not counted. When only pods no step
/// renews are left (Job/CronJob pods still running, pods without a controller: the plan warned of
/// them), the answer is [`Progress::NeedsPerson`], naming each pod and what to do. Pods are listed in
/// pages.
pub async fn revision_unused(
    client: &kube::Client,
    revision: &str,
) -> Result<Progress, kube::Error> {
    let selector = format!("istio.io/rev={revision}");
    let mut users = Vec::new();
    let pods: Api<Pod> = Api::all(client.clone());
    // Every pod, not `istio.io/rev=REV`: injected pods record their revision in an annotation (the
    // label only when their template has it), and istiod's own pods carry the label without a proxy.
    let (mut restarted, mut by_a_person) = fold_typed(
        &ListParams::default().limit(PAGE),
        |p| {
            let pods = &pods;
            async move { pods.list(&p).await }
        },
        |(restarted, by_a_person): &mut (Vec<String>, Vec<String>), pod: Pod| {
            if is_gone(&pod) || sidecar_revision(&pod).as_deref() != Some(revision) {
                return;
            }
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
            let name = pod.metadata.name.as_deref().unwrap_or("");
            let owner = pod_owner(&pod);
            if Renewal::of_owner(&owner) == Renewal::Restart {
                restarted.push(format!("{namespace}/{name}"));
            } else {
                by_a_person.push(pod_left_on_revision(namespace, name, &owner, revision));
            }
        },
    )
    .await?;
    if !restarted.is_empty() {
        let count = restarted.len();
        restarted.truncate(3);
        let more = if count > 3 { ", ..." } else { "" };
        users.push(format!("{count} pods ({}{more})", restarted.join(", ")));
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
    let count = by_a_person.len();
    let more = count.saturating_sub(NAMED_OWNERS);
    by_a_person.truncate(NAMED_OWNERS);
    if more > 0 {
        by_a_person.push(format!("and {more} more such pods"));
    }
    Ok(if !users.is_empty() {
        if count > 0 {
            users.push(format!("{count} pods no step renews"));
        }
        Progress::Waiting(format!(
            "revision {revision} still used by {}",
            users.join("; ")
        ))
    } else if count > 0 {
        Progress::NeedsPerson(by_a_person.join("; "))
    } else {
        Progress::Met
    })
}

/// How many failing nodes a kernel gate names before it only counts the rest.
const NAMED_NODES: usize = 10;

/// Linux nodes whose kernel is older than `min` or cannot be read, as `name (kernel)`, by the one
/// verdict check and plan use ([`kmesh_kernel`]): nodes that report another operating system
/// (Windows) are skipped, a node that reports none is judged. Pure.
pub fn nodes_below_kernel<'a>(
    nodes: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    min: Minor,
) -> Vec<String> {
    nodes
        .into_iter()
        .filter_map(|(name, os, kernel)| {
            match kmesh_kernel(os, KernelVersion::parse(kernel).as_ref(), min) {
                KernelVerdict::NotLinux | KernelVerdict::AtLeast(_) => None,
                KernelVerdict::Below(_) => Some(format!("{name} ({kernel})")),
                KernelVerdict::Unreadable if kernel.is_empty() => {
                    Some(format!("{name} (no kernel reported)"))
                }
                KernelVerdict::Unreadable => Some(format!("{name} (unreadable kernel {kernel})")),
            }
        })
        .collect()
}

/// Every Linux node runs a kernel of at least `min`. Nodes are listed in pages. A node's kernel does
/// not change while we wait, so a failing node fails the gate at once, naming the nodes.
pub async fn node_kernels_at_least(
    client: &kube::Client,
    min: Minor,
) -> Result<Progress, kube::Error> {
    node_kernels_in_pages(client, min, PAGE).await
}

async fn node_kernels_in_pages(
    client: &kube::Client,
    min: Minor,
    page: u32,
) -> Result<Progress, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut below: Vec<String> = fold_typed(
        &ListParams::default().limit(page),
        |p| {
            let api = &api;
            async move { api.list(&p).await }
        },
        |below: &mut Vec<String>, n: Node| {
            let info = n.status.as_ref().and_then(|s| s.node_info.as_ref());
            let facts = (
                n.metadata.name.as_deref().unwrap_or(""),
                info.map(|i| i.operating_system.as_str()).unwrap_or(""),
                info.map(|i| i.kernel_version.as_str()).unwrap_or(""),
            );
            below.extend(nodes_below_kernel([facts], min));
        },
    )
    .await?;
    Ok(if below.is_empty() {
        Progress::Met
    } else {
        let count = below.len();
        let more = count.saturating_sub(NAMED_NODES);
        below.truncate(NAMED_NODES);
        let rest = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        Progress::Failed(format!(
            "{count} Linux node(s) run a kernel older than {min}: {}{rest}; upgrade their kernels (or replace the nodes) first",
            below.join(", ")
        ))
    })
}

/// The Istio revision an istiod Deployment serves: its `istio.io/rev` label, `default` without one
/// (the same reading as observe's).
fn istiod_revision(d: &Deployment) -> &str {
    d.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("istio.io/rev"))
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("default")
}

/// Whether an istiod Deployment's `discovery` container runs with `PILOT_ENABLE_AMBIENT=true`. Pure.
pub fn istiod_ambient_enabled(d: &Deployment) -> bool {
    let spec = d.spec.template.spec.as_ref();
    env_value(pick_container(spec, "discovery"), "PILOT_ENABLE_AMBIENT")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// istiod of `revision` in `namespace` runs with `PILOT_ENABLE_AMBIENT=true`. Not yet (the person may
/// still be rolling it out) is waiting, not failure.
pub async fn istiod_ambient(
    client: &kube::Client,
    namespace: &str,
    revision: &str,
) -> Result<Progress, kube::Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let (ambient, found) = fold_typed(
        &ListParams::default().labels("app=istiod").limit(PAGE),
        |p| {
            let api = &api;
            async move { api.list(&p).await }
        },
        |(ambient, found): &mut (bool, Vec<String>), d: Deployment| {
            if istiod_revision(&d) != revision {
                return;
            }
            if istiod_ambient_enabled(&d) {
                *ambient = true;
            }
            found.push(d.metadata.name.clone().unwrap_or_default());
        },
    )
    .await?;
    if ambient {
        return Ok(Progress::Met);
    }
    Ok(Progress::Waiting(if found.is_empty() {
        format!("no istiod Deployment of revision {revision} in namespace {namespace}")
    } else {
        format!(
            "istiod Deployment {namespace}/{} of revision {revision} does not set PILOT_ENABLE_AMBIENT=true",
            found.join(", ")
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole_pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    /// As a real cluster has them: a pod injected in a namespace labelled `istio.io/rev` records the
    /// revision only in `sidecar.istio.io/status`; istiod's own pod carries the label and no proxy.
    #[test]
    fn the_revision_a_pod_runs_is_its_injectors() {
        let injected = whole_pod(serde_json::json!({
            "metadata": {"name": "ratings-v1-5fdd7cf8b-kvgrg", "namespace": "bookinfo",
                "annotations": {"istio.io/rev": "1-30-4",
                    "sidecar.istio.io/status": "{\"initContainers\":[\"istio-init\",\"istio-proxy\"],\"revision\":\"1-30-4\"}"}},
            "spec": {"initContainers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.4"}],
                     "containers": [{"name": "ratings", "image": "ratings:1"}]}
        }));
        assert_eq!(sidecar_revision(&injected).as_deref(), Some("1-30-4"));
        let istiod = whole_pod(serde_json::json!({
            "metadata": {"name": "istiod-1-30-4-7d57c66978-pzskg", "labels": {"app": "istiod", "istio.io/rev": "1-30-4"}},
            "spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.30.4"}]}
        }));
        assert_eq!(sidecar_revision(&istiod), None);
        let ztunnel = whole_pod(serde_json::json!({
            "metadata": {"name": "ztunnel-x7k2p", "annotations": {"istio.io/rev": "1-30-4"}},
            "spec": {"containers": [{"name": "istio-proxy", "image": "docker.io/istio/ztunnel:1.30.4"}]}
        }));
        assert_eq!(sidecar_revision(&ztunnel), None);
    }

    fn minor(s: &str) -> Minor {
        Minor::parse(s).expect("minor")
    }

    #[test]
    fn the_kernel_gate_names_old_and_unreadable_linux_nodes_and_skips_windows() {
        let nodes = [
            ("ip-10-0-1-12", "linux", "5.10.225-213.878.amzn2.x86_64"),
            ("ip-10-0-1-13", "linux", "5.4.0-150-generic"),
            ("gke-pool-a", "linux", "6.1.100+"),
            ("akswin000000", "windows", "10.0.20348.2527"),
            ("odd-node", "linux", "custom"),
            ("bare", "", ""),
        ];
        assert_eq!(
            nodes_below_kernel(nodes, minor("5.10")),
            vec![
                "ip-10-0-1-13 (5.4.0-150-generic)".to_string(),
                "odd-node (unreadable kernel custom)".to_string(),
                "bare (no kernel reported)".to_string(),
            ]
        );
    }

    #[test]
    fn kernels_compare_numerically_not_as_text() {
        let nodes = [("a", "linux", "5.9.0"), ("b", "Linux", "5.10.0")];
        assert_eq!(
            nodes_below_kernel(nodes, minor("5.10")),
            vec!["a (5.9.0)".to_string()]
        );
        assert!(nodes_below_kernel(nodes, minor("5.9")).is_empty());
    }

    fn node(name: &str, kernel: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\nstatus:\n  nodeInfo:\n    kernelVersion: {kernel}\n    operatingSystem: linux\n    osImage: Ubuntu\n    architecture: amd64\n    kubeletVersion: v1.30.0\n    containerRuntimeVersion: containerd://1.7.0\n    bootID: b\n    machineID: m\n    systemUUID: s\n    kubeProxyVersion: v1.30.0\n"
        )
    }

    /// A list whose continue token expired (410) starts again from the first page with nothing kept
    /// from the pages read before: the old node is named once, not once per attempt.
    #[tokio::test]
    async fn a_gate_restarts_a_list_whose_continue_token_expired() {
        let server = fake_apiserver::FakeApiServer::start();
        let nodes = ["a-old", "b-new", "c-new"]
            .iter()
            .map(|n| node(n, if *n == "a-old" { "5.4.0" } else { "6.1.0" }))
            .collect::<Vec<_>>()
            .join("---\n");
        server.seed_yaml(&nodes).expect("seed nodes");
        let expired = server.inject(
            fake_apiserver::Fault::expired_continue()
                .on("/api/v1/nodes")
                .times(1),
        );
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        let client = kube::Client::try_from(config).expect("client");
        let progress = node_kernels_in_pages(&client, minor("5.10"), 1)
            .await
            .expect("the list is read after a restart");
        assert_eq!(server.fault_hits(expired), 1, "the token expired once");
        let Progress::Failed(why) = progress else {
            panic!("an old kernel fails the gate: {progress:?}");
        };
        assert_eq!(
            why,
            "1 Linux node(s) run a kernel older than 5.10: a-old (5.4.0); upgrade their kernels (or replace the nodes) first"
        );
    }

    #[test]
    fn a_node_with_no_operating_system_is_judged_and_windows_is_not() {
        let nodes = [
            ("bare", "", "5.4.0"),
            ("pending", "", ""),
            ("win", "windows", "10.0.20348"),
        ];
        assert_eq!(
            nodes_below_kernel(nodes, minor("5.10")),
            vec![
                "bare (5.4.0)".to_string(),
                "pending (no kernel reported)".to_string()
            ]
        );
    }

    fn istiod(revision: Option<&str>, env: &[(&str, &str)]) -> Deployment {
        let mut labels = serde_json::json!({"app": "istiod"});
        if let Some(r) = revision {
            labels["istio.io/rev"] = serde_json::json!(r);
        }
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod", "namespace": "istio-system", "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": "istiod"}},
                "template": {"spec": {"containers": [
                    {"name": "discovery", "image": "docker.io/istio/pilot:1.24.2", "env": env}
                ]}}
            }
        }))
        .expect("deployment")
    }

    #[test]
    fn ambient_is_read_from_the_discovery_container_env() {
        assert!(istiod_ambient_enabled(&istiod(
            None,
            &[("PILOT_ENABLE_AMBIENT", "true")]
        )));
        assert!(istiod_ambient_enabled(&istiod(
            Some("1-24"),
            &[("PILOT_ENABLE_AMBIENT", "True")]
        )));
        assert!(!istiod_ambient_enabled(&istiod(
            None,
            &[("PILOT_ENABLE_AMBIENT", "false")]
        )));
        assert!(!istiod_ambient_enabled(&istiod(None, &[("OTHER", "true")])));
    }

    #[test]
    fn an_istiod_without_a_revision_label_is_the_default_revision() {
        assert_eq!(istiod_revision(&istiod(None, &[])), "default");
        assert_eq!(istiod_revision(&istiod(Some(""), &[])), "default");
        assert_eq!(istiod_revision(&istiod(Some("1-24"), &[])), "1-24");
    }

    fn pod(meta: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({ "metadata": meta })).expect("pod")
    }

    /// The gate hands k8s-openapi pods to observe's one rule (`observe::owner_of`): the same pods as
    /// observe's own owner tests (observe/proxies.rs) get the same names.
    #[test]
    fn pod_owners_are_named_as_observe_names_them() {
        let rs = pod(serde_json::json!({"name": "reviews-v1-7f6d8c9b5-0",
            "labels": {"pod-template-hash": "7f6d8c9b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "reviews-v1-7f6d8c9b5", "uid": "1", "controller": true}]}));
        assert_eq!(pod_owner(&rs), "Deployment/reviews-v1");
        let sts = pod(serde_json::json!({"name": "db-0",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "1", "controller": true}]}));
        assert_eq!(pod_owner(&sts), "StatefulSet/db");
        assert_eq!(
            pod_owner(&pod(serde_json::json!({"name": "debug"}))),
            "Pod/debug"
        );
        let handmade = pod(serde_json::json!({"name": "x",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "handmade", "uid": "1"}]}));
        assert_eq!(pod_owner(&handmade), "ReplicaSet/handmade");
        let job = pod(serde_json::json!({"name": "nightly-export-28761234-x2x9q",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-export-28761234", "uid": "1", "controller": true}]}));
        assert_eq!(pod_owner(&job), "Job/nightly-export-28761234");
        assert_eq!(Renewal::of_owner(&pod_owner(&rs)), Renewal::Restart);
        assert_eq!(Renewal::of_owner(&pod_owner(&job)), Renewal::NextRun);
        assert_eq!(Renewal::of_owner(&pod_owner(&handmade)), Renewal::ByHand);
    }

    #[test]
    fn the_left_note_names_a_few_owners_per_version_and_counts_the_rest() {
        let mut left: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        left.entry("1.20.8".into())
            .or_default()
            .insert("CronJob/nightly-export (next run)".into());
        for i in 0..7 {
            left.entry("1.22.1".into())
                .or_default()
                .insert(format!("Pod/debug-{i} (recreate by hand)"));
        }
        assert_eq!(
            left_note(&left),
            "left on 1.20.8: CronJob/nightly-export (next run); left on 1.22.1: Pod/debug-0 (recreate by hand), Pod/debug-1 (recreate by hand), Pod/debug-2 (recreate by hand), Pod/debug-3 (recreate by hand), Pod/debug-4 (recreate by hand) and 2 more"
        );
    }

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

    #[test]
    fn a_pod_left_on_the_old_revision_is_named_with_what_a_person_does() {
        assert_eq!(
            pod_left_on_revision("legacy", "debug-shell", "Pod/debug-shell", "1-20-3"),
            "Pod legacy/debug-shell still runs revision 1-20-3; recreate it by hand"
        );
        assert_eq!(
            pod_left_on_revision(
                "batch",
                "export-28761234-x2x9q",
                "Job/export-28761234",
                "1-23"
            ),
            "Pod batch/export-28761234-x2x9q of Job/export-28761234 still runs revision 1-23; let it finish or delete it (the next run is injected by the new revision)"
        );
        assert_eq!(
            pod_left_on_revision("shop", "cart-abc", "ReplicaSet/cart", "1-23"),
            "Pod shop/cart-abc of ReplicaSet/cart still runs revision 1-23; recreate it by hand (a restart of ReplicaSet/cart does not replace it)"
        );
    }
}
