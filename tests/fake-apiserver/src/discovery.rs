//! Legacy discovery documents, `/version`, and the OpenAPI v3 stubs kubectl uses to decide that
//! the server validates fields itself.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::resources::{ResourceType, version_priority};
use crate::state::State;

pub(crate) fn version_info(git_version: &str) -> Value {
    // v1.29.6-eks-db838b0 -> major 1, minor "29+"
    let core = git_version.trim_start_matches('v');
    let (numbers, suffix) = match core.find(['-', '+']) {
        Some(i) => (&core[..i], true),
        None => (core, false),
    };
    let mut it = numbers.split('.');
    let major = it.next().unwrap_or("1").to_string();
    let minor = it.next().unwrap_or("0").to_string();
    json!({
        "major": major,
        "minor": if suffix { format!("{minor}+") } else { minor },
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-06-11T00:00:00Z",
        "goVersion": "go1.22.4",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub(crate) fn api_versions(host: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]
    })
}

/// group name -> versions in preference order.
fn groups(state: &State) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in &state.types {
        if t.group.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) => {
                if !vs.contains(&t.version) {
                    vs.push(t.version.clone());
                }
            }
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    for (_, vs) in &mut out {
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": gv(&versions[0]),
    })
}

pub(crate) fn api_group_list(state: &State) -> Value {
    let groups: Vec<Value> = groups(state)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn api_group(state: &State, group: &str) -> Option<Value> {
    let gs = groups(state);
    let (g, vs) = gs.iter().find(|(g, _)| g == group)?;
    let mut v = group_json(g, vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

pub(crate) fn group_version_served(state: &State, group: &str, version: &str) -> bool {
    state
        .types
        .iter()
        .any(|t| t.group == group && t.version == version)
}

fn resource_json(t: &ResourceType) -> Value {
    let mut r = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": t.verbs(),
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    r
}

pub(crate) fn api_resource_list(state: &State, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for t in state
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        resources.push(resource_json(t));
        if t.has_status {
            resources.push(json!({
                "name": format!("{}/status", t.plural), "singularName": "",
                "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]
            }));
        }
        if t.scale.is_some() {
            resources.push(json!({
                "name": format!("{}/scale", t.plural), "singularName": "",
                "namespaced": t.namespaced, "group": "autoscaling", "version": "v1",
                "kind": "Scale", "verbs": ["get", "patch", "update"]
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash_of(state: &State, salt: &str) -> String {
    // FNV-1a over the salt and the types generation: changes whenever CRDs change.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in salt
        .bytes()
        .chain(state.types_generation.to_le_bytes())
        .chain(state.server_nonce().to_le_bytes())
    {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}{:016X}", h.rotate_left(17) ^ 0x9E3779B97F4A7C15)
}

pub(crate) fn openapi_v3_index(state: &State) -> Value {
    let mut paths = BTreeMap::new();
    for t in &state.types {
        let p = gv_path(&t.group, &t.version);
        let url = format!("/openapi/v3/{p}?hash={}", hash_of(state, &p));
        paths.insert(p, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

fn schema_name(t: &ResourceType) -> String {
    let group = if t.group.is_empty() {
        "core".to_string()
    } else {
        t.group.clone()
    };
    format!("fake.{group}.{}.{}", t.version, t.kind)
}

/// A minimal OpenAPI v3 document for one group/version: every resource path with a `patch`
/// operation that has `x-kubernetes-group-version-kind` and a `fieldValidation` parameter, and
/// schemas that accept anything.
pub(crate) fn openapi_v3_doc(state: &State, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = state
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let prefix = format!("/{}", gv_path(group, version));
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let param = |name: &str, inn: &str| json!({"name": name, "in": inn, "schema": {"type": "string", "uniqueItems": true}});
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let schema_ref = json!({"$ref": format!("#/components/schemas/{}", schema_name(t))});
        let body = json!({"content": {
            "application/json": {"schema": schema_ref},
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
            "application/strategic-merge-patch+json": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}}
        }});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
        let write_params = json!([
            param("dryRun", "query"),
            param("fieldManager", "query"),
            param("fieldValidation", "query")
        ]);
        let op = |action: &str, id: &str, with_body: bool, write: bool| {
            let mut o = json!({
                "operationId": format!("{id}{}", t.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "responses": ok,
            });
            if with_body {
                o["requestBody"] = body.clone();
            }
            if write {
                o["parameters"] = write_params.clone();
            }
            o
        };
        let (coll, item) = if t.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", t.plural),
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural),
            )
        } else {
            (
                format!("{prefix}/{}", t.plural),
                format!("{prefix}/{}/{{name}}", t.plural),
            )
        };
        let mut path_params = vec![param("name", "path")];
        if t.namespaced {
            path_params.push(param("namespace", "path"));
        }
        if t.create_only {
            paths.insert(coll, json!({"post": op("post", "create", true, true)}));
        } else {
            paths.insert(
                coll,
                json!({
                    "get": op("list", "list", false, false),
                    "post": op("post", "create", true, true),
                    "delete": op("deletecollection", "deleteCollection", false, false),
                    "parameters": if t.namespaced { json!([param("namespace", "path")]) } else { json!([]) },
                }),
            );
            paths.insert(
                item.clone(),
                json!({
                    "get": op("get", "read", false, false),
                    "put": op("put", "replace", true, true),
                    "patch": op("patch", "patch", true, true),
                    "delete": op("delete", "delete", false, false),
                    "parameters": path_params,
                }),
            );
            if t.has_status {
                paths.insert(
                    format!("{item}/status"),
                    json!({
                        "get": op("get", "readStatus", false, false),
                        "put": op("put", "replaceStatus", true, true),
                        "patch": op("patch", "patchStatus", true, true),
                    }),
                );
            }
        }
        schemas.insert(
            schema_name(t),
            json!({
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [gvk],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "fake-apiserver"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_minor_plus() {
        let v = version_info("v1.29.6-eks-db838b0");
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "29+");
        assert_eq!(version_info("v1.31.2")["minor"], "31");
    }

    #[test]
    fn resource_list_has_subresources() {
        let st = State::new(10);
        let l = api_resource_list(&st, "apps", "v1");
        let names: Vec<&str> = l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments/scale"));
        assert!(names.contains(&"deployments/status"));
        assert!(!names.contains(&"daemonsets/scale"));
        assert_eq!(api_resource_list(&st, "", "v1")["groupVersion"], "v1");
    }

    #[test]
    fn openapi_has_patch_with_field_validation() {
        let st = State::new(10);
        let doc = openapi_v3_doc(&st, "apps", "v1").unwrap();
        let p = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(
            p["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == "fieldValidation")
        );
        assert!(openapi_v3_doc(&st, "nope", "v1").is_none());
    }
}
