//! The stored objects, the served resource types, the global resourceVersion counter and the
//! bounded watch-event history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::resources::{self, ResKey, ResourceType};

pub(crate) const CRD_GROUP: &str = "apiextensions.k8s.io";
pub(crate) const CRD_PLURAL: &str = "customresourcedefinitions";

/// A stored object: the value and its JSON serialization, made once per write.
///
/// A *compact* object (what [`crate::Cluster::generate`] stores, by the hundred thousand) keeps only
/// a skeleton in `value` (apiVersion, kind, the whole metadata, `spec.nodeName`, `status.phase`): what
/// label and field selectors, metadata-only answers and tables read. The whole object is `json`, parsed
/// again by [`Stored::full`] when a write or the library API needs it. A full `Value` of a pod costs
/// about 100 KB of small maps; the skeleton a few.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub value: Arc<Value>,
    pub json: Bytes,
    compact: bool,
}

impl Stored {
    pub fn new(value: Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(&value).expect("serializable"));
        Stored {
            value: Arc::new(value),
            json,
            compact: false,
        }
    }

    /// See the type's documentation.
    pub fn compact(value: Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(&value).expect("serializable"));
        let mut skeleton = Map::new();
        for key in ["apiVersion", "kind", "metadata"] {
            if let Some(v) = value.get(key) {
                skeleton.insert(key.into(), v.clone());
            }
        }
        for (part, field) in [("spec", "nodeName"), ("status", "phase")] {
            if let Some(v) = value.get(part).and_then(|p| p.get(field)) {
                skeleton.insert(part.into(), json!({ field: v }));
            }
        }
        Stored {
            value: Arc::new(Value::Object(skeleton)),
            json,
            compact: true,
        }
    }

    /// The whole object (parsed from its JSON when stored compact).
    pub fn full(&self) -> Arc<Value> {
        if self.compact {
            Arc::new(serde_json::from_slice(&self.json).expect("stored JSON parses"))
        } else {
            self.value.clone()
        }
    }
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub key: ResKey,
    pub namespace: String,
    pub kind: EventType,
    pub object: Stored,
    pub old: Option<Arc<Value>>,
}

/// (namespace, name); namespace is "" for cluster-scoped objects.
pub(crate) type ObjKey = (String, String);

pub(crate) struct State {
    builtin_types: Vec<ResourceType>,
    pub types: Vec<ResourceType>,
    pub objects: HashMap<ResKey, BTreeMap<ObjKey, Stored>>,
    pub rv: u64,
    pub history: VecDeque<Arc<Event>>,
    pub history_cap: usize,
    /// Every event with a resourceVersion greater than this is still in `history`.
    pub compacted_rv: u64,
    pub events_tx: broadcast::Sender<Arc<Event>>,
    uid_counter: u64,
    server_id: u32,
    /// Bumped whenever the set of served types changes (used in OpenAPI hashes).
    pub types_generation: u64,
}

pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::from_second(now_seconds())
        .expect("valid time")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(crate) fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

pub(crate) fn metadata_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    let obj = v.as_object_mut().expect("object");
    let m = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("object")
}

impl State {
    pub fn new(history_cap: usize) -> Self {
        let (events_tx, _) = broadcast::channel(4096);
        let builtin_types = resources::builtins();
        let server_id = std::process::id().wrapping_mul(2654435761) ^ (now_nanos() as u32);
        State {
            types: builtin_types.clone(),
            builtin_types,
            objects: HashMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_cap,
            compacted_rv: 1,
            events_tx,
            uid_counter: 0,
            server_id,
            types_generation: 1,
        }
    }

    pub fn server_nonce(&self) -> u32 {
        self.server_id
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn find_gvk(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Resolve a name the way a test would write it: kind (`Deployment`), plural (`deployments`),
    /// short name (`deploy`), singular, or any of these qualified by group (`deployments.apps`).
    pub fn resolve(&self, name: &str) -> Result<ResourceType, String> {
        let (base, group) = match name.split_once('.') {
            Some((b, g)) => (b, Some(g)),
            None => (name, None),
        };
        let lower = base.to_ascii_lowercase();
        let mut found: Vec<&ResourceType> = self
            .types
            .iter()
            .filter(|t| !t.create_only)
            .filter(|t| group.is_none_or(|g| t.group == g))
            .filter(|t| {
                t.plural == lower
                    || t.singular == lower
                    || t.kind.eq_ignore_ascii_case(base)
                    || t.short_names.contains(&lower)
            })
            .collect();
        // Several versions of one group/plural: take the preferred version.
        found.sort_by_key(|t| std::cmp::Reverse(resources::version_priority(&t.version)));
        let first = found
            .first()
            .ok_or_else(|| format!("the server doesn't have a resource type {name:?}"))?;
        if found.iter().any(|t| t.key() != first.key()) {
            return Err(format!(
                "resource type {name:?} is ambiguous; qualify it with its group (plural.group)"
            ));
        }
        Ok((*first).clone())
    }

    pub fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            self.server_id,
            (self.uid_counter >> 32) & 0xffff,
            (self.uid_counter >> 20) & 0xfff,
            (self.uid_counter >> 8) & 0xfff,
            self.uid_counter
        )
    }

    /// Random-looking 5-char suffix for `generateName`.
    pub fn name_suffix(&mut self) -> String {
        self.uid_counter += 1;
        let mut x = self
            .uid_counter
            .wrapping_mul(0x9E3779B97F4A7C15)
            .wrapping_add(self.server_id as u64);
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| {
                let c = ALPHA[(x % ALPHA.len() as u64) as usize] as char;
                x /= ALPHA.len() as u64;
                c
            })
            .collect()
    }

    /// Fill what the server sets on a new object: apiVersion/kind, namespace, uid,
    /// creationTimestamp, generation. Keeps fields already present (seeding may set them).
    pub fn prepare_new(&mut self, rt: &ResourceType, obj: &mut Value, namespace: Option<&str>) {
        let api_version = rt.api_version();
        let generation = rt.tracks_generation();
        let uid = self.next_uid();
        let o = obj.as_object_mut().expect("object");
        o.insert("apiVersion".into(), Value::String(api_version));
        o.insert("kind".into(), Value::String(rt.kind.clone()));
        let m = metadata_mut(obj);
        if rt.namespaced {
            if let Some(ns) = namespace {
                m.insert("namespace".into(), Value::String(ns.into()));
            }
        } else {
            m.remove("namespace");
        }
        if m.get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            m.insert("uid".into(), Value::String(uid));
        }
        if m.get("creationTimestamp").is_none_or(Value::is_null) {
            m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        }
        if generation && m.get("generation").is_none_or(Value::is_null) {
            m.insert("generation".into(), json!(1));
        }
        if rt.group == "apps" {
            default_workload(&rt.kind, obj);
        }
    }

    pub fn get(&self, key: &ResKey, ns: &str, name: &str) -> Option<&Stored> {
        self.objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
    }

    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.get(&(String::new(), "namespaces".into()), "", ns)
            .is_some()
    }

    fn push_event(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        // No receivers is fine.
        let _ = self.events_tx.send(ev.clone());
        self.history.push_back(ev);
        while self.history.len() > self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
    }

    /// Store an object (create or replace), giving it the next resourceVersion.
    pub fn put(&mut self, rt: &ResourceType, value: Value) -> Stored {
        self.put_as(rt, value, false)
    }

    /// [`State::put`], keeping the object compact (see [`Stored`]) when asked.
    pub fn put_as(&mut self, rt: &ResourceType, mut value: Value, compact: bool) -> Stored {
        self.rv += 1;
        let rv = self.rv;
        let ns = meta_str(&value, "namespace").unwrap_or("").to_string();
        let name = meta_str(&value, "name").unwrap_or("").to_string();
        metadata_mut(&mut value).insert("resourceVersion".into(), Value::String(rv.to_string()));
        let is_crd = rt.group == CRD_GROUP && rt.plural == CRD_PLURAL;
        if is_crd {
            fill_crd_status(&mut value);
        }
        let stored = if compact && !is_crd {
            Stored::compact(value)
        } else {
            Stored::new(value)
        };
        let key = rt.key();
        let old = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert((ns.clone(), name), stored.clone());
        self.push_event(Event {
            rv,
            key,
            namespace: ns,
            kind: if old.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            object: stored.clone(),
            old: old.map(|o| o.full()),
        });
        if is_crd {
            self.refresh_types();
        }
        stored
    }

    /// Remove an object; the returned value carries the deletion's resourceVersion.
    pub fn remove(&mut self, key: &ResKey, ns: &str, name: &str) -> Option<Stored> {
        let old = self
            .objects
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let old_value = old.full();
        let mut v = (*old_value).clone();
        metadata_mut(&mut v).insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let stored = Stored::new(v);
        self.push_event(Event {
            rv: self.rv,
            key: key.clone(),
            namespace: ns.to_string(),
            kind: EventType::Deleted,
            object: stored.clone(),
            old: Some(old_value),
        });
        if key.0 == CRD_GROUP && key.1 == CRD_PLURAL {
            self.refresh_types();
        }
        Some(stored)
    }

    /// Recompute the served types from the built-ins and the stored CRDs. Custom resources whose
    /// CRD is gone are deleted (as the real server does).
    fn refresh_types(&mut self) {
        let mut types = self.builtin_types.clone();
        let crds: Vec<Arc<Value>> = self
            .objects
            .get(&(CRD_GROUP.to_string(), CRD_PLURAL.to_string()))
            .map(|m| m.values().map(|s| s.value.clone()).collect())
            .unwrap_or_default();
        for crd in crds {
            if let Ok(ts) = resources::from_crd(&crd) {
                for t in ts {
                    if !types.iter().any(|x| {
                        x.group == t.group && x.version == t.version && x.plural == t.plural
                    }) {
                        types.push(t);
                    }
                }
            }
        }
        let gone: Vec<ResKey> = self
            .types
            .iter()
            .filter(|t| t.custom && !types.iter().any(|n| n.key() == t.key()))
            .map(|t| t.key())
            .collect();
        if types != self.types {
            self.types = types;
            self.types_generation += 1;
        }
        for key in gone {
            let names: Vec<ObjKey> = self
                .objects
                .get(&key)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, name) in names {
                self.remove(&key, &ns, &name);
            }
            self.objects.remove(&key);
        }
    }
}

/// The few defaults of workload specs that clients rely on (`kubectl rollout status` needs the
/// update strategy): replicas 1 and a RollingUpdate strategy when absent.
fn default_workload(kind: &str, obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if matches!(kind, "Deployment" | "StatefulSet" | "ReplicaSet") {
        spec.entry("replicas").or_insert(json!(1));
    }
    let (field, strategy) = match kind {
        "Deployment" => (
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
        ),
        "DaemonSet" => (
            "updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        ),
        "StatefulSet" => (
            "updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
        ),
        _ => return,
    };
    spec.entry(field).or_insert(strategy);
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Give a CRD the status the real apiextensions controller would: accepted names, stored
/// versions, and `NamesAccepted` and `Established` conditions True. Keeps conditions a seed set.
pub(crate) fn fill_crd_status(crd: &mut Value) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let Some(obj) = crd.as_object_mut() else {
        return;
    };
    let status = obj.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let s = status.as_object_mut().expect("object");
    let mut accepted = names;
    if let Some(a) = accepted.as_object_mut() {
        if !a.contains_key("singular")
            && let Some(k) = a.get("kind").and_then(Value::as_str)
        {
            let singular = k.to_ascii_lowercase();
            a.insert("singular".into(), Value::String(singular));
        }
        if !a.contains_key("listKind")
            && let Some(k) = a.get("kind").and_then(Value::as_str)
        {
            let lk = format!("{k}List");
            a.insert("listKind".into(), Value::String(lk));
        }
    }
    s.insert("acceptedNames".into(), accepted);
    let mut stored: Vec<Value> = s
        .get("storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in storage {
        if !stored.contains(&v) {
            stored.push(v);
        }
    }
    s.insert("storedVersions".into(), Value::Array(stored));
    let has_conditions = s
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    if !has_conditions {
        let now = now_rfc3339();
        s.insert(
            "conditions".into(),
            json!([
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now}
            ]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}})
    }

    #[test]
    fn crd_lifecycle_serves_and_unserves() {
        let mut st = State::new(100);
        let crd_t = st.resolve("crd").unwrap();
        assert!(st.find_type("example.com", "v1", "widgets").is_none());
        let stored = st.put(&crd_t, crd());
        assert_eq!(
            stored.value.pointer("/status/conditions/1/type"),
            Some(&json!("Established"))
        );
        let w = st.resolve("widgets.example.com").unwrap();
        assert_eq!(w.kind, "Widget");
        let mut obj = json!({"metadata": {"name": "w1"}});
        st.prepare_new(&w, &mut obj, Some("default"));
        st.put(&w, obj);
        assert!(st.get(&w.key(), "default", "w1").is_some());
        st.remove(&crd_t.key(), "", "widgets.example.com");
        assert!(st.find_type("example.com", "v1", "widgets").is_none());
        assert!(st.get(&w.key(), "default", "w1").is_none());
    }

    #[test]
    fn history_is_bounded() {
        let mut st = State::new(3);
        let cm = st.resolve("ConfigMap").unwrap();
        for i in 0..5 {
            let mut o = json!({"metadata": {"name": format!("c{i}")}});
            st.prepare_new(&cm, &mut o, Some("default"));
            st.put(&cm, o);
        }
        assert_eq!(st.history.len(), 3);
        assert_eq!(st.compacted_rv, st.history[0].rv - 1);
        assert_eq!(st.rv, 6);
    }

    #[test]
    fn resolve_names() {
        let st = State::new(10);
        for n in [
            "deploy",
            "Deployment",
            "deployments",
            "deployments.apps",
            "deployment",
        ] {
            assert_eq!(st.resolve(n).unwrap().plural, "deployments", "{n}");
        }
        assert!(st.resolve("nothing").is_err());
    }
}
