//! `restart-workloads`: a rolling restart (the `restartedAt` annotation) of the workloads whose pods
//! carry proxies, then each rollout awaited.

use jiff::Timestamp;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{KeepsState, Mode, Resolved, Running, ScaleFacts, StepAction, StepRun, Undoing};
use crate::apply::actions::{self, ActionError};
use crate::apply::awaited::Awaited;
use crate::apply::describe::HintTarget;
use crate::apply::interrupt::or_interrupt;
use crate::apply::journal::{Journal, StepRecord};
use crate::apply::permissions::Needs;
use crate::apply::permissions::workload_resource;
use crate::plan::action::RestartWorkloads;
use crate::plan::{Tool, UpgradePlan};

impl StepAction for RestartWorkloads<'_> {
    fn changes_cluster(&self) -> bool {
        true
    }

    fn tool(&self) -> Option<Tool> {
        None
    }

    fn hand_command(&self, at: HintTarget<'_>) -> String {
        format!(
            "{} -n {} rollout restart {}",
            at.kubectl(),
            self.namespace,
            self.workloads
                .iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
        )
    }

    fn needs(&self, needs: &mut Needs<'_>) {
        for w in self.workloads {
            let kind = w.split_once('/').map(|(k, _)| k).unwrap_or("Deployment");
            needs.add(
                &["get", "patch"],
                "apps",
                workload_resource(kind),
                self.namespace,
            );
        }
    }

    fn state(&self) -> Option<&dyn KeepsState> {
        Some(self)
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
                let at = Timestamp::now().to_string();
                for w in self.workloads {
                    let t = actions::parse_workload(self.namespace, w)?;
                    actions::restart(client, &t, &at, true).await?;
                }
                return Ok(String::new());
            }
            let at = ex
                .record(step)
                .and_then(|r| r.restarted_at.clone())
                .unwrap_or_else(|| Timestamp::now().to_string());
            let targets = self
                .workloads
                .iter()
                .map(|w| actions::parse_workload(self.namespace, w))
                .collect::<Result<Vec<_>, _>>()?;
            for t in &targets {
                or_interrupt(ex.interrupt, async {
                    Ok(actions::restart(client, t, &at, false).await?)
                })
                .await?;
            }
            let timeout = ex.timeout(None);
            for t in &targets {
                ex.poll(client, &step.cluster, &Awaited::Rollout(t.clone()), timeout)
                    .await?;
            }
            Ok(format!("{} rolled out", targets.len()))
        }
        .boxed()
    }

    fn undo_now<'a>(&'a self, _: &'a kube::Client) -> Undoing<'a> {
        None
    }
}

impl KeepsState for RestartWorkloads<'_> {
    fn read_live<'a>(
        &'a self,
        _: &'a kube::Client,
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

    /// The restart's timestamp, so that a repeated restart (a resumed step) is a no-op.
    fn record_start(&self, record: &mut StepRecord, _: Option<ScaleFacts>, now: &str) {
        if record.restarted_at.is_none() {
            record.restarted_at = Some(now.to_string());
        }
    }
}
