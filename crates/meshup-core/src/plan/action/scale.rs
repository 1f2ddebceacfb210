//! `scale`: set a workload's replicas through `/scale` (the Gloo Mesh management workloads).

use super::ActionKind;
use crate::plan::describe::object;
use crate::plan::model::{Mesh, ObjectRef, ReplicasBefore};
use crate::plan::scope::{Checked, Cx, list};
use crate::snapshot::REPLICAS_BEFORE_ANNOTATION;

pub struct Scale<'a> {
    pub target: &'a ObjectRef,
    pub replicas: u32,
    pub replicas_before: Option<ReplicasBefore>,
}

impl<'a> ActionKind<'a> for Scale<'a> {
    fn type_name(&self) -> &'static str {
        "scale"
    }

    fn describe(&self, current_replicas: Option<u32>) -> String {
        let Scale {
            target, replicas, ..
        } = self;
        // With the live count (apply's step lines), where the count came from or went is the
        // step's result note instead.
        let change = match current_replicas {
            Some(now) => return format!("scale {} {now} -> {replicas}", object(target)),
            None => format!("scale {} to {replicas}", object(target)),
        };
        match self.replicas_before {
            None => change,
            Some(ReplicasBefore::Record) => {
                format!("{change}, recording its replicas in {REPLICAS_BEFORE_ANNOTATION}")
            }
            Some(ReplicasBefore::Restore) => {
                format!("{change}, the replicas recorded before the scale-down")
            }
        }
    }

    fn chart_repo(&self) -> Option<&'a str> {
        None
    }

    fn scope(&self, cx: &Cx<'_>, _undo: bool) -> Checked {
        let Scale {
            target, replicas, ..
        } = self;
        cx.needs(Mesh::GlooMesh, "scaling a workload")?;
        let key = format!("{}/{}/{}", target.kind, target.namespace, target.name);
        let Some(observed) = cx.scope.gloo_workloads.get(&key) else {
            return Err(format!(
                "scales {} {}/{}, which is not a Gloo Mesh management workload of this cluster; only {} may be scaled",
                target.kind,
                target.namespace,
                target.name,
                list(&cx.scope.gloo_workloads.keys().cloned().collect())
            ));
        };
        // The runbook scales to zero, back to one, and its undo restores what was observed.
        if ![0, 1, (*observed).max(1)].contains(replicas) {
            return Err(format!(
                "scales {} {}/{} to {replicas} replicas; the runbook only scales to 0, to 1 or back to the {observed} observed",
                target.kind, target.namespace, target.name
            ));
        }
        if let Some(observed) = &cx.scope.observed
            && !observed.contains(&key)
        {
            return Err(format!(
                "scales {} {}/{}, which the cluster does not have",
                target.kind, target.namespace, target.name
            ));
        }
        Ok(())
    }
}
