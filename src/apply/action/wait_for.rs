//! `wait`: a rollout to complete, or a group's resources to exist again, polled until the timeout.

use futures::FutureExt;

use super::{KeepsState, Mode, Running, StepAction, StepRun, Undoing};
use crate::apply::awaited::Awaited;
use crate::apply::describe::{self, HintTarget};
use crate::apply::permissions::Needs;
use crate::plan::action::Wait;
use crate::plan::{Tool, WaitCondition};

impl StepAction for Wait<'_> {
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

    fn state(&self) -> Option<&dyn KeepsState> {
        None
    }

    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> Running<'a> {
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

    fn undo_now<'a>(&'a self, _: &'a kube::Client) -> Undoing<'a> {
        None
    }
}
