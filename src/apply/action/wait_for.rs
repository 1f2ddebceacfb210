//! `wait`: a rollout to complete, or a group's resources to exist again, polled until the timeout.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Mode, Resolved, ScaleFacts, StepAction, StepRun};
use crate::apply::actions::ActionError;
use crate::apply::awaited::Awaited;
use crate::apply::describe::{self, HintTarget};
use crate::apply::error::StepError;
use crate::apply::journal::{Journal, StepRecord};
use crate::apply::permissions::Needs;
use crate::plan::{Action, Tool, UpgradePlan, WaitCondition};

pub(super) struct WaitFor<'a> {
    /// The action, for its description.
    pub whole: &'a Action,
    pub condition: &'a WaitCondition,
    pub timeout_seconds: u64,
}

impl StepAction for WaitFor<'_> {
    fn changes_cluster(&self) -> bool {
        false
    }

    fn tool(&self) -> Option<Tool> {
        None
    }

    /// Nothing to type: what it waits for.
    fn hand_command(&self, _: HintTarget<'_>) -> String {
        describe::action(self.whole, None)
    }

    fn needs(&self, needs: &mut Needs<'_>) {
        match self.condition {
            WaitCondition::RolloutComplete { target } => needs.workload(&["get"], target, ""),
            WaitCondition::ResourcesPresent {
                group, resources, ..
            } => {
                for r in resources {
                    needs.add(&["list"], group, r, "");
                }
            }
        }
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
                ex,
                client,
                step,
                mode,
                ..
            } = run;
            if mode == Mode::Dry {
                ex.ui
                    .step_progress("skipped: nothing was changed to wait for");
                return Ok(String::new());
            }
            let timeout = ex.timeout(Some(self.timeout_seconds));
            let awaited = match self.condition {
                WaitCondition::RolloutComplete { target } => Awaited::Rollout(target.clone()),
                WaitCondition::ResourcesPresent {
                    group,
                    version,
                    resources,
                } => Awaited::Resources {
                    group: group.clone(),
                    version: version.clone(),
                    resources: resources.clone(),
                },
            };
            let note = ex.poll(client, &step.cluster, &awaited, timeout).await?;
            Ok(note.unwrap_or_default())
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
