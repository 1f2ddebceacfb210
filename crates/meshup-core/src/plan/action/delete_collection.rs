//! `delete-collection`: delete every object of one resource in an API group (Gloo Mesh's discovery
//! resources, before the upgrade recreates them).

use super::ActionKind;
use crate::plan::model::Mesh;
use crate::plan::scope::{Checked, Cx, is_discovery_group, list};

pub struct DeleteCollection<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
}

impl<'a> ActionKind<'a> for DeleteCollection<'a> {
    fn type_name(&self) -> &'static str {
        "delete-collection"
    }

    fn describe(&self, _: Option<u32>) -> String {
        let DeleteCollection {
            group,
            version,
            resource,
            namespace,
        } = self;
        let scope = match namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "in all namespaces".to_string(),
        };
        format!("delete all {resource}.{group} ({group}/{version}) {scope}")
    }

    fn chart_repo(&self) -> Option<&'a str> {
        None
    }

    fn scope(&self, cx: &Cx<'_>, undo: bool) -> Checked {
        let DeleteCollection {
            group,
            version,
            resource,
            namespace,
        } = *self;
        cx.needs(Mesh::GlooMesh, "deleting a collection")?;
        if undo {
            return Err("an undo may not delete anything".to_string());
        }
        let what = if group.is_empty() {
            format!("deletes all {resource} (core API)")
        } else {
            format!("deletes all {resource}.{group}")
        };
        let Some((served, resources)) = cx
            .scope
            .gloo_groups
            .get(group)
            .filter(|_| is_discovery_group(group))
        else {
            return Err(format!(
                "{what}: only the Gloo Mesh discovery group the cluster serves may be deleted from ({}), never core resources, Secrets or CRDs",
                list(
                    &cx.scope
                        .gloo_groups
                        .keys()
                        .filter(|g| is_discovery_group(g))
                        .cloned()
                        .collect()
                )
            ));
        };
        if served != version || !resources.contains(resource) {
            return Err(format!(
                "{what}/{version}: the cluster serves {group}/{served} with {}",
                list(resources)
            ));
        }
        if let Some(ns) = namespace {
            cx.mesh_namespace(ns, &what)?;
        }
        if !cx.step.irreversible {
            return Err(format!(
                "{what} but is not marked irreversible, so it would run without the irreversible-step confirmation"
            ));
        }
        Ok(())
    }
}
