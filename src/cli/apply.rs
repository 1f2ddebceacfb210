//! `kubectl meshup apply PLAN_FILE` (or `apply --to ...`): connect to the plan's clusters, observe them
//! afresh, and hand the plan to the executor (`crate::apply`) with the planner's fingerprint, the check
//! rules as the `check-passes` gate, and the terminal or plain step printer.
//!
//! Nothing changes before the person has seen it: every step is printed before it acts; without
//! `--yes` each step is confirmed on the terminal (and with no terminal nothing starts).

use std::path::PathBuf;
use std::sync::Arc;

use super::apply_ui::{PlainUi, TerminalUi};
use super::args::{ApplyArgs, GlobalArgs, OutputFormat};
use super::plan::{load_plan, make_plan, render};
use super::{Settings, clock, connection_options, load_compat};
use crate::apply::{
    ApplyError, ApplyOptions, ApplyOutcome, ApplyTarget, HealthCheck, PromptError, Staleness, Ui,
};
use crate::client::{ConnectedCluster, KubeconfigFiles, connect};
use crate::compat::CompatData;
use crate::error::{Error, Exit};
use crate::observe::{ObserveOptions, observe};
use crate::output::{write_stderr_line, write_stdout, write_to};
use crate::plan::{self, Fingerprint, UpgradePlan};
use crate::report::Severity;
use crate::text::escape_control;

pub async fn run(
    global: &GlobalArgs,
    args: &ApplyArgs,
    format: OutputFormat,
    settings: &Settings,
) -> Result<Exit, Error> {
    if global.all_contexts {
        return Err(Error::Usage(
            "apply acts on the clusters its plan was made for; drop --all-contexts".to_string(),
        ));
    }
    let compat = Arc::new(load_compat(global)?);
    let observe_opts = ObserveOptions {
        istio_namespace: global.istio_namespace.clone(),
    };
    let interactive = settings.interactive;

    let (plan, plan_file, targets, snapshot) = match &args.plan_file {
        Some(path) => {
            let plan = load_plan(path)?;
            let mut connection = connection_options(global);
            connection.contexts = plan_contexts(&plan, &global.context)?;
            let targets = connect(&connection).await?;
            let snapshot = observe(&targets, &observe_opts).await?;
            (plan, Some(path.clone()), targets, snapshot)
        }
        None => {
            let targets = connect(&connection_options(global)).await?;
            let snapshot = observe(&targets, &observe_opts).await?;
            let plan = make_plan(global, &args.request, &snapshot)?;
            if let Some(out) = &args.out {
                write_to(&plan::to_yaml(&plan), Some(out))?;
            }
            write_stdout(&render(&plan, format, settings))?;
            if plan.steps.is_empty() {
                return Ok(Exit::Ok);
            }
            (plan, args.out.clone(), targets, snapshot)
        }
    };

    let mut options = ApplyOptions::new(Staleness {
        fingerprint: plan::fingerprint,
        diff: fact_changes,
    });
    options.yes = args.yes;
    options.dry_run = args.dry_run;
    options.force_conflicts = args.force_conflicts;
    options.break_lock = args.break_lock;
    options.step_timeout = args.step_timeout;
    options.confirmed_manual = args.confirm_manual.iter().cloned().collect();
    options.allowed_chart_repos = args.allow_chart_repo.clone();
    if args.plan_file.is_none() {
        // `apply --to … --chart-repo MESH=URL`: the mirror was named on this command line.
        options
            .allowed_chart_repos
            .extend(args.request.chart_repo.iter().map(|(_, url)| url.clone()));
    }
    if let Some(every) = args.poll_interval {
        options.poll_interval = every;
    }
    options.plan_file = plan_file;
    // The files `connect` read, handed to every tool with the plan step's context.
    options.kubeconfig = KubeconfigFiles::resolve(global.kubeconfig.as_deref());
    options.health_check = Some(health_check(&targets, compat, observe_opts));

    let mut ui: Box<dyn Ui> = if interactive {
        Box::new(TerminalUi::new())
    } else {
        Box::new(PlainUi::new())
    };
    // `apply --to`: the plan was just shown; ask once for all of it (unless it has manual steps,
    // which are confirmed as they come).
    if args.plan_file.is_none()
        && !args.yes
        && !args.dry_run
        && !has_unconfirmed_manual_steps(&plan, &options)
    {
        if !ui.can_prompt() {
            return Err(ApplyError::NeedsConfirmation.into());
        }
        if !confirm_plan(ui.as_mut(), &plan)? {
            write_stderr_line("nothing was changed");
            return Ok(Exit::Declined);
        }
        options.yes = true;
    }

    write_stderr_line(&escape_control(&heading(&plan, &options)));
    let apply_target = targets.into_iter().fold(ApplyTarget::new(), |t, target| {
        t.with(target.context, target.client)
    });
    let outcome =
        crate::apply::apply(&apply_target, &plan, &snapshot, &options, ui.as_mut()).await?;
    write_stderr_line(&summary(&outcome));
    Ok(Exit::Ok)
}

/// The contexts to connect to: the plan's clusters. `--context`, when given, must name the same ones.
fn plan_contexts(plan: &UpgradePlan, given: &[String]) -> Result<Vec<String>, Error> {
    if given.is_empty() {
        return Ok(plan.clusters.clone());
    }
    let mut want = plan.clusters.clone();
    let mut got = given.to_vec();
    want.sort();
    got.sort();
    got.dedup();
    if want == got {
        Ok(plan.clusters.clone())
    } else {
        Err(Error::Usage(format!(
            "the plan was made for context(s) {}, but --context names {}; pass the plan's contexts or drop --context",
            plan.clusters.join(","),
            given.join(",")
        )))
    }
}

fn fact_changes(planned: &Fingerprint, now: &Fingerprint) -> Vec<String> {
    plan::fingerprint_diff(planned, now)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// `check-passes`: re-observe the cluster and run the check rules; the failing findings, if any.
fn health_check(
    targets: &[ConnectedCluster],
    compat: Arc<CompatData>,
    opts: ObserveOptions,
) -> HealthCheck {
    let targets: Vec<ConnectedCluster> = targets.to_vec();
    Arc::new(move |cluster: String| {
        let target = targets.iter().find(|t| t.context == cluster).cloned();
        let compat = compat.clone();
        let opts = opts.clone();
        Box::pin(async move {
            let target = target.ok_or_else(|| format!("no connection to cluster {cluster}"))?;
            let snapshot = observe(&[target], &opts).await.map_err(|e| e.to_string())?;
            let report = crate::check::check(&snapshot, &compat, &clock::today_utc());
            Ok(report
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Fail)
                .map(|f| format!("{} {}: {}", f.rule, f.subject, f.message))
                .collect())
        })
    })
}

fn has_unconfirmed_manual_steps(plan: &UpgradePlan, options: &ApplyOptions) -> bool {
    crate::apply::manual_step_ids(plan)
        .iter()
        .any(|id| !options.confirmed_manual.contains(id))
}

/// One question for a whole plan made by `apply --to`, through the [`Ui`] (on a terminal, its
/// stderr): `true` to apply it. Ctrl-C at the question ends with exit 130, nothing changed.
fn confirm_plan(ui: &mut dyn Ui, plan: &UpgradePlan) -> Result<bool, Error> {
    let question = format!(
        "apply these {} steps to {}?",
        plan.steps.len(),
        plan.clusters.join(", ")
    );
    match ui.confirm_plan(&question) {
        Ok(yes) => Ok(yes),
        Err(PromptError::Interrupted) => {
            write_stderr_line("");
            write_stderr_line("nothing was changed");
            Err(Error::Interrupted)
        }
        Err(PromptError::Io(source)) => Err(Error::Write {
            what: "the prompt".to_string(),
            source,
        }),
    }
}

fn heading(plan: &UpgradePlan, options: &ApplyOptions) -> String {
    let targets: Vec<String> = plan
        .targets
        .iter()
        .map(|t| format!("{} {}", t.mesh, t.version))
        .collect();
    let mode = if options.dry_run {
        " (dry run: nothing is changed)"
    } else {
        ""
    };
    let file = options
        .plan_file
        .as_ref()
        .map(|p: &PathBuf| format!(" from {}", p.display()))
        .unwrap_or_default();
    format!(
        "applying the plan{file} to {} on {}: {} steps{mode}",
        targets.join(", "),
        plan.clusters.join(", "),
        plan.steps.len()
    )
}

fn summary(outcome: &ApplyOutcome) -> String {
    if outcome.dry_run {
        return format!(
            "dry run done: {} steps shown, nothing was changed",
            outcome.steps
        );
    }
    if outcome.already_done > 0 {
        format!(
            "plan applied: {} steps ran now, {} were already done",
            outcome.ran, outcome.already_done
        )
    } else {
        format!("plan applied: {} steps", outcome.ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(clusters: &[&str]) -> UpgradePlan {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/istio-1.20-eks.yaml"
        ))
        .expect("example snapshot");
        let snapshot: crate::snapshot::ClusterSnapshot =
            serde_saphyr::from_str(&text).expect("snapshot");
        let request = plan::PlanRequest {
            targets: vec!["istio=1.24".parse().expect("target")],
            tool_version: "test".into(),
            ..plan::PlanRequest::default()
        };
        let mut p = plan::plan(&snapshot, &CompatData::embedded(), &request).expect("plan");
        p.clusters = clusters.iter().map(|c| c.to_string()).collect();
        p
    }

    #[test]
    fn the_plans_contexts_are_used_and_a_different_context_is_refused() {
        let p = plan_for(&["mgmt", "remote1"]);
        assert_eq!(plan_contexts(&p, &[]).expect("plan's"), ["mgmt", "remote1"]);
        let same = ["remote1".to_string(), "mgmt".to_string()];
        assert_eq!(
            plan_contexts(&p, &same).expect("same set"),
            ["mgmt", "remote1"]
        );
        let err = plan_contexts(&p, &["prod".to_string()]).expect_err("other context");
        assert_eq!(err.exit(), Exit::Usage);
        assert!(err.to_string().contains("mgmt,remote1"), "{err}");
    }

    /// A Ui whose whole-plan question is answered from a script; it records the questions.
    struct Scripted {
        answer: Option<Result<bool, PromptError>>,
        asked: Vec<String>,
    }

    impl Ui for Scripted {
        fn can_prompt(&self) -> bool {
            true
        }
        fn confirm(&mut self, _: &str, _: &[String]) -> Result<crate::apply::Answer, PromptError> {
            panic!("apply --to asks once for the whole plan, not step by step");
        }
        fn confirm_plan(&mut self, question: &str) -> Result<bool, PromptError> {
            self.asked.push(question.to_string());
            self.answer.take().expect("one question")
        }
        fn line(&mut self, _: &str) {}
        fn step_started(&mut self, _: usize, _: usize, _: &str) {}
        fn step_progress(&mut self, _: &str) {}
        fn step_finished(&mut self, _: crate::apply::StepEnd, _: &str) {}
        fn restore(&mut self) {}
    }

    #[test]
    fn apply_to_asks_once_for_the_whole_plan_through_the_ui() {
        let p = plan_for(&["mgmt", "remote1"]);
        let question = format!("apply these {} steps to mgmt, remote1?", p.steps.len());
        for (answer, expected) in [(true, true), (false, false)] {
            let mut ui = Scripted {
                answer: Some(Ok(answer)),
                asked: Vec::new(),
            };
            assert_eq!(confirm_plan(&mut ui, &p).expect("answered"), expected);
            assert_eq!(ui.asked, std::slice::from_ref(&question));
        }
        let mut ui = Scripted {
            answer: Some(Err(PromptError::Interrupted)),
            asked: Vec::new(),
        };
        let err = confirm_plan(&mut ui, &p).unwrap_err();
        assert!(matches!(err, Error::Interrupted), "{err}");
        assert_eq!(err.exit(), Exit::Interrupted);
        let mut ui = Scripted {
            answer: Some(Err(PromptError::Io(std::io::Error::other("no tty")))),
            asked: Vec::new(),
        };
        let err = confirm_plan(&mut ui, &p).unwrap_err();
        assert_eq!(err.to_string(), "cannot write the prompt: no tty");
        assert_eq!(err.exit(), Exit::Failed);
    }
}
