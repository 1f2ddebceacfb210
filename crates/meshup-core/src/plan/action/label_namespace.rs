//! `label-namespace`: set or remove a namespace's injection labels (Istio's canary moves a namespace
//! to the new revision).

use std::collections::BTreeMap;

use super::ActionKind;
use crate::plan::model::Mesh;
use crate::plan::scope::{Checked, Cx, list};

pub struct LabelNamespace<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, Option<String>>,
}

impl LabelNamespace<'_> {
    /// The changes as `kubectl label` takes them: `key=value` sets, `key-` removes.
    pub fn changes(&self) -> String {
        let changes: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => format!("{k}-"),
            })
            .collect();
        changes.join(" ")
    }
}

impl<'a> ActionKind<'a> for LabelNamespace<'a> {
    fn type_name(&self) -> &'static str {
        "label-namespace"
    }

    fn describe(&self, _: Option<u32>) -> String {
        format!("label namespace {} {}", self.namespace, self.changes())
    }

    fn chart_repo(&self) -> Option<&'a str> {
        None
    }

    fn scope(&self, cx: &Cx<'_>, _undo: bool) -> Checked {
        let namespace = self.namespace;
        cx.needs(Mesh::Istio, "labelling a namespace")?;
        if !cx.scope.enrolled.contains(namespace) {
            return Err(format!(
                "labels namespace {namespace}, which is not enrolled in the mesh ({})",
                list(&cx.scope.enrolled)
            ));
        }
        for (key, value) in self.labels {
            cx.label(key, value.as_deref())?;
        }
        Ok(())
    }
}
