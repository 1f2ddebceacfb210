//! Undo after a failure or an abort: the steps done so far that have an undo, newest first
//! ([`Executor::undoable`]); on a terminal the user is asked and each kind that can undo itself does
//! ([`StepAction::undo_now`](super::action::StepAction::undo_now)); the rest, and everything with
//! `--yes`, is returned as the exact commands to run by hand.

use super::describe::{self, hint_target};
use super::executor::Executor;
use super::journal::{StepState, UndoRecord};
use super::ui::Answer;
use super::{action, actions};
use crate::plan::{Action, ReplicasBefore, Step};

impl Executor<'_> {
    /// The undo of each step done so far that has one, newest first: (step, action).
    pub(super) fn undoable(&self, upto: &Step) -> Vec<(Step, Action)> {
        let mut found = Vec::new();
        for step in &self.plan.steps {
            if step.id == upto.id {
                break;
            }
            if self.state(step) != StepState::Done {
                continue;
            }
            let recorded = self
                .journals
                .get(&step.cluster)
                .and_then(|b| b.journal.undo(&step.id));
            let undo = match recorded {
                Some(UndoRecord::Scale { target, replicas }) => Some(Action::Scale {
                    target: target.clone(),
                    replicas: *replicas,
                    // The undo of a recording scale-down also removes the recorded count.
                    replicas_before: match &step.action {
                        Action::Scale {
                            replicas_before: Some(ReplicasBefore::Record),
                            ..
                        } => Some(ReplicasBefore::Restore),
                        _ => None,
                    },
                }),
                None => step.undo.clone(),
            };
            if let Some(action) = undo {
                found.push((step.clone(), action));
            }
        }
        found.reverse();
        found
    }

    /// Offer to undo what was done before `failed`: on a terminal, ask and undo; with `--yes`, return
    /// the commands. Returns the commands still to run by hand.
    pub(super) async fn offer_undo(&mut self, failed: &Step) -> Vec<String> {
        let mut undoable = self.undoable(failed);
        if undoable.is_empty() {
            return Vec::new();
        }
        // A restoring undo takes the same sources as a restoring step: the journal, the object's
        // annotation, the plan.
        for (step, action) in &mut undoable {
            if let Action::Scale {
                target,
                replicas,
                replicas_before: Some(ReplicasBefore::Restore),
            } = action
            {
                let journal = self
                    .journals
                    .get(&step.cluster)
                    .and_then(|b| b.journal.replicas_before(self.plan, target));
                let annotated = match self.target.client(&step.cluster) {
                    Ok(client) => actions::recorded_replicas(client, target)
                        .await
                        .ok()
                        .flatten(),
                    Err(_) => None,
                };
                *replicas = actions::restore_count(journal, annotated, *replicas).0;
            }
        }
        let commands: Vec<String> = undoable
            .iter()
            .map(|(s, a)| describe::command(hint_target(self.options, &s.cluster), a))
            .collect();
        if self.options.yes || !self.ui.can_prompt() {
            return commands;
        }
        let details: Vec<String> = undoable
            .iter()
            .map(|(s, a)| format!("{}: {}", s.id, describe::action(a, None)))
            .collect();
        let answer = self.ui.confirm(
            &format!("undo the {} step(s) above, newest first?", undoable.len()),
            &details,
        );
        if answer.ok() != Some(Answer::Yes) {
            return commands;
        }
        let mut left = Vec::new();
        for ((step, action), command) in undoable.into_iter().zip(commands) {
            let Ok(client) = self.client(&step.cluster) else {
                left.push(command);
                continue;
            };
            let kind = action::of(&action);
            let Some(undoing) = kind.undo_now(&client) else {
                left.push(command);
                continue;
            };
            let undone = undoing.await;
            match undone {
                Ok(()) => {
                    self.ui.line(&format!(
                        "undone {}: {}",
                        step.id,
                        describe::action(&action, None)
                    ));
                    if let Some(record) = self.record(&step) {
                        record.state = StepState::Undone;
                    }
                    let _ = self.save(&step.cluster).await;
                }
                Err(e) => {
                    self.ui.line(&format!("could not undo {}: {e}", step.id));
                    left.push(command);
                }
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::apply::executor::tests::{ScriptedUi, options};
    use crate::apply::interrupt::Interrupt;
    use crate::apply::journal::{Journal, JournalStore};
    use crate::apply::preflight::ClusterJournal;
    use crate::apply::test_plans::{plan_with, step, unreachable_client};
    use crate::apply::{ApplyTarget, Ui};
    use crate::plan::{Gate, ObjectRef};

    fn discovery() -> ObjectRef {
        ObjectRef {
            kind: "Deployment".into(),
            namespace: "gloo-mesh".into(),
            name: "discovery".into(),
        }
    }

    #[tokio::test]
    async fn the_steps_done_are_undone_newest_first_and_with_yes_only_named() {
        let label = |value: &str| Action::LabelNamespace {
            namespace: "bookinfo".into(),
            labels: BTreeMap::from([("istio.io/rev".to_string(), Some(value.to_string()))]),
        };
        let mut relabel = step("relabel", "mgmt", label("1-24"));
        relabel.undo = Some(label("1-23"));
        let plan = plan_with(
            &["mgmt"],
            vec![
                step(
                    "scale-down",
                    "mgmt",
                    Action::Scale {
                        target: discovery(),
                        replicas: 0,
                        replicas_before: Some(ReplicasBefore::Record),
                    },
                ),
                relabel,
                step(
                    "not-done",
                    "mgmt",
                    Action::Gate {
                        gate: Gate::CheckPasses,
                    },
                ),
                step(
                    "failed",
                    "mgmt",
                    Action::Gate {
                        gate: Gate::CheckPasses,
                    },
                ),
            ],
        );
        let client = unreachable_client();
        let mut journal = Journal::new(&plan, "mgmt", "t0".into());
        let scaled = journal.record_mut("scale-down");
        scaled.state = StepState::Done;
        scaled.undo = Some(UndoRecord::Scale {
            target: discovery(),
            replicas: 2,
        });
        journal.record_mut("relabel").state = StepState::Done;
        let journals = BTreeMap::from([(
            "mgmt".to_string(),
            ClusterJournal {
                store: JournalStore::new(client.clone(), "meshup"),
                journal,
            },
        )]);
        let target = ApplyTarget::new().with("mgmt", client);
        let mut options = options();
        options.yes = true;
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let mut interrupt = Interrupt::new(Some(rx));
        let mut ui = ScriptedUi::default();
        let mut executor = Executor {
            target: &target,
            plan: &plan,
            options: &options,
            ui: &mut ui as &mut dyn Ui,
            interrupt: &mut interrupt,
            journals,
            servers: BTreeMap::new(),
            tools: BTreeMap::new(),
        };
        let failed = plan.steps[3].clone();
        let undoable: Vec<(String, Action)> = executor
            .undoable(&failed)
            .into_iter()
            .map(|(s, a)| (s.id, a))
            .collect();
        assert_eq!(
            undoable,
            [
                ("relabel".to_string(), label("1-23")),
                (
                    "scale-down".to_string(),
                    Action::Scale {
                        target: discovery(),
                        replicas: 2,
                        replicas_before: Some(ReplicasBefore::Restore),
                    }
                ),
            ]
        );
        // With --yes nothing is undone on its own: the commands come back (the restoring scale's
        // count read from the journal; the annotation cannot be read from this cluster).
        let commands = executor.offer_undo(&failed).await;
        assert_eq!(
            commands,
            [
                "kubectl --context mgmt label namespace bookinfo --overwrite istio.io/rev=1-23",
                "kubectl --context mgmt -n gloo-mesh scale deployment/discovery --replicas=2 && kubectl --context mgmt -n gloo-mesh annotate deployment/discovery meshup.dev/replicas-before-",
            ]
        );
        assert!(ui.lines.is_empty(), "{:?}", ui.lines);
    }
}
