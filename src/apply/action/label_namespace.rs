//! `label-namespace`: set or remove namespace labels (a merge patch).

use futures::FutureExt;

use super::{KeepsState, Mode, Running, StepAction, StepRun, Undoing};
use crate::apply::actions::{self};
use crate::apply::describe::HintTarget;
use crate::apply::interrupt::or_interrupt;
use crate::apply::permissions::Needs;
use crate::plan::Tool;
use crate::plan::action::LabelNamespace;

impl StepAction for LabelNamespace<'_> {
    fn changes_cluster(&self) -> bool {
        true
    }

    fn tool(&self) -> Option<Tool> {
        None
    }

    fn hand_command(&self, at: HintTarget<'_>) -> String {
        format!(
            "{} label namespace {} --overwrite {}",
            at.kubectl(),
            self.namespace,
            self.changes()
        )
    }

    fn needs(&self, needs: &mut Needs<'_>) {
        needs.add(&["get", "patch"], "", "namespaces", "");
    }

    fn state(&self) -> Option<&dyn KeepsState> {
        None
    }

    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> Running<'a> {
        async move {
            let StepRun {
                ex, client, mode, ..
            } = run;
            let label =
                |dry_run| actions::label_namespace(client, self.namespace, self.labels, dry_run);
            match mode {
                Mode::Dry => label(true).await?,
                Mode::Real => or_interrupt(ex.interrupt, async { Ok(label(false).await?) }).await?,
            }
            Ok(String::new())
        }
        .boxed()
    }

    /// Labels set back: the plan's undo of a label change is another label change.
    fn undo_now<'a>(&'a self, client: &'a kube::Client) -> Undoing<'a> {
        Some(actions::label_namespace(client, self.namespace, self.labels, false).boxed())
    }
}
