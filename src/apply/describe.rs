//! The exact commands a person types: to do or undo a step by hand (each action kind answers for
//! itself, in [`super::action`]), to resume an apply, to make a new plan. Pure. The one-line description
//! of an action is `plan::describe_action`, shared with the plan's renderers (the pure core cannot ask
//! apply).

use std::path::Path;

use super::ApplyOptions;
use super::tools::{Program, cluster_flags};
use crate::plan::{Action, UpgradePlan, command_line};

pub use crate::plan::describe_action as action;

/// The `helm show crds` argument vector of an apply-crds step.
pub fn helm_show_crds_args(chart: &str, repo: &str, version: &str) -> Vec<String> {
    ["show", "crds", chart, "--repo", repo, "--version", version]
        .into_iter()
        .map(String::from)
        .collect()
}

/// The cluster a hint is for, as a person selects it: the plan's context, and `--kubeconfig` when apply
/// was given one (otherwise the person's shell finds the same files apply read).
#[derive(Debug, Clone, Copy)]
pub struct HintTarget<'a> {
    pub context: &'a str,
    pub kubeconfig: Option<&'a Path>,
}

impl HintTarget<'_> {
    /// `program` and `args`, then the flags that point `program` at this cluster.
    pub fn command_line(&self, program: Program, args: &[String]) -> String {
        let name = match program {
            Program::Kubectl => "kubectl",
            Program::Tool(tool) => tool.program(),
        };
        let mut all = args.to_vec();
        all.extend(cluster_flags(program, args, self.kubeconfig, self.context));
        command_line(name, &all)
    }

    /// `kubectl --kubeconfig F --context C`, the start of every kubectl hint.
    pub fn kubectl(&self) -> String {
        self.command_line(Program::Kubectl, &[])
    }
}

/// What a person types to do the action by hand (shown for manual fallbacks and undo hints), pointed
/// at `at`'s cluster: each action kind's own [`StepAction::hand_command`](super::action::StepAction).
pub fn command(at: HintTarget<'_>, step_action: &Action) -> String {
    super::action::of(step_action).hand_command(at)
}

fn plan_file_text(options: &ApplyOptions) -> String {
    options
        .plan_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "PLAN_FILE".to_string())
}

/// The command that resumes this apply (with the `--kubeconfig` it was given).
pub fn resume_command(options: &ApplyOptions) -> String {
    format!(
        "kubectl meshup{} apply {}",
        kubeconfig_flag(options),
        plan_file_text(options)
    )
}

/// ` --kubeconfig FILE` when apply was given one, else nothing.
fn kubeconfig_flag(options: &ApplyOptions) -> String {
    options
        .kubeconfig
        .flag()
        .map(|f| {
            format!(
                " {}",
                crate::plan::command_line("--kubeconfig", &[f.display().to_string()])
            )
        })
        .unwrap_or_default()
}

/// Where hints for `cluster` point: its context, and `--kubeconfig` when apply was given one.
pub fn hint_target<'a>(options: &'a ApplyOptions, cluster: &'a str) -> HintTarget<'a> {
    HintTarget {
        context: cluster,
        kubeconfig: options.kubeconfig.flag(),
    }
}

/// The command that makes a fresh plan for the same targets and clusters.
pub fn replan_command(plan: &UpgradePlan, options: &ApplyOptions) -> String {
    let kubeconfig = kubeconfig_flag(options);
    let contexts: String = plan
        .clusters
        .iter()
        .map(|c| format!(" --context {c}"))
        .collect();
    let targets: String = plan
        .targets
        .iter()
        .map(|t| format!(" --to {}={}", t.mesh, t.version))
        .collect();
    format!(
        "kubectl meshup{kubeconfig}{contexts} plan{targets} -o yaml > {}",
        plan_file_text(options)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Staleness;
    use crate::client::{KubeconfigFiles, KubeconfigSource};
    use crate::plan::{Fingerprint, ReplicasBefore, Target, Tool};
    use crate::snapshot::ClusterSnapshot;
    use std::path::PathBuf;

    fn no_fingerprint(_: &ClusterSnapshot, _: &[Target]) -> Fingerprint {
        Fingerprint {
            algorithm: "none".into(),
            value: String::new(),
            facts: BTreeMap::new(),
        }
    }

    fn options(source: KubeconfigSource) -> ApplyOptions {
        let mut o = ApplyOptions::new(Staleness {
            fingerprint: no_fingerprint,
            diff: |_, _| Vec::new(),
        });
        o.plan_file = Some(PathBuf::from("plan.yaml"));
        o.kubeconfig = KubeconfigFiles {
            files: vec![PathBuf::from("/work/my config")],
            source,
        };
        o
    }

    #[test]
    fn the_resume_command_repeats_the_kubeconfig_flag_only_when_it_was_given() {
        assert_eq!(
            resume_command(&options(KubeconfigSource::Flag)),
            "kubectl meshup --kubeconfig '/work/my config' apply plan.yaml"
        );
        assert_eq!(
            resume_command(&options(KubeconfigSource::Env)),
            "kubectl meshup apply plan.yaml"
        );
    }
    use crate::plan::ObjectRef;
    use std::collections::BTreeMap;

    fn discovery() -> ObjectRef {
        ObjectRef {
            kind: "Deployment".into(),
            namespace: "gloo-mesh".into(),
            name: "discovery".into(),
        }
    }

    #[test]
    fn a_scale_shows_the_live_count_and_its_undo_is_a_kubectl_scale() {
        let scale = Action::Scale {
            target: discovery(),
            replicas: 0,
            replicas_before: None,
        };
        assert_eq!(
            action(&scale, Some(1)),
            "scale Deployment gloo-mesh/discovery 1 -> 0"
        );
        let undo = Action::Scale {
            target: discovery(),
            replicas: 1,
            replicas_before: None,
        };
        let mgmt = HintTarget {
            context: "mgmt",
            kubeconfig: None,
        };
        assert_eq!(
            command(mgmt, &undo),
            "kubectl --context mgmt -n gloo-mesh scale deployment/discovery --replicas=1"
        );
    }

    #[test]
    fn a_restoring_scale_also_removes_the_recorded_count() {
        let restore = Action::Scale {
            target: discovery(),
            replicas: 3,
            replicas_before: Some(ReplicasBefore::Restore),
        };
        assert_eq!(
            command(
                HintTarget {
                    context: "mgmt",
                    kubeconfig: None
                },
                &restore
            ),
            "kubectl --context mgmt -n gloo-mesh scale deployment/discovery --replicas=3 && kubectl --context mgmt \
             -n gloo-mesh annotate deployment/discovery meshup.dev/replicas-before-"
        );
        assert_eq!(
            action(&restore, None),
            "scale Deployment gloo-mesh/discovery to 3, the replicas recorded before the scale-down"
        );
        assert_eq!(
            action(&restore, Some(0)),
            "scale Deployment gloo-mesh/discovery 0 -> 3"
        );
    }

    #[test]
    fn hints_carry_the_kubeconfig_apply_was_given_and_the_context() {
        let at = HintTarget {
            context: "staging",
            kubeconfig: Some(Path::new("/work/my kubeconfig")),
        };
        let undo = Action::Scale {
            target: discovery(),
            replicas: 1,
            replicas_before: None,
        };
        assert_eq!(
            command(at, &undo),
            "kubectl --kubeconfig '/work/my kubeconfig' --context staging -n gloo-mesh scale deployment/discovery --replicas=1"
        );
        let uninstall = Action::Run {
            tool: Tool::Istioctl,
            args: vec![
                "uninstall".into(),
                "--revision".into(),
                "1-23".into(),
                "-y".into(),
            ],
            timeout_seconds: 300,
            config: None,
        };
        assert_eq!(
            command(at, &uninstall),
            "istioctl uninstall --revision 1-23 -y --kubeconfig '/work/my kubeconfig' --context staging"
        );
        let helm = Action::Run {
            tool: Tool::Helm,
            args: vec!["upgrade".into(), "gloo-mesh".into()],
            timeout_seconds: 300,
            config: None,
        };
        let no_flag = HintTarget {
            context: "mgmt",
            kubeconfig: None,
        };
        assert_eq!(
            command(no_flag, &helm),
            "helm upgrade gloo-mesh --kube-context mgmt"
        );
    }

    #[test]
    fn label_changes_set_and_remove() {
        let label = Action::LabelNamespace {
            namespace: "bookinfo".into(),
            labels: BTreeMap::from([
                ("istio-injection".to_string(), None),
                ("istio.io/rev".to_string(), Some("1-24".to_string())),
            ]),
        };
        assert_eq!(
            action(&label, None),
            "label namespace bookinfo istio-injection- istio.io/rev=1-24"
        );
    }
}
