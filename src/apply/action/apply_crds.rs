//! `apply-crds`: the CRDs of a Helm chart (`helm show crds`), server-side applied as
//! `kubectl-meshup`.

use futures::FutureExt;

use super::{KeepsState, Mode, Running, StepAction, StepRun, Undoing};
use crate::apply::actions::{self};
use crate::apply::describe::HintTarget;
use crate::apply::describe::helm_show_crds_args;
use crate::apply::interrupt::or_interrupt;
use crate::apply::permissions::Needs;
use crate::plan::action::ApplyCrds;
use crate::plan::{Tool, command_line};

impl StepAction for ApplyCrds<'_> {
    fn changes_cluster(&self) -> bool {
        true
    }

    fn tool(&self) -> Option<Tool> {
        Some(Tool::Helm)
    }

    fn hand_command(&self, at: HintTarget<'_>) -> String {
        format!(
            "{} | {} apply --server-side --field-manager=kubectl-meshup -f -",
            command_line(
                Tool::Helm.program(),
                &helm_show_crds_args(self.chart, self.repo, self.version)
            ),
            at.kubectl()
        )
    }

    fn needs(&self, needs: &mut Needs<'_>) {
        needs.add(
            &["get", "create", "patch"],
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
        );
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
                let command = self.hand_command(ex.hint(&step.cluster));
                ex.ui.step_progress(&format!("would run: {command}"));
                return Ok(String::new());
            }
            let args = helm_show_crds_args(self.chart, self.repo, self.version);
            let Some(manifests) = ex
                .run_tool(step, Tool::Helm, &args, Some(300), true)
                .await?
            else {
                return Ok("applied by hand".to_string());
            };
            let force = ex.options.force_conflicts;
            let names = or_interrupt(ex.interrupt, async {
                Ok(actions::apply_crds(client, &manifests, false, force).await?)
            })
            .await?;
            Ok(format!("{} CRDs applied", names.len()))
        }
        .boxed()
    }

    fn undo_now<'a>(&'a self, _: &'a kube::Client) -> Undoing<'a> {
        None
    }
}
