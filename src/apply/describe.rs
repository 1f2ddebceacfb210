//! The exact commands that do or undo a step by hand, and which steps change the cluster. Pure. The
//! one-line description of an action is `plan::describe_action`, shared with the plan's renderers.

use std::path::Path;

use super::tools::{Program, cluster_flags};
use crate::plan::{Action, Gate, ReplicasBefore, Tool, command_line};
use crate::snapshot::REPLICAS_BEFORE_ANNOTATION;

pub use crate::plan::describe_action as action;

/// Whether the action changes the cluster (and so is confirmed first).
pub fn changes_cluster(action: &Action) -> bool {
    !matches!(action, Action::Wait { .. } | Action::Gate { .. })
}

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
/// at `at`'s cluster.
pub fn command(at: HintTarget<'_>, step_action: &Action) -> String {
    let kubectl = at.kubectl();
    match step_action {
        Action::Scale {
            target,
            replicas,
            replicas_before,
        } => {
            let object = format!("{}/{}", target.kind.to_lowercase(), target.name);
            let ns = &target.namespace;
            let scale = format!("{kubectl} -n {ns} scale {object} --replicas={replicas}");
            match replicas_before {
                Some(ReplicasBefore::Restore) => format!(
                    "{scale} && {kubectl} -n {ns} annotate {object} {REPLICAS_BEFORE_ANNOTATION}-"
                ),
                Some(ReplicasBefore::Record) => format!(
                    "{kubectl} -n {ns} annotate {object} {REPLICAS_BEFORE_ANNOTATION}=<current replicas> && {scale}"
                ),
                None => scale,
            }
        }
        Action::DeleteCollection {
            group,
            resource,
            namespace,
            ..
        } => {
            let scope = match namespace {
                Some(ns) => format!("-n {ns}"),
                None => "--all-namespaces".to_string(),
            };
            format!("{kubectl} delete {resource}.{group} --all {scope}")
        }
        Action::ApplyCrds {
            chart,
            repo,
            version,
        } => format!(
            "{} | {kubectl} apply --server-side --field-manager=kubectl-meshup -f -",
            command_line(
                Tool::Helm.program(),
                &helm_show_crds_args(chart, repo, version)
            )
        ),
        Action::Run { tool, args, .. } => at.command_line(Program::Tool(*tool), args),
        Action::LabelNamespace { namespace, labels } => {
            let changes: Vec<String> = labels
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => format!("{k}-"),
                })
                .collect();
            format!(
                "{kubectl} label namespace {namespace} --overwrite {}",
                changes.join(" ")
            )
        }
        Action::RestartWorkloads {
            namespace,
            workloads,
        } => format!(
            "{kubectl} -n {namespace} rollout restart {}",
            workloads
                .iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Action::Manual {
            command: Some(argv),
            ..
        } => argv.join(" "),
        Action::Gate {
            gate: Gate::ToolVersion { tool, .. },
        } => {
            let args: Vec<String> = tool.version_args().iter().map(|a| a.to_string()).collect();
            at.command_line(Program::Tool(*tool), &args)
        }
        other => action(other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
