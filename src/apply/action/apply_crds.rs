//! `apply-crds`: the CRDs of a Helm chart (`helm show crds`), server-side applied as
//! `kubectl-meshup`.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Mode, Resolved, ScaleFacts, StepAction, StepRun};
use crate::apply::actions::{self, ActionError};
use crate::apply::describe::HintTarget;
use crate::apply::describe::helm_show_crds_args;
use crate::apply::error::StepError;
use crate::apply::interrupt::or_interrupt;
use crate::apply::journal::{Journal, StepRecord};
use crate::apply::permissions::Needs;
use crate::plan::{Tool, UpgradePlan, command_line};

pub(super) struct ApplyCrds<'a> {
    pub chart: &'a str,
    pub repo: &'a str,
    pub version: &'a str,
}

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

    fn undo_now<'a>(
        &'a self,
        _client: &'a kube::Client,
    ) -> Option<BoxFuture<'a, Result<(), ActionError>>> {
        None
    }
}
