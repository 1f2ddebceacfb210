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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
