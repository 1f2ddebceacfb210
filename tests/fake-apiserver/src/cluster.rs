//! [`Cluster`]: the handle tests use to seed, inspect and steer the fake server's state.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::faults::{Fault, FaultAction};
use crate::resources::ResourceType;
use crate::state::{CRD_GROUP, CRD_PLURAL, EventType, State, meta_str, metadata_mut};

/// Errors of the library API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown resource: {0}")]
    UnknownResource(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid object: {0}")]
    Invalid(String),
    #[error("cannot parse YAML: {0}")]
    Yaml(String),
    #[error("cannot serialize: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// One request the server received, as logged after it was answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (still percent-encoded), without `?`.
    pub query: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
    /// `dryRun` was set, in the query or (for DELETE) in the DeleteOptions body.
    pub dry_run: bool,
    /// The HTTP status answered; 0 when the connection was dropped by a fault.
    pub status: u16,
}

impl RecordedRequest {
    /// A decoded query parameter.
    pub fn param(&self, key: &str) -> Option<String> {
        crate::http::parse_query(&self.query).remove(key)
    }

    /// POST, PUT, PATCH or DELETE (SelfSubjectAccessReviews excluded: they change nothing).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
            && !self.path.ends_with("/selfsubjectaccessreviews")
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// A write that was not a dry run and succeeded: one that changed (or could have changed) state.
    pub fn is_mutation(&self) -> bool {
        self.is_write() && !self.is_dry_run() && (200..300).contains(&self.status)
    }
}

/// A change made through the HTTP API, passed to [`Cluster::on_change`] hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub event: EventType,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: String,
    /// `status` or `scale` when the write went to a subresource.
    pub subresource: Option<String>,
    /// The object after the change (for deletions, the deleted object).
    pub object: Value,
    pub old: Option<Value>,
}

impl Change {
    /// Whether `spec` differs between the old and the new object (true for creations).
    pub fn spec_changed(&self) -> bool {
        self.old
            .as_ref()
            .is_none_or(|o| o.get("spec") != self.object.get("spec"))
    }
}

/// Identifies an injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

#[derive(Debug, Clone)]
pub(crate) struct Denial {
    verb: String,
    group: String,
    resource: String,
    namespace: Option<String>,
}

pub(crate) struct Config {
    pub server_version: String,
    pub auto_rollout: bool,
    pub auto_rollout_delay: Duration,
    pub user: String,
}

type Hook = Arc<dyn Fn(&Change, &Cluster) + Send + Sync>;

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub config: Mutex<Config>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<(u64, Vec<(FaultId, Fault)>)>,
    denials: Mutex<Vec<Denial>>,
    hooks: RwLock<Vec<Hook>>,
    pub runtime: OnceLock<tokio::runtime::Handle>,
}

/// A cheap, cloneable handle on the fake server's state. [`crate::FakeApiServer`] dereferences to it.
///
/// Resources are named as a test would write them: kind (`Deployment`), plural (`deployments`),
/// short name (`deploy`), or qualified by group (`deployments.apps`, `gateways.gateway.networking.k8s.io`).
/// Namespaces are `&str`; `""` means cluster-scoped (or, for lists, all namespaces).
#[derive(Clone)]
pub struct Cluster {
    pub(crate) shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn split_api_version(av: &str) -> (&str, &str) {
    match av.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", av),
    }
}

/// Parse a multi-document YAML (or JSON) string into objects; `List` kinds are flattened.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Value> = if text.trim_start().starts_with(['{', '[']) {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(_) => serde_saphyr::from_multiple(text).map_err(|e| Error::Yaml(e.to_string()))?,
        }
    } else {
        serde_saphyr::from_multiple(text).map_err(|e| Error::Yaml(e.to_string()))?
    };
    let mut out = Vec::new();
    for d in docs {
        match d {
            Value::Null => {}
            Value::Object(ref o)
                if o.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && o.get("items").is_some_and(Value::is_array) =>
            {
                out.extend(o["items"].as_array().cloned().unwrap_or_default());
            }
            Value::Object(_) => out.push(d),
            other => return Err(Error::Invalid(format!("not an object: {other}"))),
        }
    }
    Ok(out)
}

impl Cluster {
    pub(crate) fn new(state: State, config: Config) -> Self {
        Cluster {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                config: Mutex::new(config),
                requests: Mutex::new(Vec::new()),
                faults: Mutex::new((0, Vec::new())),
                denials: Mutex::new(Vec::new()),
                hooks: RwLock::new(Vec::new()),
                runtime: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    pub(crate) fn config(&self) -> MutexGuard<'_, Config> {
        lock(&self.shared.config)
    }

    // ----- seeding -------------------------------------------------------------------------

    /// Store an object directly (status included), as if controllers had produced it. Creates or
    /// replaces. The object needs `apiVersion`, `kind` and `metadata.name`; a namespaced object
    /// without a namespace goes to `default`. Missing uid, creationTimestamp and generation are
    /// filled in. Returns the stored object. Seeding fires watch events but not hooks.
    pub fn seed(&self, obj: impl Serialize) -> Result<Value, Error> {
        let stored = self.seed_value(serde_json::to_value(obj)?)?;
        Ok((*stored.value).clone())
    }

    /// [`Cluster::seed`] without the copies: the generator stores many objects through it.
    pub(crate) fn seed_value(&self, v: Value) -> Result<crate::state::Stored, Error> {
        self.seed_as(v, false)
    }

    /// [`Cluster::seed_value`] for objects kept compact (see `state::Stored`).
    pub(crate) fn seed_compact(&self, v: Value) -> Result<crate::state::Stored, Error> {
        self.seed_as(v, true)
    }

    fn seed_as(&self, mut v: Value, compact: bool) -> Result<crate::state::Stored, Error> {
        if !v.is_object() {
            return Err(Error::Invalid("not an object".into()));
        }
        let av = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        if av.is_empty() || kind.is_empty() {
            return Err(Error::Invalid("apiVersion and kind are required".into()));
        }
        let (g, ver) = split_api_version(av);
        let mut st = self.state();
        let rt = st
            .find_gvk(g, ver, kind)
            .cloned()
            .ok_or_else(|| Error::UnknownResource(format!("{kind} in {av}")))?;
        if rt.create_only {
            return Err(Error::Invalid(format!("{kind} cannot be stored")));
        }
        if meta_str(&v, "name").is_none_or(str::is_empty) {
            return Err(Error::Invalid(format!("{kind} without metadata.name")));
        }
        let ns = meta_str(&v, "namespace").unwrap_or("default").to_string();
        st.prepare_new(&rt, &mut v, Some(&ns));
        Ok(st.put_as(&rt, v, compact))
    }

    /// Seed every object of a multi-document YAML (or JSON) string. CRDs and Namespaces are stored
    /// first so that documents may come in any order.
    pub fn seed_yaml(&self, text: &str) -> Result<Vec<Value>, Error> {
        let docs = parse_documents(text)?;
        let first = |d: &Value| {
            let k = d.get("kind").and_then(Value::as_str).unwrap_or("");
            k == "CustomResourceDefinition" || k == "Namespace"
        };
        let (early, late): (Vec<Value>, Vec<Value>) = docs.into_iter().partition(first);
        early
            .into_iter()
            .chain(late)
            .map(|d| self.seed(d))
            .collect()
    }

    /// Seed a YAML/JSON file, or every `*.yaml`, `*.yml` and `*.json` file of a directory
    /// (recursively, in name order).
    pub fn seed_path(&self, path: impl AsRef<Path>) -> Result<Vec<Value>, Error> {
        self.seed_paths([path])
    }

    /// Seed several files or directories as one batch (CRDs and Namespaces of all of them first).
    pub fn seed_paths<P: AsRef<Path>>(
        &self,
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Vec<Value>, Error> {
        let mut files = Vec::new();
        for path in paths {
            let path = path.as_ref();
            collect_files(path, &mut files).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        let mut text = String::new();
        for f in files {
            let t = std::fs::read_to_string(&f).map_err(|source| Error::Io {
                path: f.display().to_string(),
                source,
            })?;
            text.push_str("\n---\n");
            text.push_str(&t);
        }
        self.seed_yaml(&text)
    }

    // ----- inspection ----------------------------------------------------------------------

    fn resolve(&self, resource: &str) -> Result<ResourceType, Error> {
        self.state()
            .resolve(resource)
            .map_err(Error::UnknownResource)
    }

    /// One stored object.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let st = self.state();
        let rt = st.resolve(resource).ok()?;
        let ns = if rt.namespaced { namespace } else { "" };
        st.get(&rt.key(), ns, name).map(|s| (*s.full()).clone())
    }

    /// One stored object as a typed k8s-openapi (or kube CustomResource) value.
    pub fn get_as<K>(&self, namespace: &str, name: &str) -> Option<K>
    where
        K: k8s_openapi::Resource + DeserializeOwned,
    {
        let key = format!("{}.{}", K::URL_PATH_SEGMENT, K::GROUP);
        let key = if K::GROUP.is_empty() {
            K::URL_PATH_SEGMENT
        } else {
            &key
        };
        serde_json::from_value(self.get(key, namespace, name)?).ok()
    }

    /// Stored objects of a resource in a namespace (`""`: all namespaces), in key order.
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        let st = self.state();
        let Ok(rt) = st.resolve(resource) else {
            return vec![];
        };
        st.objects
            .get(&rt.key())
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_empty() || ns == namespace)
                    .map(|(_, s)| (*s.full()).clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of stored objects of a resource in a namespace (`""`: all).
    pub fn count(&self, resource: &str, namespace: &str) -> usize {
        let st = self.state();
        let Ok(rt) = st.resolve(resource) else {
            return 0;
        };
        st.objects
            .get(&rt.key())
            .map(|m| {
                if namespace.is_empty() {
                    m.len()
                } else {
                    m.keys().filter(|(ns, _)| ns == namespace).count()
                }
            })
            .unwrap_or(0)
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().rv
    }

    /// Whether a resource type is currently served (`widgets.example.com`, `Deployment`, ...).
    pub fn serves(&self, resource: &str) -> bool {
        self.state().resolve(resource).is_ok()
    }

    // ----- direct changes ------------------------------------------------------------------

    /// Change a stored object in place (status included), bumping its resourceVersion, and its
    /// generation if `spec` changed. Fires watch events but not hooks.
    pub fn modify(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, Error> {
        let mut st = self.state();
        let rt = st.resolve(resource).map_err(Error::UnknownResource)?;
        let ns = if rt.namespaced { namespace } else { "" };
        let old = st
            .get(&rt.key(), ns, name)
            .ok_or_else(|| Error::NotFound(format!("{} {ns}/{name}", rt.qualified_plural())))?
            .full();
        let mut v = (*old).clone();
        f(&mut v);
        let m = metadata_mut(&mut v);
        m.insert("name".into(), json!(name));
        if rt.tracks_generation() && old.get("spec") != v.get("spec") {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut v).insert("generation".into(), json!(g + 1));
        }
        Ok((*st.put(&rt, v).value).clone())
    }

    /// Delete a stored object (no hooks, no cascading). Returns it if it existed.
    pub fn remove(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let mut st = self.state();
        let rt = st.resolve(resource).ok()?;
        let ns = if rt.namespaced { namespace } else { "" };
        st.remove(&rt.key(), ns, name).map(|s| (*s.full()).clone())
    }

    /// Play the workload controller: mark the rollout of a Deployment, DaemonSet, StatefulSet or
    /// ReplicaSet complete (observedGeneration = generation; replicas, updated, ready and available
    /// = `spec.replicas`; for DaemonSets the desired count is kept if set, else the number of
    /// Nodes, else 1; for Deployments `Available` and `Progressing`/`NewReplicaSetAvailable`
    /// conditions). Returns the updated object.
    pub fn complete_rollout(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, Error> {
        let nodes = self.count("nodes", "");
        let rt = self.resolve(resource)?;
        let kind = rt.kind.clone();
        if !matches!(
            kind.as_str(),
            "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet"
        ) {
            return Err(Error::Invalid(format!("{kind} has no rollout")));
        }
        self.modify(resource, namespace, name, |o| {
            rollout_status(&kind, name, nodes, o)
        })
    }

    /// Complete rollouts automatically, `delay` after every API write that changes the spec of a
    /// Deployment, DaemonSet, StatefulSet or ReplicaSet (and after their creation).
    pub fn set_auto_rollout(&self, on: bool, delay: Duration) {
        let mut c = self.config();
        c.auto_rollout = on;
        c.auto_rollout_delay = delay;
    }

    /// Change what `/version` reports (`v1.29.6-eks-db838b0`; minor gets a `+` when there is a suffix).
    pub fn set_server_version(&self, git_version: &str) {
        self.config().server_version = git_version.to_string();
    }

    /// Run `f` after every change made through the HTTP API (not dry runs, not library calls),
    /// after the state lock is released and before the response is sent. `f` may change the state
    /// through the `&Cluster` it gets (those changes do not fire hooks). A hook that keeps a
    /// `Cluster` clone keeps the state alive.
    pub fn on_change<F>(&self, f: F)
    where
        F: Fn(&Change, &Cluster) + Send + Sync + 'static,
    {
        self.shared
            .hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(f));
    }

    pub(crate) fn after_api_changes(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let hooks: Vec<Hook> = self
            .shared
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (auto, delay) = {
            let c = self.config();
            (c.auto_rollout, c.auto_rollout_delay)
        };
        for ch in &changes {
            for h in &hooks {
                h(ch, self);
            }
            let workload = matches!(
                ch.kind.as_str(),
                "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet"
            ) && ch.group == "apps";
            if auto
                && workload
                && ch.event != EventType::Deleted
                && ch.subresource.as_deref() != Some("status")
                && ch.spec_changed()
                && let Some(rt) = self.shared.runtime.get()
            {
                let me = self.clone();
                let (plural, ns, name) = (
                    format!("{}.apps", ch.plural),
                    ch.namespace.clone().unwrap_or_default(),
                    ch.name.clone(),
                );
                rt.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = me.complete_rollout(&plural, &ns, &name);
                });
            }
        }
    }

    // ----- request log ---------------------------------------------------------------------

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The requests that changed (or could have changed) state: successful writes that were not dry runs.
    pub fn mutating_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.is_mutation())
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    pub(crate) fn record(&self, r: RecordedRequest) {
        lock(&self.shared.requests).push(r);
    }

    // ----- faults --------------------------------------------------------------------------

    /// Inject a fault; rules are checked in insertion order, latency adds up, and the first
    /// matching non-latency rule that fires decides the answer.
    pub fn inject(&self, fault: Fault) -> FaultId {
        let mut f = lock(&self.shared.faults);
        f.0 += 1;
        let id = FaultId(f.0);
        f.1.push((id, fault));
        id
    }

    /// How many requests a fault has hit so far.
    pub fn fault_hits(&self, id: FaultId) -> u64 {
        lock(&self.shared.faults)
            .1
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, f)| f.hits)
            .unwrap_or(0)
    }

    pub fn remove_fault(&self, id: FaultId) {
        lock(&self.shared.faults).1.retain(|(i, _)| *i != id);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).1.clear();
    }

    pub(crate) fn check_faults(
        &self,
        method: &str,
        path: &str,
        has_continue: bool,
    ) -> (Duration, Option<FaultAction>) {
        let mut f = lock(&self.shared.faults);
        let mut latency = Duration::ZERO;
        for (_, fault) in f.1.iter_mut() {
            if !fault.matches(method, path, has_continue) {
                continue;
            }
            if let FaultAction::Latency(d) = fault.action {
                if fault.fire() {
                    latency += d;
                }
                continue;
            }
            if fault.fire() {
                return (latency, Some(fault.action.clone()));
            }
        }
        (latency, None)
    }

    // ----- RBAC ----------------------------------------------------------------------------

    /// Deny a verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or `*`) on a resource (`pods`, `deployments/scale`, or `*`) of an API
    /// group (`""` for core, `*` for any) in every namespace. Requests answer 403 and
    /// SelfSubjectAccessReviews answer `allowed: false`.
    pub fn deny(&self, verb: &str, group: &str, resource: &str) {
        self.push_denial(verb, group, resource, None);
    }

    /// Like [`Cluster::deny`], but only in one namespace.
    pub fn deny_in_namespace(&self, verb: &str, group: &str, resource: &str, namespace: &str) {
        self.push_denial(verb, group, resource, Some(namespace));
    }

    fn push_denial(&self, verb: &str, group: &str, resource: &str, ns: Option<&str>) {
        lock(&self.shared.denials).push(Denial {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: ns.map(String::from),
        });
    }

    pub fn clear_denials(&self) {
        lock(&self.shared.denials).clear();
    }

    /// `resource` is `plural` or `plural/subresource`.
    pub fn is_denied(&self, verb: &str, group: &str, resource: &str, namespace: &str) -> bool {
        lock(&self.shared.denials).iter().any(|d| {
            (d.verb == "*" || d.verb == verb)
                && (d.group == "*" || d.group == group)
                && (d.resource == "*" || d.resource == resource)
                && d.namespace
                    .as_deref()
                    .is_none_or(|n| !namespace.is_empty() && n == namespace)
        })
    }

    /// The user name in the kubeconfig and in 403 messages.
    pub fn user(&self) -> String {
        self.config().user.clone()
    }

    pub(crate) fn is_crd(rt: &ResourceType) -> bool {
        rt.group == CRD_GROUP && rt.plural == CRD_PLURAL
    }
}

fn collect_files(path: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                collect_files(&e, out)?;
            } else if e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
            {
                out.push(e);
            }
        }
        Ok(())
    } else {
        std::fs::metadata(path)?;
        out.push(path.to_path_buf());
        Ok(())
    }
}

fn rollout_status(kind: &str, name: &str, nodes: usize, o: &mut Value) {
    let generation = o
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let replicas = o
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let now = crate::state::now_rfc3339();
    let status = match kind {
        "Deployment" => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": format!("ReplicaSet \"{name}-{generation}\" has successfully progressed."),
                 "lastUpdateTime": now, "lastTransitionTime": now}
            ]
        }),
        "DaemonSet" => {
            let desired = o
                .pointer("/status/desiredNumberScheduled")
                .and_then(Value::as_i64)
                .filter(|n| *n > 0)
                .unwrap_or(if nodes > 0 { nodes as i64 } else { 1 });
            json!({
                "observedGeneration": generation,
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": desired,
                "updatedNumberScheduled": desired,
                "numberReady": desired,
                "numberAvailable": desired,
                "numberMisscheduled": 0
            })
        }
        "StatefulSet" => {
            let rev = format!("{name}-{generation}");
            json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": replicas,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
                "currentRevision": rev,
                "updateRevision": rev,
                "collisionCount": 0
            })
        }
        _ => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas
        }),
    };
    o["status"] = status;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        Cluster::new(
            State::new(100),
            Config {
                server_version: "v1.29.6".into(),
                auto_rollout: false,
                auto_rollout_delay: Duration::ZERO,
                user: "u".into(),
            },
        )
    }

    #[test]
    fn seed_yaml_orders_crds_first_and_flattens_lists() {
        let c = cluster();
        let out = c
            .seed_yaml(
                r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: team}
spec: {size: 3}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c1}, data: {a: "1"}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions: [{name: v1, served: true, storage: true}]
"#,
            )
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(c.get("widgets", "team", "w1").unwrap()["spec"]["size"], 3);
        assert_eq!(c.get("cm", "default", "c1").unwrap()["data"]["a"], "1");
        assert_eq!(
            c.get("widget", "team", "w1").unwrap()["metadata"]["generation"],
            1
        );
    }

    #[test]
    fn seed_typed_keeps_status_and_rollout_completes() {
        use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
        let c = cluster();
        let d = Deployment {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("prod".into()),
                ..Default::default()
            },
            // k8s-openapi 0.29 `latest` (v1_37): `spec` is not an Option.
            spec: DeploymentSpec {
                replicas: Some(3),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                replicas: Some(1),
                ..Default::default()
            }),
        };
        c.seed(&d).unwrap();
        let got: Deployment = c.get_as("prod", "web").unwrap();
        assert_eq!(got.status.unwrap().replicas, Some(1));
        c.modify("deploy", "prod", "web", |o| {
            o["spec"]["replicas"] = json!(5)
        })
        .unwrap();
        let o = c.complete_rollout("deployments", "prod", "web").unwrap();
        assert_eq!(o["metadata"]["generation"], 2);
        assert_eq!(o["status"]["observedGeneration"], 2);
        assert_eq!(o["status"]["availableReplicas"], 5);
        assert!(c.complete_rollout("cm", "prod", "web").is_err());
    }

    #[test]
    fn denials_match() {
        let c = cluster();
        c.deny("list", "", "pods");
        c.deny_in_namespace("patch", "apps", "deployments/scale", "prod");
        assert!(c.is_denied("list", "", "pods", ""));
        assert!(c.is_denied("list", "", "pods", "x"));
        assert!(!c.is_denied("get", "", "pods", "x"));
        assert!(c.is_denied("patch", "apps", "deployments/scale", "prod"));
        assert!(!c.is_denied("patch", "apps", "deployments/scale", "dev"));
        assert!(!c.is_denied("patch", "apps", "deployments", "prod"));
    }
}
