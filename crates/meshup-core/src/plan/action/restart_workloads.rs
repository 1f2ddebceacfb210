//! `restart-workloads`: a rolling restart of the workloads whose pods carry proxies in a namespace.

use super::ActionKind;
use crate::plan::model::{Mesh, Renewal};
use crate::plan::scope::{Checked, Cx};

pub struct RestartWorkloads<'a> {
    pub namespace: &'a str,
    pub workloads: &'a [String],
}

impl<'a> ActionKind<'a> for RestartWorkloads<'a> {
    fn type_name(&self) -> &'static str {
        "restart-workloads"
    }

    fn describe(&self, _: Option<u32>) -> String {
        format!(
            "restart {} workload(s) in {}: {}",
            self.workloads.len(),
            self.namespace,
            self.workloads.join(", ")
        )
    }

    fn chart_repo(&self) -> Option<&'a str> {
        None
    }

    fn scope(&self, cx: &Cx<'_>, _undo: bool) -> Checked {
        let namespace = self.namespace;
        cx.needs(Mesh::Istio, "restarting workloads")?;
        let sidecars = cx.scope.workloads.get(namespace);
        let gateways = cx.scope.gateways.get(namespace);
        for w in self.workloads {
            let name = w.split_once('/').map_or("", |(_, n)| n);
            let known = sidecars.is_some_and(|s| s.contains(w))
                || gateways.is_some_and(|g| g.contains(name));
            if !known || Renewal::of_owner(w) != Renewal::Restart {
                return Err(format!(
                    "restarts {w} in {namespace}, which is not a workload carrying a proxy there"
                ));
            }
        }
        Ok(())
    }
}
