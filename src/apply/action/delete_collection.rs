//! `delete-collection`: every object of one resource in an API group, in one namespace or all.

use futures::FutureExt;

use super::{KeepsState, Mode, Running, StepAction, StepRun, Undoing};
use crate::apply::actions::{self};
use crate::apply::describe::HintTarget;
use crate::apply::interrupt::or_interrupt;
use crate::apply::permissions::Needs;
use crate::plan::Tool;
use crate::plan::action::DeleteCollection;

impl StepAction for DeleteCollection<'_> {
    fn changes_cluster(&self) -> bool {
        true
    }

    fn tool(&self) -> Option<Tool> {
        None
    }

    fn hand_command(&self, at: HintTarget<'_>) -> String {
        let kubectl = at.kubectl();
        let scope = match self.namespace {
            Some(ns) => format!("-n {ns}"),
            None => "--all-namespaces".to_string(),
        };
        format!(
            "{kubectl} delete {}.{} --all {scope}",
            self.resource, self.group
        )
    }

    fn needs(&self, needs: &mut Needs<'_>) {
        let ns = self.namespace.unwrap_or("");
        needs.add(&["list", "deletecollection"], self.group, self.resource, ns);
    }

    fn state(&self) -> Option<&dyn KeepsState> {
        None
    }

    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> Running<'a> {
        async move {
            let StepRun {
                ex, client, mode, ..
            } = run;
            let delete = |dry_run| {
                actions::delete_collection(
                    client,
                    self.group,
                    self.version,
                    self.resource,
                    self.namespace,
                    dry_run,
                )
            };
            match mode {
                Mode::Dry => {
                    let n = delete(true).await?;
                    ex.ui.step_progress(&format!("would delete {n}"));
                    Ok(String::new())
                }
                Mode::Real => {
                    let n = or_interrupt(ex.interrupt, async { Ok(delete(false).await?) }).await?;
                    Ok(format!("{n} deleted"))
                }
            }
        }
        .boxed()
    }

    fn undo_now<'a>(&'a self, _: &'a kube::Client) -> Undoing<'a> {
        None
    }
}
