//! The executor: each step in plan order — describe it, ask, record it `in-progress` with its undo
//! values, let its action kind act ([`StepAction::run`](super::action::StepAction::run), real or
//! dry), record it `done`; and the shared means the kinds use: polling a wait or gate, a manual step's
//! confirmation, the journal.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::awaited::{Awaited, evaluate};
use super::describe::{self, HintTarget, hint_target, resume_command};
use super::error::{ApplyError, StepError, StepFailure};
use super::interrupt::{Interrupt, or_interrupt};
use super::journal::{self, StepState};
use super::preflight::ClusterJournal;
use super::tool_steps::Located;
use super::ui::{Answer, PromptError, StepEnd, Ui};
use super::wait::Progress;
use super::{ApplyOptions, ApplyOutcome, ApplyTarget, action, timing};
use crate::plan::{Step, UpgradePlan};

pub(super) struct Executor<'a> {
    pub(super) target: &'a ApplyTarget,
    pub(super) plan: &'a UpgradePlan,
    pub(super) options: &'a ApplyOptions,
    pub(super) ui: &'a mut dyn Ui,
    pub(super) interrupt: &'a mut Interrupt,
    /// Per cluster; empty in a dry run.
    pub(super) journals: BTreeMap<String, ClusterJournal>,
    /// The API server each cluster must still name when a tool runs ([`expected_servers`]).
    pub(super) servers: BTreeMap<String, Option<String>>,
    /// Each tool as found once for this apply, by program name.
    pub(super) tools: BTreeMap<&'static str, Located>,
}

impl Executor<'_> {
    pub(super) fn dry(&self) -> bool {
        self.options.dry_run
    }

    /// Where hints for `cluster` point: its context, and `--kubeconfig` when apply was given one.
    pub(super) fn hint<'c>(&'c self, cluster: &'c str) -> HintTarget<'c> {
        hint_target(self.options, cluster)
    }

    pub(super) fn client(&self, cluster: &str) -> Result<kube::Client, StepError> {
        self.target
            .client(cluster)
            .cloned()
            .map_err(StepError::from)
    }

    pub(super) fn timeout(&self, planned_seconds: Option<u64>) -> Duration {
        timing::step_timeout(
            self.options.step_timeout,
            planned_seconds,
            self.options.gate_timeout,
        )
    }

    pub(super) fn state(&self, step: &Step) -> StepState {
        self.journals
            .get(&step.cluster)
            .map(|b| b.journal.state(&step.id))
            .unwrap_or(StepState::Pending)
    }

    pub(super) async fn save(&mut self, cluster: &str) -> Result<(), ApplyError> {
        if let Some(book) = self.journals.get_mut(cluster) {
            book.store
                .save(&book.journal)
                .await
                .map_err(|source| ApplyError::Journal {
                    cluster: cluster.to_string(),
                    source,
                })?;
        }
        Ok(())
    }

    pub(super) fn record(&mut self, step: &Step) -> Option<&mut journal::StepRecord> {
        self.journals
            .get_mut(&step.cluster)
            .map(|b| b.journal.record_mut(&step.id))
    }

    pub(super) async fn run_steps(&mut self) -> Result<ApplyOutcome, ApplyError> {
        let plan = self.plan;
        let total = plan.steps.len();
        let mut outcome = ApplyOutcome {
            steps: total,
            ran: 0,
            already_done: 0,
            dry_run: self.dry(),
        };
        let multi_cluster = self.target.clients.len() > 1 || plan.clusters.len() > 1;
        for (i, step) in plan.steps.iter().enumerate() {
            let index = i + 1;
            let state = self.state(step);
            let mut description = describe::action(&step.action, None);
            if multi_cluster {
                description = format!("[{}] {description}", step.cluster);
            }
            if state == StepState::Done {
                self.ui.step_started(index, total, &description);
                self.ui.step_finished(StepEnd::AlreadyDone, "");
                outcome.already_done += 1;
                continue;
            }
            if self.interrupt.is_set() {
                return Err(self.interrupted(None));
            }
            match self
                .run_step(index, total, step, state, multi_cluster)
                .await
            {
                Ok(()) => outcome.ran += 1,
                Err(StepError::Interrupted) => {
                    self.ui.step_finished(StepEnd::Interrupted, "");
                    return Err(self.interrupted(Some(step.id.clone())));
                }
                Err(StepError::Declined) => {
                    self.ui.step_finished(StepEnd::Declined, "");
                    return Err(ApplyError::Declined {
                        step: step.id.clone(),
                        resume: resume_command(self.options),
                    });
                }
                Err(StepError::Failed(failure)) => {
                    let reason = failure.to_string();
                    self.ui.step_finished(StepEnd::Failed, &reason);
                    return Err(self.fail(step, reason).await);
                }
                Err(StepError::Refused(error)) => {
                    self.ui
                        .step_finished(StepEnd::Failed, "refused before the tool ran");
                    return Err(*error);
                }
            }
        }
        if !self.dry() {
            let clusters: Vec<String> = self.journals.keys().cloned().collect();
            for c in clusters {
                if let Some(book) = self.journals.get_mut(&c) {
                    book.journal.finished_at = Some(Timestamp::now().to_string());
                }
                self.save(&c).await?;
            }
        }
        Ok(outcome)
    }

    fn interrupted(&self, step: Option<String>) -> ApplyError {
        ApplyError::Interrupted {
            step,
            resume: resume_command(self.options),
        }
    }

    /// One step not yet done: describe, ask, record in-progress, act (wait, gate), record done.
    async fn run_step(
        &mut self,
        index: usize,
        total: usize,
        step: &Step,
        state: StepState,
        multi_cluster: bool,
    ) -> Result<(), StepError> {
        let client = self.client(&step.cluster)?;
        let kind = action::of(&step.action);
        // Live facts for the description: the replicas a scale starts from (and, for a scale that
        // keeps its count, what the object's annotation recorded).
        let kept = kind.state();
        let live = match kept.and_then(|s| s.read_live(&client)) {
            Some(reading) => {
                Some(or_interrupt(self.interrupt, async { Ok(reading.await?) }).await?)
            }
            None => None,
        };
        let journal = self.journals.get(&step.cluster).map(|b| &b.journal);
        let resolved = kept.and_then(|s| s.resolve(live, journal, self.plan));
        let (action, done_note) = match resolved {
            Some(r) => (r.action, r.done_note),
            None => (step.action.clone(), None),
        };
        let mut description = describe::action(&action, live.map(|f| f.live));
        if multi_cluster {
            description = format!("[{}] {description}", step.cluster);
        }
        let tool = match kind.tool() {
            Some(tool) if !self.dry() => match self.locate(&step.cluster, tool).await {
                Ok(located) => Some(located),
                Err(e) => {
                    // The step line first, so that its end (refused, interrupted) has a step to end.
                    self.ui.step_started(index, total, &description);
                    return Err(e);
                }
            },
            _ => None,
        };
        if let Some(Located::Found(found)) = &tool {
            description = format!("{description} (using {})", found.describe());
        }

        if kind.changes_cluster() && !self.options.yes && !self.dry() {
            self.confirm_step(index, total, step, state, &description)
                .await?;
        } else if step.irreversible && !self.dry() {
            self.ui.line(&format!(
                "note: step {} is irreversible ({})",
                step.id, step.title
            ));
        }

        self.ui.step_started(index, total, &description);
        if self.dry() {
            kind.run(action::StepRun {
                ex: self,
                client: &client,
                step,
                live,
                mode: action::Mode::Dry,
            })
            .await?;
            self.ui.step_finished(StepEnd::DryRun, "");
            return Ok(());
        }

        // Record in-progress, with undo values, before changing anything.
        let now = Timestamp::now().to_string();
        if let Some(record) = self.record(step) {
            record.state = StepState::InProgress;
            record.attempts += 1;
            record.started_at = Some(now.clone());
            record.finished_at = None;
            record.error = None;
            if let Some(kept) = kept {
                kept.record_start(record, live, &now);
            }
            if let Some(Located::Found(found)) = &tool {
                record.tool = Some(found.record());
            }
        }
        self.save(&step.cluster).await.map_err(StepError::from)?;

        let mut note = action::of(&action)
            .run(action::StepRun {
                ex: self,
                client: &client,
                step,
                live,
                mode: action::Mode::Real,
            })
            .await?;
        if let Some(done_note) = done_note {
            note = done_note;
        }

        if let Some(record) = self.record(step) {
            record.state = StepState::Done;
            record.finished_at = Some(Timestamp::now().to_string());
        }
        self.save(&step.cluster).await.map_err(StepError::from)?;
        self.ui.step_finished(StepEnd::Done, &note);
        Ok(())
    }

    /// Ask whether to run a step that changes the cluster (`[3/10] run this step?`); an irreversible
    /// one only on the typed word `yes`. An abort offers the undo of what was done.
    async fn confirm_step(
        &mut self,
        index: usize,
        total: usize,
        step: &Step,
        state: StepState,
        description: &str,
    ) -> Result<(), StepError> {
        let mut details = vec![
            format!("step {}: {}", step.id, step.title),
            format!("why: {}", step.reason.text),
            format!("does: {description}"),
        ];
        // What the step hands its tool (values, an IstioOperator), as the plan shows it.
        details.extend(crate::plan::carried_config(&step.action));
        if step.irreversible {
            details.push("irreversible: this step cannot be rolled back".to_string());
        }
        if state == StepState::InProgress {
            details.push(
                "an earlier run started this step and did not finish it; it is run again"
                    .to_string(),
            );
        }
        let question = format!("[{index}/{total}] run this step?");
        let answer = if step.irreversible {
            self.ui.confirm_irreversible(&question, &details)
        } else {
            self.ui.confirm(&question, &details)
        };
        match answer {
            Ok(Answer::Yes) => Ok(()),
            Ok(Answer::No) => Err(StepError::Declined),
            Ok(Answer::Abort) => {
                for command in self.offer_undo(step).await {
                    self.ui.line(&format!("to undo: {command}"));
                }
                Err(StepError::Declined)
            }
            Err(PromptError::Interrupted) => Err(StepError::Interrupted),
            Err(PromptError::Io(e)) => Err(StepFailure::Prompt(e).into()),
        }
    }

    /// A step a person must do: show it and wait for their confirmation. With `--yes` there is no one
    /// to confirm, so the step fails with the instructions.
    pub(super) fn manual(
        &mut self,
        step: &Step,
        instructions: &str,
        command: Option<&str>,
    ) -> Result<(), StepError> {
        let mut details = vec![format!("step {}: {instructions}", step.id)];
        if let Some(c) = command {
            details.push(format!("command: {c}"));
        }
        if self.options.yes || !self.ui.can_prompt() {
            return Err(StepError::unmet(format!(
                "a manual step needs a person: {}; do it, then run `{}` on a terminal and confirm it",
                details.join("; "),
                resume_command(self.options)
            )));
        }
        details.push("do this now (in another terminal); answer yes once it is done".to_string());
        match self.ui.confirm("has it been done?", &details) {
            Ok(Answer::Yes) => Ok(()),
            Ok(_) => Err(StepError::Declined),
            Err(PromptError::Interrupted) => Err(StepError::Interrupted),
            Err(PromptError::Io(e)) => Err(StepFailure::Prompt(e).into()),
        }
    }

    /// Poll `awaited` until it is met (with the reading's note, if it left something aside), fails, or
    /// `timeout` passes. Read errors are retried until the timeout (a flaky API server is not a
    /// failed step); the last one is reported.
    pub(super) async fn poll(
        &mut self,
        client: &kube::Client,
        cluster: &str,
        awaited: &Awaited,
        timeout: Duration,
    ) -> Result<Option<String>, StepError> {
        let deadline = timing::deadline(tokio::time::Instant::now(), timeout);
        let mut last = String::from("not checked yet");
        // Since when only a person can change what is awaited.
        let mut needs_person_since: Option<tokio::time::Instant> = None;
        loop {
            let health = self.options.health_check.clone();
            let reading = or_interrupt(self.interrupt, async {
                Ok(evaluate(client, cluster, awaited, health).await)
            })
            .await?;
            match reading {
                Ok(Progress::Met) => return Ok(None),
                Ok(Progress::MetWithNote(note)) => return Ok(Some(note)),
                Ok(Progress::Failed(why)) => return Err(StepError::unmet(why)),
                Ok(Progress::Waiting(why)) => {
                    needs_person_since = None;
                    if why != last {
                        self.ui.step_progress(&why);
                    }
                    last = why;
                }
                Ok(Progress::NeedsPerson(why)) => {
                    let since = *needs_person_since.get_or_insert_with(tokio::time::Instant::now);
                    let grace = timing::grace(
                        self.options.poll_interval,
                        self.options.hand_work_polls,
                        timeout,
                    );
                    if since.elapsed() >= grace {
                        return Err(StepError::unmet(format!(
                            "{why}; then resume with `{}`",
                            resume_command(self.options)
                        )));
                    }
                    if why != last {
                        self.ui.step_progress(&why);
                    }
                    last = why;
                }
                Err(e) => {
                    let why = format!("reading the cluster failed, retrying: {e}");
                    self.ui.step_progress(&why);
                    last = why;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StepError::unmet(format!(
                    "not met within {}s: {last}",
                    timeout.as_secs()
                )));
            }
            let pause = self.options.poll_interval;
            or_interrupt(self.interrupt, async {
                tokio::time::sleep(pause).await;
                Ok(())
            })
            .await?;
        }
    }

    /// Record the failure, offer the undo, and build the error.
    pub(super) async fn fail(&mut self, step: &Step, reason: String) -> ApplyError {
        if let Some(record) = self.record(step) {
            record.state = StepState::Failed;
            record.error = Some(reason.clone());
            record.finished_at = Some(Timestamp::now().to_string());
        }
        let saved = self.save(&step.cluster).await;
        let undo = if self.dry() {
            Vec::new()
        } else {
            self.offer_undo(step).await
        };
        let reason = match saved {
            Ok(()) => reason,
            Err(e) => format!("{reason} (and the journal could not record it: {e})"),
        };
        ApplyError::StepFailed {
            step: step.id.clone(),
            reason,
            undo,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::apply::test_plans::{manual, plan_with, step, unreachable_client};
    use crate::apply::{ApplyError, Staleness};
    use crate::plan::{Action, Fingerprint, Gate, Tool, WaitCondition};
    use crate::version::Version;

    /// A Ui that answers from a script and keeps every line it was shown.
    #[derive(Default)]
    pub(in crate::apply) struct ScriptedUi {
        pub answers: VecDeque<Answer>,
        pub prompts: bool,
        pub lines: Vec<String>,
        /// The lines shown above each question.
        pub details: Vec<String>,
    }

    impl Ui for ScriptedUi {
        fn can_prompt(&self) -> bool {
            self.prompts
        }
        fn confirm(&mut self, question: &str, details: &[String]) -> Result<Answer, PromptError> {
            self.lines.push(format!("? {question}"));
            self.details.extend(details.iter().cloned());
            self.answers
                .pop_front()
                .ok_or_else(|| PromptError::Io(std::io::Error::other("no more answers")))
        }
        fn line(&mut self, text: &str) {
            self.lines.push(text.to_string());
        }
        fn step_started(&mut self, index: usize, total: usize, description: &str) {
            self.lines.push(format!("[{index}/{total}] {description}"));
        }
        fn step_progress(&mut self, message: &str) {
            self.lines.push(format!("    {message}"));
        }
        fn step_finished(&mut self, end: StepEnd, note: &str) {
            self.lines.push(format!("-> {end:?} {note}"));
        }
        fn restore(&mut self) {}
    }

    pub(in crate::apply) fn options() -> ApplyOptions {
        let mut options = ApplyOptions::new(Staleness {
            fingerprint: |_, _| Fingerprint {
                algorithm: "none".into(),
                value: String::new(),
                facts: BTreeMap::new(),
            },
            diff: |_, _| Vec::new(),
        });
        options.plan_file = Some("plan.yaml".into());
        options.kubeconfig = crate::client::KubeconfigFiles {
            files: vec!["/nowhere/config".into()],
            source: crate::client::KubeconfigSource::Env,
        };
        options
    }

    /// Run `plan`'s steps on a cluster nothing answers (so any request fails the step), without the
    /// preflight and without journals.
    async fn run(
        plan: &UpgradePlan,
        options: &ApplyOptions,
        ui: &mut ScriptedUi,
    ) -> Result<ApplyOutcome, ApplyError> {
        let target = ApplyTarget::new().with("mgmt", unreachable_client());
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let mut interrupt = Interrupt::new(Some(rx));
        let mut executor = Executor {
            target: &target,
            plan,
            options,
            ui,
            interrupt: &mut interrupt,
            journals: BTreeMap::new(),
            servers: BTreeMap::new(),
            tools: BTreeMap::new(),
        };
        executor.run_steps().await
    }

    #[tokio::test]
    async fn a_dry_run_shows_tools_skips_waits_and_gates_and_touches_no_cluster() {
        let plan = plan_with(
            &["mgmt"],
            vec![
                step(
                    "run",
                    "mgmt",
                    Action::Run {
                        tool: Tool::Helm,
                        args: vec!["upgrade".into(), "gloo".into()],
                        timeout_seconds: 60,
                        config: None,
                    },
                ),
                step(
                    "wait",
                    "mgmt",
                    Action::Wait {
                        condition: WaitCondition::ResourcesPresent {
                            group: "g".into(),
                            version: None,
                            resources: vec!["meshes".into()],
                        },
                        timeout_seconds: 5,
                    },
                ),
                step(
                    "tool",
                    "mgmt",
                    Action::Gate {
                        gate: Gate::ToolVersion {
                            tool: Tool::Istioctl,
                            version: Version::new(1, 24, 0),
                        },
                    },
                ),
                manual("by-hand", "mgmt"),
            ],
        );
        let mut options = options();
        options.dry_run = true;
        let mut ui = ScriptedUi::default();
        let outcome = run(&plan, &options, &mut ui).await.expect("a dry run");
        assert_eq!(
            outcome,
            ApplyOutcome {
                steps: 4,
                ran: 4,
                already_done: 0,
                dry_run: true
            }
        );
        assert_eq!(
            ui.lines,
            [
                "[1/4] run helm upgrade gloo",
                "    would run: helm upgrade gloo --kube-context mgmt",
                "-> DryRun ",
                "[2/4] wait until meshes of g exist again (up to 5s)",
                "    skipped: nothing was changed to wait for",
                "-> DryRun ",
                "[3/4] gate: `istioctl version --remote=false` reports 1.24.0",
                "    would check that `istioctl version --remote=false --context mgmt` prints 1.24.0",
                "-> DryRun ",
                "[4/4] manual: do by-hand",
                "    manual: do by-hand",
                "-> DryRun ",
            ]
        );
    }

    #[tokio::test]
    async fn a_manual_step_is_asked_then_confirmed_and_one_confirmed_ahead_is_not_asked() {
        let plan = plan_with(
            &["mgmt"],
            vec![manual("first", "mgmt"), manual("second", "mgmt")],
        );
        let mut options = options();
        options.confirmed_manual.insert("second".into());
        let mut ui = ScriptedUi {
            prompts: true,
            answers: [Answer::Yes, Answer::Yes, Answer::Yes].into(),
            ..ScriptedUi::default()
        };
        let outcome = run(&plan, &options, &mut ui).await.expect("confirmed");
        assert_eq!(outcome.ran, 2);
        assert_eq!(
            ui.lines,
            [
                "? [1/2] run this step?",
                "[1/2] manual: do first",
                "? has it been done?",
                "-> Done confirmed",
                "? [2/2] run this step?",
                "[2/2] manual: do second",
                "    confirmed done ahead with --confirm-manual second: do second",
                "-> Done confirmed by --confirm-manual",
            ]
        );
    }

    /// A helm upgrade that hands the tool the release's own values.
    fn carrying_values() -> Step {
        step(
            "istiod",
            "mgmt",
            Action::Run {
                tool: Tool::Helm,
                args: vec!["upgrade".into(), "istiod".into(), "istiod".into()],
                timeout_seconds: 5,
                config: Some(crate::plan::CarriedConfig {
                    kind: crate::plan::ConfigKind::HelmValues,
                    source: "Helm release istio-system/istiod (revision 3)".into(),
                    document: serde_json::json!({"meshConfig": {"accessLogFile": "/dev/stdout"}}),
                }),
            },
        )
    }

    #[tokio::test]
    async fn the_question_for_a_step_shows_the_values_it_hands_its_tool() {
        let plan = plan_with(&["mgmt"], vec![carrying_values()]);
        let mut options = options();
        // No helm: the step is asked about all the same (its run would fail later).
        options.tool_path = Some(std::ffi::OsString::new());
        let mut ui = ScriptedUi {
            prompts: true,
            answers: [Answer::No].into(),
            ..ScriptedUi::default()
        };
        let err = run(&plan, &options, &mut ui).await.unwrap_err();
        assert!(matches!(&err, ApplyError::Declined { .. }), "{err}");
        assert_eq!(
            ui.details,
            [
                "step istiod: title of istiod",
                "why: r",
                "does: run helm upgrade istiod istiod --values FILE",
                "FILE (Helm values): Helm release istio-system/istiod (revision 3)",
                "  meshConfig:",
                "    accessLogFile: /dev/stdout",
            ]
        );
    }

    #[tokio::test]
    async fn a_dry_run_shows_the_file_a_step_would_hand_its_tool() {
        let plan = plan_with(&["mgmt"], vec![carrying_values()]);
        let mut options = options();
        options.dry_run = true;
        let mut ui = ScriptedUi::default();
        run(&plan, &options, &mut ui).await.expect("a dry run");
        assert_eq!(
            ui.lines,
            [
                "[1/1] run helm upgrade istiod istiod --values FILE",
                "    would run: helm upgrade istiod istiod --kube-context mgmt --values FILE",
                "    FILE (Helm values): Helm release istio-system/istiod (revision 3)",
                "      meshConfig:",
                "        accessLogFile: /dev/stdout",
                "-> DryRun ",
            ]
        );
    }

    #[tokio::test]
    async fn declining_a_step_stops_the_run_with_the_resume_command() {
        let plan = plan_with(&["mgmt"], vec![manual("first", "mgmt")]);
        let mut ui = ScriptedUi {
            prompts: true,
            answers: [Answer::No].into(),
            ..ScriptedUi::default()
        };
        let err = run(&plan, &options(), &mut ui).await.unwrap_err();
        assert!(
            matches!(&err, ApplyError::Declined { step, resume }
                if step == "first" && resume == "kubectl meshup apply plan.yaml"),
            "{err}"
        );
        assert_eq!(ui.lines, ["? [1/1] run this step?", "-> Declined "]);
    }

    #[tokio::test]
    async fn a_step_the_cluster_does_not_answer_fails_with_the_cause() {
        let plan = plan_with(
            &["mgmt"],
            vec![step(
                "label",
                "mgmt",
                Action::LabelNamespace {
                    namespace: "bookinfo".into(),
                    labels: BTreeMap::from([("a".to_string(), Some("b".to_string()))]),
                },
            )],
        );
        let mut options = options();
        options.yes = true;
        let mut ui = ScriptedUi::default();
        let err = run(&plan, &options, &mut ui).await.unwrap_err();
        let ApplyError::StepFailed { step, reason, undo } = &err else {
            panic!("a failed step: {err}");
        };
        assert_eq!(step, "label");
        assert!(reason.starts_with("label namespace bookinfo: "), "{reason}");
        assert!(undo.is_empty());
    }
}
