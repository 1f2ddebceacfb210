//! What an action does, in one line a reviewer checks, and command lines as a person types them: the
//! one description shared by `plan`'s renderers and `apply`'s progress and prompts. Pure.

use super::model::{Action, Gate, ObjectRef, ReplicasBefore, Tool, WaitCondition};
use crate::snapshot::REPLICAS_BEFORE_ANNOTATION;

fn object(target: &ObjectRef) -> String {
    format!("{} {}/{}", target.kind, target.namespace, target.name)
}

/// One line: `scale Deployment gloo-mesh/discovery 1 -> 0`. `current_replicas` is the live count when
/// known (scale steps); without it, a scale that keeps its count says so.
pub fn describe_action(action: &Action, current_replicas: Option<u32>) -> String {
    match action {
        Action::Scale {
            target,
            replicas,
            replicas_before,
        } => {
            // With the live count (apply's step lines), where the count came from or went is the
            // step's result note instead.
            let change = match current_replicas {
                Some(now) => return format!("scale {} {now} -> {replicas}", object(target)),
                None => format!("scale {} to {replicas}", object(target)),
            };
            match replicas_before {
                None => change,
                Some(ReplicasBefore::Record) => {
                    format!("{change}, recording its replicas in {REPLICAS_BEFORE_ANNOTATION}")
                }
                Some(ReplicasBefore::Restore) => {
                    format!("{change}, the replicas recorded before the scale-down")
                }
            }
        }
        Action::DeleteCollection {
            group,
            version,
            resource,
            namespace,
        } => {
            let scope = match namespace {
                Some(ns) => format!("in namespace {ns}"),
                None => "in all namespaces".to_string(),
            };
            format!("delete all {resource}.{group} ({group}/{version}) {scope}")
        }
        Action::ApplyCrds {
            chart,
            repo,
            version,
        } => {
            format!("server-side apply the CRDs of chart {chart} {version} from {repo}")
        }
        Action::Run {
            tool, args, config, ..
        } => {
            let mut line = format!("run {}", command_line(tool.program(), args));
            if let Some(config) = config {
                line.push_str(&format!(" {} FILE", config.kind.flag()));
            }
            line
        }
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

/// The command that prints a tool's own version, as a person types it.
pub fn tool_version_command(tool: Tool) -> String {
    let args: Vec<String> = tool.version_args().iter().map(|a| a.to_string()).collect();
    command_line(tool.program(), &args)
}

/// The command line as a person would type it, each argument quoted when a shell would need it.
/// For display only: tools are never run through a shell.
pub fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// What a step carries to its tool, as the reviewer must see it: where it was read and the document,
/// in YAML, one line per entry (empty when the step carries nothing).
pub fn carried_config(action: &Action) -> Vec<String> {
    let Action::Run {
        config: Some(config),
        ..
    } = action
    else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "FILE ({}): {}",
        match config.kind {
            super::model::ConfigKind::HelmValues => "Helm values",
            super::model::ConfigKind::IstioOperator => "IstioOperator",
        },
        config.source
    )];
    let text = serde_saphyr::to_string(&config.document).unwrap_or_default();
    lines.extend(text.lines().map(|l| format!("  {l}")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_only_what_a_shell_would_split() {
        let args = vec![
            "upgrade".to_string(),
            "--set".to_string(),
            "a b".to_string(),
            "it's".to_string(),
        ];
        assert_eq!(
            command_line("helm", &args),
            r"helm upgrade --set 'a b' 'it'\''s'"
        );
    }
}
