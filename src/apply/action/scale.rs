//! `scale`: replicas through the `/scale` subresource; a scale-down that records its count on the
//! object, and the scale-up that restores it (journal, else annotation, else plan).

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{KeepsState, Mode, Resolved, Running, StepAction, StepRun, Undoing};
use crate::apply::actions::{self, ActionError};
use crate::apply::describe::HintTarget;
use crate::apply::interrupt::or_interrupt;
use crate::apply::journal::{Journal, StepRecord, UndoRecord};
use crate::apply::permissions::Needs;
use crate::plan::action::Scale;
use crate::plan::{Action, ReplicasBefore, Tool, UpgradePlan};
use crate::snapshot::REPLICAS_BEFORE_ANNOTATION;

/// What a scale step found before acting: the live replicas, and the count the object's
/// `meshup.dev/replicas-before` annotation recorded (read only for scales that keep their count).
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::apply) struct ScaleFacts {
    pub live: u32,
    pub annotated: Option<u32>,
}

impl StepAction for Scale<'_> {
    fn changes_cluster(&self) -> bool {
        true
    }

    fn tool(&self) -> Option<Tool> {
        None
    }

    fn hand_command(&self, at: HintTarget<'_>) -> String {
        let kubectl = at.kubectl();
        let target = self.target;
        let replicas = self.replicas;
        let object = format!("{}/{}", target.kind.to_lowercase(), target.name);
        let ns = &target.namespace;
        let scale = format!("{kubectl} -n {ns} scale {object} --replicas={replicas}");
        match self.replicas_before {
            Some(ReplicasBefore::Restore) => format!(
                "{scale} && {kubectl} -n {ns} annotate {object} {REPLICAS_BEFORE_ANNOTATION}-"
            ),
            Some(ReplicasBefore::Record) => format!(
                "{kubectl} -n {ns} annotate {object} {REPLICAS_BEFORE_ANNOTATION}=<current replicas> && {scale}"
            ),
            None => scale,
        }
    }

    fn needs(&self, needs: &mut Needs<'_>) {
        needs.workload(&["get", "patch"], self.target, "scale");
        if self.replicas_before.is_some() {
            // The meshup.dev/replicas-before annotation on the object itself.
            needs.workload(&["get", "patch"], self.target, "");
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
                live,
                mode,
                ..
            } = run;
            let target = self.target;
            let replicas = self.replicas;
            if mode == Mode::Dry {
                actions::scale(client, target, replicas, true).await?;
                return Ok(String::new());
            }
            let dry_run = false;
            let facts = live.unwrap_or_default();
            or_interrupt(ex.interrupt, async {
                match self.replicas_before {
                    Some(ReplicasBefore::Record) => {
                        // The count goes on the object before the scale, so a lost journal still
                        // knows it; an earlier scale-down's count is kept.
                        let before = actions::count_before(facts.annotated, facts.live);
                        if facts.annotated != Some(before) && before > 0 {
                            actions::record_replicas(client, target, Some(before), dry_run).await?;
                        }
                        actions::scale(client, target, replicas, dry_run).await?;
                    }
                    Some(ReplicasBefore::Restore) => {
                        actions::scale(client, target, replicas, dry_run).await?;
                        if facts.annotated.is_some() {
                            actions::record_replicas(client, target, None, dry_run).await?;
                        }
                    }
                    None => actions::scale(client, target, replicas, dry_run).await?,
                }
                Ok(())
            })
            .await?;
            Ok(String::new())
        }
        .boxed()
    }

    /// Scale back; an undo that restores a recorded count also removes the annotation.
    fn undo_now<'a>(&'a self, client: &'a kube::Client) -> Undoing<'a> {
        Some(
            async move {
                actions::scale(client, self.target, self.replicas, false).await?;
                if self.replicas_before.is_some() {
                    actions::record_replicas(client, self.target, None, false).await?;
                }
                Ok(())
            }
            .boxed(),
        )
    }
}

impl KeepsState for Scale<'_> {
    fn read_live<'a>(
        &'a self,
        client: &'a kube::Client,
    ) -> Option<BoxFuture<'a, Result<ScaleFacts, ActionError>>> {
        Some(
            async move {
                let live = actions::current_replicas(client, self.target).await?;
                let annotated = match self.replicas_before {
                    Some(_) => actions::recorded_replicas(client, self.target).await?,
                    None => None,
                };
                Ok(ScaleFacts { live, annotated })
            }
            .boxed(),
        )
    }

    /// A restoring scale-up goes to the count the journal recorded, else the object's annotation,
    /// else the plan's, and says which; a recording scale-down says what it recorded.
    fn resolve(
        &self,
        live: Option<ScaleFacts>,
        journal: Option<&Journal>,
        plan: &UpgradePlan,
    ) -> Option<Resolved> {
        match self.replicas_before {
            Some(ReplicasBefore::Restore) => {
                let recorded = journal.and_then(|j| j.replicas_before(plan, self.target));
                let annotated = live.and_then(|f| f.annotated);
                let (count, from) = actions::restore_count(recorded, annotated, self.replicas);
                Some(Resolved {
                    action: Action::Scale {
                        target: self.target.clone(),
                        replicas: count,
                        replicas_before: Some(ReplicasBefore::Restore),
                    },
                    done_note: Some(format!("{count} restored from {}", from.as_str())),
                })
            }
            Some(ReplicasBefore::Record) => {
                let facts = live?;
                let before = actions::count_before(facts.annotated, facts.live);
                Some(Resolved {
                    action: Action::Scale {
                        target: self.target.clone(),
                        replicas: self.replicas,
                        replicas_before: Some(ReplicasBefore::Record),
                    },
                    done_note: Some(format!(
                        "{before} recorded in the journal and {REPLICAS_BEFORE_ANNOTATION}"
                    )),
                })
            }
            None => None,
        }
    }

    /// The replicas before the change, so that the step can be undone; a first attempt's are kept.
    fn record_start(&self, record: &mut StepRecord, live: Option<ScaleFacts>, _now: &str) {
        let Some(facts) = live else {
            return;
        };
        if record.undo.is_some() {
            return;
        }
        let before = match self.replicas_before {
            Some(ReplicasBefore::Record) => actions::count_before(facts.annotated, facts.live),
            _ => facts.live,
        };
        record.undo = Some(UndoRecord::Scale {
            target: self.target.clone(),
            replicas: before,
        });
    }
}
