//! `delete-collection`: every object of one resource in an API group, in one namespace or all.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Mode, Resolved, ScaleFacts, StepAction, StepRun};
use crate::apply::actions::{self, ActionError};
use crate::apply::describe::HintTarget;
use crate::apply::error::StepError;
use crate::apply::interrupt::or_interrupt;
use crate::apply::journal::{Journal, StepRecord};
use crate::apply::permissions::Needs;
use crate::plan::{Tool, UpgradePlan};

pub(super) struct DeleteCollection<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
}

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

    fn read_live<'a>(
        &'a self,
        _client: &'a kube::Client,
    ) -> Option<BoxFuture<'a, Result<ScaleFacts, ActionError>>> {
        None
    }

    fn resolve(
        &self,
        _: Option<ScaleFacts>,
        _: Option<&Journal>,
        _: &UpgradePlan,
    ) -> Option<Resolved> {
        None
    }

    fn record_start(&self, _: &mut StepRecord, _: Option<ScaleFacts>, _: &str) {}

    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> BoxFuture<'a, Result<String, StepError>> {
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

    fn undo_now<'a>(
        &'a self,
        _client: &'a kube::Client,
    ) -> Option<BoxFuture<'a, Result<(), ActionError>>> {
        None
    }
}
