//! observe: the only code that reads clusters. For each context, concurrently, it reads the server
//! version, nodes, the Istio control and data planes, Gloo Mesh and Kmesh into a [`Cluster`].
//!
//! How it reads: every list is paged (`limit` 500 + `continue`) and folded page by page; lists are
//! narrowed server-side by label selectors; independent lists run in parallel; metadata-only lists
//! where names and labels suffice. So the request count grows with pages, not with objects. A list the
//! user may not read (403) becomes an [`Unread`] entry and the rest goes on; 401, an unreachable server
//! or any other failure is an error for that cluster.

pub mod gloo;
pub mod helm;
mod istiod_config;
mod kmesh;
mod nodes;
pub mod paging;
mod proxies;
pub mod workload;

pub use proxies::{is_ztunnel_image, owner_of, revision_of};

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use crate::client::{ClusterError, ConnectedCluster, classify, is_forbidden};
use crate::snapshot::{
    Cluster, ClusterSnapshot, GlooMesh, HelmRelease, InstallMethod, Istio, IstioControlPlane,
    IstioGateway, IstioWebhook, MeshNamespace, RegisteredCluster, ServedGroup, Unread,
};
use crate::version::KubeVersion;
use nodes::{NodeFacts, NodeFold};
use paging::{ListError, MetaOnly, PAGE_SIZE, Shape, collection, fold_pages};
use proxies::{PodFacts, ProxyFold};
use workload::{env_value, from_daemonset, from_deployment, pick_container};

const APPS: &str = "/apis/apps/v1";
const CORE: &str = "/api/v1";

/// What observe needs besides the clusters themselves.
#[derive(Debug, Clone, Default)]
pub struct ObserveOptions {
    /// Look for istiod only in this namespace (`--istio-namespace`); all namespaces when `None`.
    pub istio_namespace: Option<String>,
}

/// Observes every target concurrently, each on its own task (so parsing pages of several clusters
/// uses every core); a cluster that fails fails the whole read.
pub async fn observe(
    targets: &[ConnectedCluster],
    opts: &ObserveOptions,
) -> Result<ClusterSnapshot, ClusterError> {
    observe_paged(targets, opts, PAGE_SIZE).await
}

/// [`observe`] with another page size than [`PAGE_SIZE`] (tests compare verdicts across page sizes).
pub async fn observe_paged(
    targets: &[ConnectedCluster],
    opts: &ObserveOptions,
    page_size: u32,
) -> Result<ClusterSnapshot, ClusterError> {
    let tasks: Vec<_> = targets
        .iter()
        .cloned()
        .map(|target| {
            let opts = opts.clone();
            let context = target.context.clone();
            let task =
                tokio::spawn(async move { observe_cluster_paged(&target, &opts, page_size).await });
            (context, task)
        })
        .collect();
    let mut clusters = Vec::with_capacity(tasks.len());
    for (context, task) in tasks {
        let cluster = task.await.map_err(|e| ClusterError::Other {
            context,
            what: "the cluster".to_string(),
            reason: e.to_string(),
        })??;
        clusters.push(cluster);
    }
    Ok(ClusterSnapshot::new(clusters))
}

/// The result of one read: the value, or what a 403 left unread.
enum Read<A> {
    Done(A),
    Forbidden(Unread),
}

/// Collects the unread entries while taking values out of reads.
#[derive(Default)]
struct Unreads(Vec<Unread>);

impl Unreads {
    fn take<A: Default>(&mut self, read: Read<A>) -> A {
        match read {
            Read::Done(a) => a,
            Read::Forbidden(unread) => {
                self.0.push(unread);
                A::default()
            }
        }
    }
}

struct Reader<'a> {
    target: &'a ConnectedCluster,
    page_size: u32,
}

impl Reader<'_> {
    fn failed(&self, what: &str, err: kube::Error) -> Result<Unread, ClusterError> {
        if is_forbidden(&err) {
            let message = match &err {
                kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
                _ => "forbidden".to_string(),
            };
            Ok(Unread {
                what: what.to_string(),
                reason: format!("forbidden: {message}"),
                leaves_unjudged: String::new(),
            })
        } else {
            Err(classify(
                &self.target.context,
                &self.target.address(),
                what,
                err,
            ))
        }
    }

    async fn fold<T, A>(
        &self,
        what: &str,
        leaves_unjudged: &str,
        path: &str,
        selector: Option<&str>,
        shape: Shape,
        fold: impl FnMut(&mut A, T),
    ) -> Result<Read<A>, ClusterError>
    where
        T: DeserializeOwned + Send + 'static,
        A: Default,
    {
        tracing::debug!(context = %self.target.context, path, selector, "listing");
        match fold_pages(
            &self.target.client,
            self.page_size,
            path,
            selector,
            shape,
            fold,
        )
        .await
        {
            Ok(acc) => Ok(Read::Done(acc)),
            Err(ListError::Kube(e)) => {
                let mut unread = self.failed(what, e)?;
                unread.leaves_unjudged = leaves_unjudged.to_string();
                Ok(Read::Forbidden(unread))
            }
            // Something answered, but not a list: unread (never an empty list), said in one line.
            Err(ListError::Unexpected(reason)) => {
                tracing::info!(context = %self.target.context, what, "{reason}");
                Ok(Read::Forbidden(Unread {
                    what: what.to_string(),
                    reason,
                    leaves_unjudged: leaves_unjudged.to_string(),
                }))
            }
            Err(limit) => Err(self.not_a_list(what, limit)),
        }
    }

    /// A list of a few objects (narrowed by a selector), kept whole.
    async fn list<T: DeserializeOwned + Send + 'static>(
        &self,
        what: &str,
        leaves_unjudged: &str,
        path: &str,
        selector: &str,
    ) -> Result<Read<Vec<T>>, ClusterError> {
        self.fold(
            what,
            leaves_unjudged,
            path,
            Some(selector),
            Shape::Full,
            |acc: &mut Vec<T>, item| acc.push(item),
        )
        .await
    }

    async fn enrolled_namespaces(
        &self,
        label: &str,
    ) -> Result<Read<Vec<MeshNamespace>>, ClusterError> {
        self.fold(
            &format!("namespaces labelled {label}"),
            "which namespaces are enrolled in the mesh",
            &format!("{CORE}/namespaces"),
            Some(label),
            Shape::Metadata,
            |acc: &mut Vec<MeshNamespace>, ns: MetaOnly| {
                let value = ns.metadata.labels.get(label).cloned().unwrap_or_default();
                acc.push(MeshNamespace {
                    name: ns.metadata.name,
                    label: label.to_string(),
                    value,
                });
            },
        )
        .await
    }

    /// A read that is not a list, into the cluster's error: a redirect or an HTML page named as
    /// such, never as a JSON parse error.
    fn not_a_list(&self, what: &str, err: ListError) -> ClusterError {
        let (context, server) = (&self.target.context, self.target.address());
        match err {
            ListError::Kube(e) => classify(context, &server, what, e),
            ListError::Unexpected(reason) => ClusterError::Unexpected {
                context: context.clone(),
                server: server.clone(),
                what: what.to_string(),
                reason,
            },
            limit => ClusterError::Limit {
                context: context.clone(),
                server: server.clone(),
                what: what.to_string(),
                reason: limit.to_string(),
            },
        }
    }

    async fn kube_version(&self) -> Result<KubeVersion, ClusterError> {
        let info: k8s_openapi::apimachinery::pkg::version::Info =
            paging::get_json(&self.target.client, "/version")
                .await
                .map_err(|e| self.not_a_list("/version", e))?;
        KubeVersion::from_server(&info.git_version, &info.major, &info.minor).map_err(|e| {
            ClusterError::Other {
                context: self.target.context.clone(),
                what: "/version".to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// The deployed Helm releases in the namespaces where Istio's components run (and where the releases
    /// that own them live) that are Istio charts or own an Istio component. Release storage objects are
    /// Secrets (Helm's default driver) or ConfigMaps (`HELM_DRIVER=configmap`); both are read, narrowed
    /// by Helm's own labels. A release whose data cannot be decoded is reported unread, never guessed.
    async fn helm_releases(
        &self,
        istio: &Istio,
    ) -> Result<(Vec<HelmRelease>, Vec<Unread>), ClusterError> {
        let (namespaces, owners) = helm::release_scope(istio);
        let mut releases = Vec::new();
        let mut unreads = Unreads::default();
        for namespace in &namespaces {
            for (kind, plural) in [("Secrets", "secrets"), ("ConfigMaps", "configmaps")] {
                let what = format!("Helm release {kind} in namespace {namespace}");
                let read = self
                    .list::<helm::StorageObject>(
                        &what,
                        "the values and chart each Helm-installed component was installed with",
                        &format!("{CORE}/namespaces/{namespace}/{plural}"),
                        helm::RELEASE_SELECTOR,
                    )
                    .await?;
                for object in unreads.take(read) {
                    let name = object.metadata.name.clone().unwrap_or_default();
                    match object.release() {
                        Ok(release) if helm::is_wanted(&release, &owners) => releases.push(release),
                        Ok(_) => {}
                        Err(e) => unreads.0.push(Unread {
                            what: format!("Helm release {namespace}/{name}"),
                            reason: e.to_string(),
                            leaves_unjudged: "the values that release was installed with".into(),
                        }),
                    }
                }
            }
        }
        releases.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        // Several deployed revisions of one release (a failed cleanup) are possible: keep the newest.
        releases.dedup_by(|later, earlier| {
            let same = later.namespace == earlier.namespace && later.name == earlier.name;
            if same && later.revision > earlier.revision {
                std::mem::swap(later, earlier);
            }
            same
        });
        Ok((releases, unreads.0))
    }

    /// The mesh config of istiod `revision`: the `mesh` key of ConfigMap `istio-<rev>` (`istio` for the
    /// default revision) in its namespace, parsed; `None` when there is no such ConfigMap.
    async fn mesh_config(
        &self,
        namespace: &str,
        revision: &str,
    ) -> Result<Read<Option<(String, serde_json::Value)>>, ClusterError> {
        let name = istiod_config::config_map_name(revision);
        let what = format!("ConfigMap {namespace}/{name}");
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(self.target.client.clone(), namespace);
        match api.get_opt(&name).await {
            Ok(Some(cm)) => {
                let text = cm.data.as_ref().and_then(|d| d.get("mesh"));
                match text.map(|t| istiod_config::parse_mesh(t)).transpose() {
                    Ok(mesh) => Ok(Read::Done(mesh.map(|m| (name, m)))),
                    Err(reason) => Ok(Read::Forbidden(Unread {
                        what,
                        reason,
                        leaves_unjudged: "the mesh config a new revision must be given".into(),
                    })),
                }
            }
            Ok(None) => Ok(Read::Done(None)),
            Err(e) => {
                let mut unread = self.failed(&what, e)?;
                unread.leaves_unjudged = "the mesh config a new revision must be given".into();
                Ok(Read::Forbidden(unread))
            }
        }
    }

    /// The `installed-state[-<rev>]` IstioOperator istioctl stored for istiod `revision` (releases
    /// before 1.24), as `(name, spec)`; `None` when the cluster has none (or no IstioOperator API).
    async fn installed_state(
        &self,
        namespace: &str,
        revision: &str,
    ) -> Result<Read<Option<(String, serde_json::Value)>>, ClusterError> {
        let name = istiod_config::installed_state_name(revision);
        let what = format!("IstioOperator {namespace}/{name}");
        let resource = kube::api::ApiResource {
            group: "install.istio.io".into(),
            version: "v1alpha1".into(),
            api_version: "install.istio.io/v1alpha1".into(),
            kind: "IstioOperator".into(),
            plural: "istiooperators".into(),
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(self.target.client.clone(), namespace, &resource);
        // Most clusters now serve no IstioOperator API: the real API server answers the path with a
        // plain-text `404 page not found`, which is "none" too.
        match api.get(&name).await {
            Ok(object) => {
                let object = serde_json::to_value(object).unwrap_or_default();
                Ok(Read::Done(
                    istiod_config::installed_state_spec(&object).map(|spec| (name, spec)),
                ))
            }
            Err(e) if crate::client::is_not_found(&e) => Ok(Read::Done(None)),
            Err(e) => {
                let mut unread = self.failed(&what, e)?;
                unread.leaves_unjudged = "the IstioOperator a new revision must be given".into();
                Ok(Read::Forbidden(unread))
            }
        }
    }

    /// Gloo Mesh's served API groups (with object counts for discovery output) and registered clusters.
    async fn gloo_api(&self) -> Result<Read<GlooApi>, ClusterError> {
        let what = "the API groups the server serves";
        let client = &self.target.client;
        let leaves_unjudged = "which Gloo Mesh API groups are served, and registered clusters";
        let groups: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList =
            match paging::get_json(client, "/apis").await {
                Ok(g) => g,
                Err(ListError::Kube(e)) => {
                    let mut unread = self.failed(what, e)?;
                    unread.leaves_unjudged = leaves_unjudged.to_string();
                    return Ok(Read::Forbidden(unread));
                }
                Err(ListError::Unexpected(reason)) => {
                    return Ok(Read::Forbidden(Unread {
                        what: what.to_string(),
                        reason,
                        leaves_unjudged: leaves_unjudged.to_string(),
                    }));
                }
                Err(limit) => return Err(self.not_a_list(what, limit)),
            };
        let wanted: Vec<(String, String)> = groups
            .groups
            .iter()
            .filter(|g| gloo::is_gloo_group(&g.name) || g.name == gloo::MULTICLUSTER_GROUP)
            .filter_map(|g| {
                let gv = g
                    .preferred_version
                    .as_ref()
                    .or_else(|| g.versions.first())?;
                Some((g.name.clone(), gv.version.clone()))
            })
            .collect();
        let resources =
            futures::future::try_join_all(wanted.iter().map(|(group, version)| async move {
                let list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList =
                    paging::get_json(client, &format!("/apis/{group}/{version}"))
                        .await
                        .map_err(|e| self.not_a_list(group, e))?;
                let plurals: Vec<String> = list
                    .resources
                    .into_iter()
                    .map(|r| r.name)
                    .filter(|n| !n.contains('/'))
                    .collect();
                Ok::<_, ClusterError>((group.clone(), version.clone(), plurals))
            }))
            .await?;

        let mut api = GlooApi::default();
        let mut unreads = Unreads::default();
        for (group, version, plurals) in resources {
            let base = format!("/apis/{group}/{version}");
            if group == gloo::MULTICLUSTER_GROUP {
                if plurals.iter().any(|p| p == "kubernetesclusters") {
                    let read = self
                        .fold(
                            "KubernetesCluster resources",
                            "which clusters are registered to Gloo Mesh",
                            &format!("{base}/kubernetesclusters"),
                            None,
                            Shape::Metadata,
                            |acc: &mut Vec<RegisteredCluster>, o: MetaOnly| {
                                acc.push(RegisteredCluster {
                                    name: o.metadata.name,
                                    namespace: o.metadata.namespace,
                                })
                            },
                        )
                        .await?;
                    api.registered = unreads.take(read);
                }
                continue;
            }
            let mut counts = BTreeMap::new();
            if gloo::counts_objects(&group) {
                let counted = futures::future::try_join_all(plurals.iter().map(|plural| {
                    let path = format!("{base}/{plural}");
                    let what = format!("{plural}.{group}");
                    async move {
                        let read = self
                            .fold(
                                &what,
                                "how many Gloo Mesh discovery objects an upgrade deletes",
                                &path,
                                None,
                                Shape::Metadata,
                                |n: &mut u64, _: MetaOnly| *n += 1,
                            )
                            .await?;
                        Ok::<_, ClusterError>((plural.clone(), read))
                    }
                }))
                .await?;
                for (plural, read) in counted {
                    if let Read::Done(n) = &read {
                        counts.insert(plural, *n);
                    }
                    unreads.take(read);
                }
            }
            api.served.push(ServedGroup {
                group,
                version,
                resources: plurals,
                counts,
            });
        }
        api.unread = unreads.0;
        Ok(Read::Done(api))
    }
}

#[derive(Default)]
struct GlooApi {
    served: Vec<ServedGroup>,
    registered: Vec<RegisteredCluster>,
    unread: Vec<Unread>,
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Gateways carry an `istio` label: `ingressgateway`/`egressgateway` from istioctl, and from the
/// gateway chart the release name without `istio-` (`helm install istio-ingress istio/gateway`
/// labels it `istio: ingress`); istiod's own is `istio: pilot`. Which of them run a proxy is
/// decided on the pod template ([`is_gateway`]).
const GATEWAY_SELECTOR: &str = "istio,istio!=pilot";

/// A gateway Deployment runs the `istio-proxy` container (the chart's `image: auto`, filled in by
/// injection, or istioctl's proxyv2 image).
fn is_gateway(d: &Deployment) -> bool {
    d.spec
        .template
        .spec
        .as_ref()
        .is_some_and(|p| p.containers.iter().any(|c| c.name == "istio-proxy"))
}

/// The revision a gateway belongs to: the chart sets `istio.io/rev` on the pod template only
/// (`gateway.sidecarInjectionLabels`), istioctl on the Deployment as well.
fn gateway_revision(d: &Deployment) -> Option<String> {
    label(&d.metadata, "istio.io/rev")
        .or_else(|| {
            d.spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| label(m, "istio.io/rev"))
        })
        .map(str::to_string)
}
const ZTUNNEL_SELECTOR: &str = "app.kubernetes.io/name=ztunnel";

/// ztunnel's DaemonSet: `app.kubernetes.io/name: ztunnel` as the ztunnel chart renders it (1.22 to
/// 1.31 at least), or `app: ztunnel` as older manifests label it.
fn is_ztunnel_daemonset(meta: &ObjectMeta) -> bool {
    label(meta, NAME_LABEL) == Some("ztunnel") || label(meta, "app") == Some("ztunnel")
}

/// Reads one cluster.
pub async fn observe_cluster(
    target: &ConnectedCluster,
    opts: &ObserveOptions,
) -> Result<Cluster, ClusterError> {
    observe_cluster_paged(target, opts, PAGE_SIZE).await
}

async fn observe_cluster_paged(
    target: &ConnectedCluster,
    opts: &ObserveOptions,
    page_size: u32,
) -> Result<Cluster, ClusterError> {
    let r = Reader { target, page_size };
    let istiod_path = collection(APPS, opts.istio_namespace.as_deref(), "deployments");
    let deployments = format!("{APPS}/deployments");
    let daemonsets = format!("{APPS}/daemonsets");
    let nodes_path = format!("{CORE}/nodes");
    let pods_path = format!("{CORE}/pods");
    let (
        kubernetes,
        nodes,
        istiods,
        webhooks,
        app_daemonsets,
        ztunnel_daemonsets,
        cni_daemonsets,
        classic_gateways,
        managed_gateways,
        injection_ns,
        revision_ns,
        ambient_ns,
        proxies,
        gloo_deployments,
        gloo_api,
    ) = tokio::try_join!(
        r.kube_version(),
        r.fold(
            "nodes",
            "node kernels and operating systems",
            &nodes_path,
            None,
            Shape::Full,
            |acc: &mut NodeFold, n: NodeFacts| acc.add(n),
        ),
        r.list::<Deployment>(
            "istiod Deployments",
            "the Istio control plane",
            &istiod_path,
            "app=istiod",
        ),
        r.list::<MutatingWebhookConfiguration>(
            "Istio injection webhooks",
            "revision tags and which revisions inject sidecars",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            "istio.io/rev",
        ),
        r.list::<DaemonSet>(
            "ztunnel and Kmesh DaemonSets",
            "ztunnel and Kmesh",
            &daemonsets,
            "app in (ztunnel,kmesh)",
        ),
        // The ztunnel chart labels its DaemonSet `app.kubernetes.io/name: ztunnel` only (`app: ztunnel`
        // is on the pods): a selector on one key cannot find both, hence a second list.
        r.list::<DaemonSet>(
            "ztunnel DaemonSets",
            "ztunnel",
            &daemonsets,
            ZTUNNEL_SELECTOR,
        ),
        r.list::<DaemonSet>(
            "istio-cni DaemonSets",
            "istio-cni",
            &daemonsets,
            "k8s-app=istio-cni-node",
        ),
        r.list::<Deployment>(
            "Istio gateway Deployments",
            "Istio gateways",
            &deployments,
            GATEWAY_SELECTOR,
        ),
        r.list::<Deployment>(
            "managed Istio gateway Deployments",
            "Istio gateways",
            &deployments,
            "gateway.istio.io/managed",
        ),
        r.enrolled_namespaces("istio-injection"),
        r.enrolled_namespaces("istio.io/rev"),
        r.enrolled_namespaces("istio.io/dataplane-mode"),
        r.fold(
            "pods in all namespaces",
            "the Istio data plane (proxy versions and their workloads)",
            &pods_path,
            None,
            Shape::Full,
            |acc: &mut ProxyFold, p: PodFacts| acc.add(p),
        ),
        r.list::<Deployment>(
            "Gloo Mesh Deployments",
            "the Gloo Mesh management plane and agent",
            &deployments,
            gloo::DEPLOYMENT_SELECTOR,
        ),
        r.gloo_api(),
    )?;

    let mut unread = Unreads::default();
    let nodes = unread.take(nodes).finish();
    let istiods = unread.take(istiods);
    let webhooks = unread.take(webhooks);
    let app_daemonsets = unread.take(app_daemonsets);
    let ztunnel_daemonsets = unread.take(ztunnel_daemonsets);
    let cni_daemonsets = unread.take(cni_daemonsets);
    let mut gateway_deployments = unread.take(classic_gateways);
    gateway_deployments.extend(unread.take(managed_gateways));
    let mut namespaces = unread.take(injection_ns);
    namespaces.extend(unread.take(revision_ns));
    namespaces.extend(unread.take(ambient_ns));
    let proxies = unread.take(proxies).finish();
    let gloo_deployments = unread.take(gloo_deployments);
    let mut gloo_api = unread.take(gloo_api);
    unread.0.append(&mut gloo_api.unread);

    let istio = istio_of(
        &istiods,
        &webhooks,
        app_daemonsets.iter().chain(&ztunnel_daemonsets),
        &cni_daemonsets,
        &gateway_deployments,
        namespaces,
        proxies,
    );
    let mut istio = istio;
    if let Some(istio) = istio.as_mut() {
        let (releases, mut not_read) = r.helm_releases(istio).await?;
        istio.helm_releases = releases;
        unread.0.append(&mut not_read);
        for cp in &mut istio.control_planes {
            let read = r.mesh_config(&cp.istiod.namespace, &cp.revision).await?;
            if let (Some(config), Some((name, mesh))) = (cp.config.as_mut(), unread.take(read)) {
                config.mesh_config_map = Some(format!("{}/{name}", cp.istiod.namespace));
                config.mesh_config = Some(mesh);
            }
            // Only istioctl stored one; a Helm or hand install is not asked for it.
            if matches!(cp.istiod.install, Some(InstallMethod::Istioctl { .. })) {
                let read = r
                    .installed_state(&cp.istiod.namespace, &cp.revision)
                    .await?;
                if let (Some(config), Some((name, spec))) = (cp.config.as_mut(), unread.take(read))
                {
                    config.installed_state_name = Some(format!("{}/{name}", cp.istiod.namespace));
                    config.installed_state = Some(spec);
                }
            }
        }
    }
    let gloo_mesh = gloo_of(&gloo_deployments, gloo_api);
    let kmesh = app_daemonsets
        .iter()
        .find(|ds| label(&ds.metadata, "app") == Some("kmesh"))
        .map(kmesh::from_daemonset_facts);

    Ok(Cluster {
        name: target.context.clone(),
        server: Some(target.server.clone()),
        kubernetes,
        nodes,
        istio,
        gloo_mesh,
        kmesh,
        unread: unread.0,
    })
}

fn istio_of<'a>(
    istiods: &[Deployment],
    webhooks: &[MutatingWebhookConfiguration],
    mut daemonsets: impl Iterator<Item = &'a DaemonSet>,
    cni_daemonsets: &[DaemonSet],
    gateways: &[Deployment],
    mut namespaces: Vec<MeshNamespace>,
    proxies: Vec<crate::snapshot::ProxyGroup>,
) -> Option<Istio> {
    let mut control_planes: Vec<IstioControlPlane> = istiods
        .iter()
        .map(|d| {
            let pod_spec = d.spec.template.spec.as_ref();
            let discovery = pick_container(pod_spec, "discovery");
            IstioControlPlane {
                revision: label(&d.metadata, "istio.io/rev")
                    .filter(|r| !r.is_empty())
                    .unwrap_or("default")
                    .to_string(),
                istiod: from_deployment(d, "discovery"),
                ambient_enabled: env_value(discovery, "PILOT_ENABLE_AMBIENT")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                config: Some(istiod_config::from_container(discovery)),
            }
        })
        .collect();
    control_planes.sort_by(|a, b| a.revision.cmp(&b.revision));

    let mut revision_tags = BTreeMap::new();
    let mut hooks = Vec::new();
    for w in webhooks {
        let revision = label(&w.metadata, "istio.io/rev")
            .unwrap_or_default()
            .to_string();
        let tag = label(&w.metadata, "istio.io/tag").map(str::to_string);
        if let Some(tag) = &tag {
            revision_tags.insert(tag.clone(), revision.clone());
        }
        hooks.push(IstioWebhook {
            kind: "MutatingWebhookConfiguration".to_string(),
            name: w.metadata.name.clone().unwrap_or_default(),
            revision,
            tag,
        });
    }

    let ztunnel = daemonsets
        .find(|ds| is_ztunnel_daemonset(&ds.metadata))
        .map(|ds| from_daemonset(ds, "istio-proxy"));
    let cni = cni_daemonsets
        .first()
        .map(|ds| from_daemonset(ds, "install-cni"));

    let mut gateways_out: Vec<IstioGateway> = Vec::new();
    for d in gateways.iter().filter(|d| is_gateway(d)) {
        let workload = from_deployment(d, "istio-proxy");
        if gateways_out
            .iter()
            .any(|g| g.workload.namespace == workload.namespace && g.workload.name == workload.name)
        {
            continue;
        }
        gateways_out.push(IstioGateway {
            revision: gateway_revision(d),
            workload,
        });
    }
    namespaces.sort_by(|a, b| (&a.name, &a.label).cmp(&(&b.name, &b.label)));

    let found = !control_planes.is_empty()
        || !hooks.is_empty()
        || ztunnel.is_some()
        || cni.is_some()
        || !gateways_out.is_empty()
        || !namespaces.is_empty()
        || !proxies.is_empty();
    found.then_some(Istio {
        control_planes,
        revision_tags,
        webhooks: hooks,
        ztunnel,
        cni,
        gateways: gateways_out,
        namespaces,
        proxies,
        helm_releases: Vec::new(),
    })
}

fn gloo_of(deployments: &[Deployment], api: GlooApi) -> Option<GlooMesh> {
    let mut mesh = GlooMesh {
        discovery: None,
        networking: None,
        agent: None,
        served_groups: api.served,
        registered_clusters: api.registered,
    };
    for d in deployments {
        if let Some((part, workload)) = gloo::classify(d) {
            let slot = match part {
                gloo::Part::Discovery => &mut mesh.discovery,
                gloo::Part::Networking => &mut mesh.networking,
                gloo::Part::Agent => &mut mesh.agent,
            };
            slot.get_or_insert(workload);
        }
    }
    let found = mesh.discovery.is_some()
        || mesh.networking.is_some()
        || mesh.agent.is_some()
        || !mesh.served_groups.is_empty()
        || !mesh.registered_clusters.is_empty();
    found.then_some(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Version;

    /// The objects of `kind` in a multi-document YAML as `helm template` prints it.
    fn rendered<T: DeserializeOwned>(yaml: &str, kind: &str) -> Vec<T> {
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
        docs.into_iter()
            .filter(|d| d["kind"] == kind)
            .map(|d| serde_json::from_value(d).unwrap())
            .collect()
    }

    /// issue 11: the ztunnel chart labels its DaemonSet `app.kubernetes.io/name: ztunnel` and not
    /// `app: ztunnel` (that is on its pods), and observe looked for `app: ztunnel` only.
    #[test]
    fn ztunnel_as_its_chart_renders_it() {
        for (version, yaml) in [
            (
                Version::new(1, 30, 4),
                include_str!("../../tests/fixtures/rendered/istio-1.30.4/ztunnel.yaml"),
            ),
            (
                Version::new(1, 31, 0),
                include_str!("../../tests/fixtures/rendered/istio-1.31.0/ztunnel.yaml"),
            ),
        ] {
            let daemonsets: Vec<DaemonSet> = rendered(yaml, "DaemonSet");
            assert_eq!(daemonsets.len(), 1);
            let meta = &daemonsets[0].metadata;
            assert_eq!(label(meta, "app"), None);
            assert_eq!(label(meta, NAME_LABEL), Some("ztunnel"));
            let istio = istio_of(&[], &[], daemonsets.iter(), &[], &[], vec![], vec![])
                .expect("Istio found");
            let ztunnel = istio.ztunnel.expect("ztunnel found");
            assert_eq!(ztunnel.name, "ztunnel");
            assert_eq!(ztunnel.version.version, Some(version));
        }
    }
}
