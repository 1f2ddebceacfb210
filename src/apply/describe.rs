//! What a step will do, in words a reviewer checks against the plan, and the exact commands that undo a
//! step by hand. Pure.

use crate::plan::{Action, Gate, ObjectRef, Tool, WaitCondition};

use super::tools::command_line;

fn object(target: &ObjectRef) -> String {
    format!("{} {}/{}", target.kind, target.namespace, target.name)
}

/// One line: `scale Deployment gloo-mesh/discovery 1 -> 0`. `current_replicas` is the live count when
/// known (scale steps).
pub fn action(action: &Action, current_replicas: Option<u32>) -> String {
    match action {
        Action::Scale { target, replicas } => match current_replicas {
            Some(now) => format!("scale {} {now} -> {replicas}", object(target)),
            None => format!("scale {} to {replicas}", object(target)),
        },
        Action::DeleteCollection {
            group,
            resource,
            namespace,
            ..
        } => {
            let scope = match namespace {
                Some(ns) => format!("in namespace {ns}"),
                None => "in all namespaces".to_string(),
            };
            format!("delete all {resource}.{group} {scope}")
        }
        Action::ApplyCrds { chart, version, .. } => {
            format!("server-side apply the CRDs of chart {chart} {version}")
        }
        Action::Run { tool, args, .. } => format!("run {}", command_line(tool.program(), args)),
        Action::Wait {
            condition,
            timeout_seconds,
        } => match condition {
            WaitCondition::RolloutComplete { target } => {
                format!(
                    "wait for {} to roll out (up to {timeout_seconds}s)",
                    object(target)
                )
            }
            WaitCondition::ResourcesPresent {
                group, resources, ..
            } => format!(
                "wait until {} of {group} exist again (up to {timeout_seconds}s)",
                resources.join(", ")
            ),
        },
        Action::LabelNamespace { namespace, labels } => {
            let changes: Vec<String> = labels
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => format!("{k}-"),
                })
                .collect();
            format!("label namespace {namespace} {}", changes.join(" "))
        }
        Action::RestartWorkloads {
            namespace,
            workloads,
        } => format!(
            "restart {} workload(s) in {namespace}: {}",
            workloads.len(),
            workloads.join(", ")
        ),
        Action::Gate { gate } => match gate {
            Gate::ProxiesAtVersion {
                version,
                namespaces,
            } => {
                let scope = if namespaces.is_empty() {
                    "all namespaces".to_string()
                } else {
                    namespaces.join(", ")
                };
                format!("gate: every istio-proxy in {scope} runs {version}")
            }
            Gate::RevisionUnused { revision } => {
                format!("gate: nothing uses Istio revision {revision} any more")
            }
            Gate::CheckPasses => "gate: `kubectl meshup check` finds no failure".to_string(),
            Gate::NodeKernelsAtLeast { min } => {
                format!("gate: every Linux node runs kernel {min} or newer")
            }
            Gate::IstiodAmbientEnabled {
                namespace,
                revision,
            } => format!(
                "gate: istiod revision {revision} in {namespace} runs with PILOT_ENABLE_AMBIENT=true"
            ),
            Gate::ToolVersion { tool, version } => {
                format!("gate: `{}` reports {version}", tool_version_command(*tool))
            }
        },
        Action::Manual { instructions, .. } => format!("manual: {instructions}"),
    }
}

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

/// The command that prints a tool's own version, as a person types it.
pub fn tool_version_command(tool: Tool) -> String {
    let args: Vec<String> = tool.version_args().iter().map(|a| a.to_string()).collect();
    command_line(tool.program(), &args)
}

/// What a person types to do the action by hand (shown for manual fallbacks and undo hints).
pub fn command(cluster: &str, step_action: &Action) -> String {
    let kubectl = format!("kubectl --context {cluster}");
    match step_action {
        Action::Scale { target, replicas } => format!(
            "{kubectl} -n {} scale {}/{} --replicas={replicas}",
            target.namespace,
            target.kind.to_lowercase(),
            target.name
        ),
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
        Action::Run { tool, args, .. } => command_line(tool.program(), args),
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
        } => tool_version_command(*tool),
        other => action(other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        };
        assert_eq!(
            action(&scale, Some(1)),
            "scale Deployment gloo-mesh/discovery 1 -> 0"
        );
        let undo = Action::Scale {
            target: discovery(),
            replicas: 1,
        };
        assert_eq!(
            command("mgmt", &undo),
            "kubectl --context mgmt -n gloo-mesh scale deployment/discovery --replicas=1"
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
