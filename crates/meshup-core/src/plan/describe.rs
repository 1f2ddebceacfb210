//! What an action does, in one line a reviewer checks, and command lines as a person types them: the
//! one description shared by `plan`'s renderers and `apply`'s progress and prompts. Pure.

use super::model::{Action, ObjectRef, Tool};

/// `Kind namespace/name`.
pub(super) fn object(target: &ObjectRef) -> String {
    format!("{} {}/{}", target.kind, target.namespace, target.name)
}

/// One line: `scale Deployment gloo-mesh/discovery 1 -> 0`. `current_replicas` is the live count when
/// known (scale steps); without it, a scale that keeps its count says so.
pub fn describe_action(action: &Action, current_replicas: Option<u32>) -> String {
    super::action::of(action).describe(current_replicas)
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
