//! Patch semantics: JSON merge patch (RFC 7386, from json-patch), a strategic-merge approximation,
//! and the merge used for server-side apply.

use serde_json::{Map, Value};

/// Remove strategic-merge directives (`$patch`, `$setElementOrder/...`, `$retainKeys`, ...).
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

fn all_named(a: &[Value]) -> bool {
    a.iter().all(|e| name_of(e).is_some())
}

/// Strategic-merge approximation: objects merge recursively; `null` deletes (when `delete_nulls`);
/// lists of objects that all carry `name` (containers, env, volumes, ports...) merge by name, with
/// `$patch: delete` elements removing; any other list replaces. Directive keys are dropped.
pub fn strategic_merge(target: &mut Value, patch: &Value, delete_nulls: bool) {
    let Value::Object(p) = patch else {
        *target = strip_directives(patch);
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                if delete_nulls {
                    t.remove(k);
                } else {
                    t.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(_) => {
                let entry = t.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(entry, v, delete_nulls);
            }
            Value::Array(pa) => match t.get_mut(k) {
                Some(Value::Array(ta)) if !pa.is_empty() && all_named(pa) && all_named(ta) => {
                    for pe in pa {
                        let name = name_of(pe).expect("named").to_string();
                        let pos = ta.iter().position(|te| name_of(te) == Some(&name));
                        let delete = pe.get("$patch").and_then(Value::as_str) == Some("delete");
                        match (pos, delete) {
                            (Some(i), true) => {
                                ta.remove(i);
                            }
                            (None, true) => {}
                            (Some(i), false) => strategic_merge(&mut ta[i], pe, delete_nulls),
                            (None, false) => ta.push(strip_directives(pe)),
                        }
                    }
                }
                _ => {
                    t.insert(k.clone(), strip_directives(v));
                }
            },
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

/// A `fieldsV1` description of the fields an object sets (`{"f:spec": {"f:replicas": {}}}`).
/// List elements are not itemised.
pub fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "status"))
                .map(|(k, v)| {
                    let inner = match v {
                        Value::Object(_) => fields_v1(v),
                        _ => Value::Object(Map::new()),
                    };
                    (format!("f:{k}"), inner)
                })
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// One field a server-side apply would take from another manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflict {
    pub manager: String,
    pub api_version: String,
    /// `.spec.versions`, as the real API server names it.
    pub path: String,
}

/// The conflicts of a server-side apply of `applied` by `manager` (without `force`) on `current`: the
/// fields `applied` sets to a value other than the current one while another manager owns them (its
/// `managedFields` entry, from an Update or an Apply, lists the field or a field inside it).
/// Lists are atomic here (the fake's `fieldsV1` stops at them), as the real server reports a list it
/// cannot merge by key.
pub fn apply_conflicts(current: &Value, applied: &Value, manager: &str) -> Vec<ApplyConflict> {
    let mut out = Vec::new();
    let entries = current
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for entry in entries {
        let other = entry.get("manager").and_then(Value::as_str).unwrap_or("");
        if other == manager || entry.get("subresource").is_some() {
            continue;
        }
        let Some(owned) = entry.get("fieldsV1") else {
            continue;
        };
        let mut paths = Vec::new();
        conflicting(applied, current, owned, "", &mut paths);
        for path in paths {
            out.push(ApplyConflict {
                manager: other.to_string(),
                api_version: entry
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                path,
            });
        }
    }
    out
}

/// Walks `applied` alongside the owned fields tree: a field owned (as a leaf, or with owned fields
/// inside) whose applied value differs from the current one is a conflict.
fn conflicting(applied: &Value, current: &Value, owned: &Value, at: &str, out: &mut Vec<String>) {
    let Value::Object(fields) = applied else {
        return;
    };
    for (k, v) in fields {
        if at.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "status") {
            continue;
        }
        if at == ".metadata"
            && matches!(
                k.as_str(),
                "name" | "namespace" | "resourceVersion" | "managedFields"
            )
        {
            continue;
        }
        let Some(owned_here) = owned.get(format!("f:{k}")) else {
            continue;
        };
        let path = format!("{at}.{k}");
        let now = current.get(k).unwrap_or(&Value::Null);
        match (v, owned_here.as_object().map(|m| m.is_empty())) {
            (Value::Object(_), Some(false)) => conflicting(v, now, owned_here, &path, out),
            _ => {
                if v != now {
                    out.push(path);
                }
            }
        }
    }
}

/// The message the real API server gives for `conflicts` (all from one apply).
pub fn conflict_message(conflicts: &[ApplyConflict]) -> String {
    match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with \"{}\" using {}: {}",
            one.manager, one.api_version, one.path
        ),
        many => {
            let lines: Vec<String> = many
                .iter()
                .map(|c| {
                    format!(
                        "conflict with \"{}\" using {}: {}",
                        c.manager, c.api_version, c.path
                    )
                })
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                many.len(),
                lines.join("\n")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_conflicts_with_fields_another_manager_set() {
        // A CRD helm created (an Update owns every field it wrote).
        let current = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "meshes.example.io", "labels": {"app": "gm"}, "managedFields": [
                {"manager": "helm", "operation": "Update", "apiVersion": "apiextensions.k8s.io/v1",
                 "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}},
                              "f:spec": {"f:group": {}, "f:versions": {}}}}
            ]},
            "spec": {"group": "example.io", "versions": [{"name": "v1alpha2"}]}
        });
        let applied = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "meshes.example.io", "labels": {"app": "gm"}},
            "spec": {"group": "example.io", "versions": [{"name": "v1"}, {"name": "v1alpha2"}]}
        });
        let conflicts = apply_conflicts(&current, &applied, "kubectl-meshup");
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"helm\" using apiextensions.k8s.io/v1: .spec.versions"
        );
        // The same values, or the same manager, or fields nobody else owns: no conflict.
        assert!(apply_conflicts(&current, &current, "kubectl-meshup").is_empty());
        assert!(apply_conflicts(&current, &applied, "helm").is_empty());
        let unowned = json!({"spec": {"names": {"plural": "meshes"}}});
        assert!(apply_conflicts(&current, &unowned, "kubectl-meshup").is_empty());
    }

    #[test]
    fn merges_named_lists() {
        let mut t = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "args": ["x"]},
            {"name": "b", "image": "b:1"}
        ], "replicas": 1}});
        strategic_merge(
            &mut t,
            &json!({"$setElementOrder/containers": [{"name": "a"}], "spec": {"containers": [
                {"name": "a", "image": "a:2"},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "c:1"}
            ], "replicas": null}}),
            true,
        );
        assert_eq!(
            t,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "args": ["x"]},
                {"name": "c", "image": "c:1"}
            ]}})
        );
    }

    #[test]
    fn other_lists_replace() {
        let mut t = json!({"a": [1, 2], "b": {"c": 1}});
        strategic_merge(&mut t, &json!({"a": [3], "b": {"d": 2}}), true);
        assert_eq!(t, json!({"a": [3], "b": {"c": 1, "d": 2}}));
    }

    #[test]
    fn fields() {
        assert_eq!(
            fields_v1(&json!({"spec": {"replicas": 2, "x": [1]}, "status": {}})),
            json!({"f:spec": {"f:replicas": {}, "f:x": {}}})
        );
    }
}
