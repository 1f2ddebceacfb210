//! How each plan action runs. Each kind of [`Action`] is one type of the pure core's
//! (`plan::action`: a borrowed view of the action, which also answers the core's questions: its
//! description, chart repository and scope rule), and here one `impl StepAction` for it answers
//! everything apply asks — whether it changes the cluster, the tool it runs, the command a person
//! types to do it by hand, the permissions it needs, the live facts it reads first, what it records
//! before it acts, how it runs (for real or as a `--dry-run`) and whether it can undo itself. [`of`]
//! is apply's one `match` over kinds: a new action is a variant in `plan::model`, its type in
//! `plan::action`, a file here and an arm in [`of`], and the compiler names every answer it must give.

mod apply_crds;
mod delete_collection;
mod gate;
mod label_namespace;
mod manual;
mod restart_workloads;
mod run;
mod scale;
mod wait_for;

use futures::future::BoxFuture;

use super::actions::ActionError;
use super::describe::HintTarget;
use super::error::StepError;
use super::executor::Executor;
use super::journal::{Journal, StepRecord};
use super::permissions::Needs;
use crate::plan::action::Kind;
use crate::plan::{Action, Step, Tool, UpgradePlan};

pub(super) use scale::ScaleFacts;

/// Whether a step changes the cluster or only shows what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Act, wait, gate.
    Real,
    /// `--dry-run`: kube writes with `dryRun=All`, tools and manual steps shown, waits and gates
    /// skipped.
    Dry,
}

/// What a step's kind runs with: the executor (its UI, interrupt, journal, tools, polling), the
/// step's cluster client, the step, what [`StepAction::read_live`] found, and the mode.
pub(super) struct StepRun<'r, 'e> {
    pub ex: &'r mut Executor<'e>,
    pub client: &'r kube::Client,
    pub step: &'r Step,
    pub live: Option<ScaleFacts>,
    pub mode: Mode,
}

/// The action a step takes now when it is not the planned one (a restoring scale-up's count), and the
/// note its step line ends with instead of the run's own.
pub(super) struct Resolved {
    pub action: Action,
    pub done_note: Option<String>,
}

/// Everything apply asks of one kind of action. No method has a default, so that a new kind answers
/// each question.
pub(super) trait StepAction: Send + Sync {
    /// Whether it changes the cluster (and so is confirmed first).
    fn changes_cluster(&self) -> bool;
    /// The external tool it runs: found and asked its version before the step line is shown.
    fn tool(&self) -> Option<Tool>;
    /// What a person types to do it by hand (manual fallbacks, undo hints), pointed at `at`.
    fn hand_command(&self, at: HintTarget<'_>) -> String;
    /// The permissions it needs (SelfSubjectAccessReview before anything changes).
    fn needs(&self, needs: &mut Needs<'_>);
    /// What it keeps between reading the cluster and acting (`None`: nothing; only scale and
    /// restart-workloads keep anything).
    fn state(&self) -> Option<&dyn KeepsState>;
    /// Run it (for real: returns the note for the step line) or show it (`--dry-run`).
    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> Running<'a>;
    /// Undo by running this action now, where apply can (`None`: a person runs its hand command).
    fn undo_now<'a>(&'a self, client: &'a kube::Client) -> Undoing<'a>;
}

/// A step's run: the note for its step line.
pub(super) type Running<'a> = BoxFuture<'a, Result<String, StepError>>;

/// An undo run now, or `None` when only a person can undo.
pub(super) type Undoing<'a> = Option<BoxFuture<'a, Result<(), ActionError>>>;

/// The state a kind keeps across a step: the live facts it reads before the step line, the action it
/// takes now, and what the journal keeps before it acts. No method has a default.
pub(super) trait KeepsState {
    /// Live facts read before the step line, for its description (`None`: it reads none).
    fn read_live<'a>(
        &'a self,
        client: &'a kube::Client,
    ) -> Option<BoxFuture<'a, Result<ScaleFacts, ActionError>>>;
    /// The action to take now, when it differs from the planned one or ends with its own note
    /// (`None`: as planned). `journal`: this cluster's (none in a dry run).
    fn resolve(
        &self,
        live: Option<ScaleFacts>,
        journal: Option<&Journal>,
        plan: &UpgradePlan,
    ) -> Option<Resolved>;
    /// What the journal keeps before it acts (undo values, a restart's timestamp): kept from an earlier
    /// attempt when there is one.
    fn record_start(&self, record: &mut StepRecord, live: Option<ScaleFacts>, now: &str);
}

/// The kind of `action` (its borrowed view, [`Action::kind`], from the pure core) as apply asks it.
pub(super) fn of(action: &Action) -> Box<dyn StepAction + '_> {
    match action.kind() {
        Kind::Scale(k) => Box::new(k),
        Kind::DeleteCollection(k) => Box::new(k),
        Kind::ApplyCrds(k) => Box::new(k),
        Kind::Run(k) => Box::new(k),
        Kind::Wait(k) => Box::new(k),
        Kind::LabelNamespace(k) => Box::new(k),
        Kind::RestartWorkloads(k) => Box::new(k),
        Kind::Gate(k) => Box::new(k),
        Kind::Manual(k) => Box::new(k),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::apply::permissions::required;
    use crate::apply::test_plans::{plan_with, step, unreachable_client};
    use crate::plan::{Gate, ObjectRef, ReplicasBefore, WaitCondition};
    use crate::version::{Minor, Version};

    /// A step's record as a fresh journal holds it.
    fn fresh_record() -> StepRecord {
        let plan = plan_with(
            &["mgmt"],
            vec![crate::apply::test_plans::manual("s", "mgmt")],
        );
        Journal::new(&plan, "mgmt", "t0".into())
            .record_mut("s")
            .clone()
    }

    fn at() -> HintTarget<'static> {
        HintTarget {
            context: "mgmt",
            kubeconfig: None,
        }
    }

    fn discovery() -> ObjectRef {
        ObjectRef {
            kind: "Deployment".into(),
            namespace: "gloo-mesh".into(),
            name: "discovery".into(),
        }
    }

    /// One action of every kind (and every gate), with what each kind answers: (action, changes the
    /// cluster, tool, hand command).
    fn every_kind() -> Vec<(Action, bool, Option<Tool>, &'static str)> {
        let gate = |gate| Action::Gate { gate };
        vec![
            (
                Action::Scale {
                    target: discovery(),
                    replicas: 0,
                    replicas_before: Some(ReplicasBefore::Record),
                },
                true,
                None,
                "kubectl --context mgmt -n gloo-mesh annotate deployment/discovery meshup.dev/replicas-before=<current replicas> && kubectl --context mgmt -n gloo-mesh scale deployment/discovery --replicas=0",
            ),
            (
                Action::DeleteCollection {
                    group: "discovery.mesh.gloo.solo.io".into(),
                    version: "v1".into(),
                    resource: "meshes".into(),
                    namespace: None,
                },
                true,
                None,
                "kubectl --context mgmt delete meshes.discovery.mesh.gloo.solo.io --all --all-namespaces",
            ),
            (
                Action::ApplyCrds {
                    chart: "gloo-mesh".into(),
                    repo: "https://charts.example".into(),
                    version: "1.1.0".into(),
                },
                true,
                Some(Tool::Helm),
                "helm show crds gloo-mesh --repo https://charts.example --version 1.1.0 | kubectl --context mgmt apply --server-side --field-manager=kubectl-meshup -f -",
            ),
            (
                Action::Run {
                    tool: Tool::Meshctl,
                    args: vec!["upgrade".into()],
                    timeout_seconds: 60,
                    config: None,
                },
                true,
                Some(Tool::Meshctl),
                "meshctl upgrade --kubecontext mgmt",
            ),
            (
                Action::Wait {
                    condition: WaitCondition::RolloutComplete {
                        target: discovery(),
                    },
                    timeout_seconds: 30,
                },
                false,
                None,
                "wait for Deployment gloo-mesh/discovery to roll out (up to 30s)",
            ),
            (
                Action::LabelNamespace {
                    namespace: "bookinfo".into(),
                    labels: BTreeMap::from([("istio-injection".to_string(), None)]),
                },
                true,
                None,
                "kubectl --context mgmt label namespace bookinfo --overwrite istio-injection-",
            ),
            (
                Action::RestartWorkloads {
                    namespace: "bookinfo".into(),
                    workloads: vec!["Deployment/reviews-v1".into(), "StatefulSet/db".into()],
                },
                true,
                None,
                "kubectl --context mgmt -n bookinfo rollout restart deployment/reviews-v1 statefulset/db",
            ),
            (
                gate(Gate::ProxiesAtVersion {
                    version: Version::new(1, 24, 0),
                    namespaces: vec![],
                }),
                false,
                None,
                "gate: every istio-proxy in all namespaces runs 1.24.0",
            ),
            (
                gate(Gate::RevisionUnused {
                    revision: "1-23".into(),
                }),
                false,
                None,
                "gate: nothing uses Istio revision 1-23 any more",
            ),
            (
                gate(Gate::CheckPasses),
                false,
                None,
                "gate: `kubectl meshup check` finds no failure",
            ),
            (
                gate(Gate::NodeKernelsAtLeast {
                    min: Minor::new(5, 10),
                }),
                false,
                None,
                "gate: every Linux node runs kernel 5.10 or newer",
            ),
            (
                gate(Gate::IstiodAmbientEnabled {
                    namespace: "istio-system".into(),
                    revision: "1-24".into(),
                }),
                false,
                None,
                "gate: istiod revision 1-24 in istio-system runs with PILOT_ENABLE_AMBIENT=true",
            ),
            (
                gate(Gate::ToolVersion {
                    tool: Tool::Istioctl,
                    version: Version::new(1, 24, 0),
                }),
                false,
                Some(Tool::Istioctl),
                "istioctl version --remote=false --context mgmt",
            ),
            (
                Action::Manual {
                    instructions: "upgrade the nodes".into(),
                    command: Some(vec!["gcloud".into(), "upgrade".into()]),
                },
                true,
                None,
                "gcloud upgrade",
            ),
            (
                Action::Manual {
                    instructions: "upgrade the nodes".into(),
                    command: None,
                },
                true,
                None,
                "manual: upgrade the nodes",
            ),
        ]
    }

    #[test]
    fn each_kind_answers_whether_it_changes_the_cluster_its_tool_and_its_hand_command() {
        for (action, changes, tool, command) in every_kind() {
            let kind = of(&action);
            let name = action.type_name();
            assert_eq!(kind.changes_cluster(), changes, "{name}");
            assert_eq!(kind.tool(), tool, "{name}");
            assert_eq!(kind.hand_command(at()), command, "{name}");
        }
    }

    #[tokio::test]
    async fn only_scale_reads_live_facts_and_only_scale_and_labels_undo_themselves() {
        let client = unreachable_client();
        for (action, ..) in every_kind() {
            let kind = of(&action);
            let name = action.type_name();
            let scale = matches!(action, Action::Scale { .. });
            let label = matches!(action, Action::LabelNamespace { .. });
            let reads = kind.state().and_then(|s| s.read_live(&client)).is_some();
            assert_eq!(reads, scale, "{name}");
            assert_eq!(kind.undo_now(&client).is_some(), scale || label, "{name}");
        }
    }

    #[test]
    fn a_restoring_scale_resolves_its_count_from_the_journal_then_the_annotation_then_the_plan() {
        let restore = Action::Scale {
            target: discovery(),
            replicas: 1,
            replicas_before: Some(ReplicasBefore::Restore),
        };
        let plan = plan_with(&["mgmt"], vec![]);
        let facts = |annotated| Some(ScaleFacts { live: 0, annotated });
        let resolve = |action: &Action, live| {
            of(action)
                .state()
                .and_then(|s| s.resolve(live, None, &plan))
        };
        let resolved = resolve(&restore, facts(Some(3))).expect("a restoring scale resolves");
        assert!(matches!(resolved.action, Action::Scale { replicas: 3, .. }));
        assert!(
            resolved
                .done_note
                .as_deref()
                .is_some_and(|n| n.starts_with("3 restored from ")),
            "{:?}",
            resolved.done_note
        );
        let resolved = resolve(&restore, facts(None)).unwrap();
        assert!(matches!(resolved.action, Action::Scale { replicas: 1, .. }));
        let plain = Action::Scale {
            target: discovery(),
            replicas: 1,
            replicas_before: None,
        };
        assert!(resolve(&plain, facts(None)).is_none());
    }

    #[test]
    fn a_scale_records_the_count_it_replaces_once_and_a_restart_its_timestamp_once() {
        let record = Action::Scale {
            target: discovery(),
            replicas: 0,
            replicas_before: Some(ReplicasBefore::Record),
        };
        let mut rec = fresh_record();
        let facts = ScaleFacts {
            live: 0,
            annotated: Some(4),
        };
        of(&record)
            .state()
            .unwrap()
            .record_start(&mut rec, Some(facts), "t1");
        assert!(matches!(
            rec.undo,
            Some(crate::apply::journal::UndoRecord::Scale { replicas: 4, .. })
        ));
        // A second attempt keeps what the first recorded.
        let later = ScaleFacts {
            live: 0,
            annotated: None,
        };
        of(&record)
            .state()
            .unwrap()
            .record_start(&mut rec, Some(later), "t2");
        assert!(matches!(
            rec.undo,
            Some(crate::apply::journal::UndoRecord::Scale { replicas: 4, .. })
        ));
        let restart = Action::RestartWorkloads {
            namespace: "bookinfo".into(),
            workloads: vec!["Deployment/reviews-v1".into()],
        };
        let mut rec = fresh_record();
        of(&restart)
            .state()
            .unwrap()
            .record_start(&mut rec, None, "t1");
        of(&restart)
            .state()
            .unwrap()
            .record_start(&mut rec, None, "t2");
        assert_eq!(rec.restarted_at.as_deref(), Some("t1"));
    }

    #[test]
    fn the_permissions_of_a_plan_are_its_kinds_needs_and_the_journal_s() {
        let steps: Vec<Step> = every_kind()
            .into_iter()
            .enumerate()
            .map(|(i, (action, ..))| step(&format!("s{i}"), "mgmt", action))
            .collect();
        let plan = plan_with(&["mgmt"], steps);
        let wanted: BTreeSet<String> = required(&plan, "mgmt", Some("meshup"))
            .iter()
            .map(ToString::to_string)
            .collect();
        let expected = [
            "get configmaps in namespace meshup in cluster mgmt",
            "update leases.coordination.k8s.io in namespace meshup in cluster mgmt",
            "patch deployments/scale.apps in namespace gloo-mesh in cluster mgmt",
            "patch deployments.apps in namespace gloo-mesh in cluster mgmt",
            "deletecollection meshes.discovery.mesh.gloo.solo.io (cluster-wide) in cluster mgmt",
            "create customresourcedefinitions.apiextensions.k8s.io (cluster-wide) in cluster mgmt",
            "patch namespaces (cluster-wide) in cluster mgmt",
            "patch statefulsets.apps in namespace bookinfo in cluster mgmt",
            "list pods (cluster-wide) in cluster mgmt",
            "list mutatingwebhookconfigurations.admissionregistration.k8s.io (cluster-wide) in cluster mgmt",
            "list nodes (cluster-wide) in cluster mgmt",
            "list deployments.apps in namespace istio-system in cluster mgmt",
        ];
        for e in expected {
            assert!(wanted.contains(e), "missing {e}: {wanted:#?}");
        }
        // run, manual and the check-passes and tool-version gates add nothing; a dry run writes no
        // journal.
        let dry = required(&plan, "mgmt", None);
        assert!(dry.iter().all(|p| p.namespace != "meshup"), "{dry:#?}");
        assert_eq!(wanted.len(), dry.len() + 7);
    }
}
