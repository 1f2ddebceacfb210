//! Plans for people: a terminal table in the manner of `kubeadm upgrade plan` (components, then the
//! numbered steps, the warnings, and the command that applies the plan) and Markdown for a change ticket
//! or pull request.

use std::fmt::Write as _;

use super::describe::carried_config;
use super::{ScopeViolation, Step, UpgradePlan, describe_action, scope_violations};
use crate::text::{escape_control, escape_json};

/// The command that applies a saved plan, printed at the end of every rendering.
pub const APPLY_COMMAND: &str = "kubectl meshup apply plan.yaml";

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

fn targets_line(plan: &UpgradePlan) -> String {
    plan.targets
        .iter()
        .map(|t| format!("{} {}", t.mesh, t.version))
        .collect::<Vec<_>>()
        .join(", ")
}

fn strategy_name(plan: &UpgradePlan) -> &'static str {
    match plan.strategy {
        super::Strategy::Canary => "canary",
        super::Strategy::InPlace => "in-place",
    }
}

/// The plan as it may be shown: every string with its control characters escaped
/// ([`escape_control`]), so a crafted title or argument cannot move the cursor, hide or erase lines.
/// The steps outside the plan's scope are judged on the plan as written.
fn displayable(plan: &UpgradePlan) -> (UpgradePlan, Vec<ScopeViolation>) {
    let outside = scope_violations(plan, None, &[])
        .into_iter()
        .map(|v| ScopeViolation {
            step: escape_control(&v.step).into_owned(),
            reason: escape_control(&v.reason).into_owned(),
        })
        .collect();
    let shown = serde_json::to_value(plan)
        .map(escape_json)
        .and_then(serde_json::from_value);
    // Escaping only changes strings the model reads as free text; should a typed field ever refuse its
    // escaped form, the plan is shown without its steps and the scope block says what was wrong.
    let shown = shown.unwrap_or_else(|_| UpgradePlan {
        steps: Vec::new(),
        warnings: vec![
            "the plan holds text that cannot be shown safely; it is not shown".to_string(),
        ],
        ..plan.clone()
    });
    (shown, outside)
}

fn is_outside(outside: &[ScopeViolation], step: &Step) -> bool {
    outside
        .iter()
        .any(|v| v.step == step.id || v.step == format!("{} (undo)", step.id))
}

/// The mark on a step outside the plan's scope.
const OUTSIDE_SCOPE: &str = "OUTSIDE SCOPE";

/// The terminal view.
pub fn render_table(plan: &UpgradePlan, colour: bool) -> String {
    let (plan, outside) = displayable(plan);
    let plan = &plan;
    let p = Paint { on: colour };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Upgrade plan: {} (Istio strategy: {})",
        targets_line(plan),
        strategy_name(plan)
    );
    let _ = writeln!(
        out,
        "Clusters: {}. Made by kubectl-meshup {} with compatibility data of {}.",
        plan.clusters.join(", "),
        plan.metadata.tool_version,
        compat_label(plan)
    );
    out.push('\n');

    let header = ["COMPONENT", "CLUSTER", "CURRENT", "TARGET", "PATH"];
    let rows: Vec<[String; 5]> = plan
        .components
        .iter()
        .map(|c| {
            [
                c.component.clone(),
                c.cluster.clone(),
                c.current.clone(),
                c.target.clone(),
                c.path.join(" -> "),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 3;
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", p.bold(&line(header)));
    for row in &rows {
        let _ = writeln!(
            out,
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4]])
        );
    }

    if !plan.hops.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", p.bold("Why this path:"));
        for h in &plan.hops {
            let flag = if h.downgrade { " (DOWNGRADE)" } else { "" };
            let _ = writeln!(
                out,
                "  {} {} {} -> {}{flag}: {}",
                h.cluster, h.mesh, h.from, h.to, h.reason
            );
            for (minor, url, items) in notes_by_minor(h) {
                match h.mesh {
                    super::Mesh::Istio => {
                        let _ = writeln!(out, "    read first: Istio {minor} upgrade notes, {url}");
                        for (title, _) in items {
                            let _ = writeln!(out, "      - {title}");
                        }
                    }
                    mesh => {
                        let mesh = mesh_name(mesh);
                        let _ = writeln!(
                            out,
                            "    read first: {mesh} {minor} breaking changes (changelog)"
                        );
                        for (title, link) in items {
                            let _ = writeln!(out, "      - {title}: {link}");
                        }
                    }
                }
            }
        }
    }

    out.push('\n');
    if plan.steps.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Steps: none"));
    } else {
        let _ = writeln!(out, "{}", p.bold(&format!("Steps ({}):", plan.steps.len())));
        let width = plan.steps.len().to_string().len();
        for (i, step) in plan.steps.iter().enumerate() {
            let mut title = format!(
                "{:>width$}. [{}] {} ({})",
                i + 1,
                step.cluster,
                step.title,
                step.action.type_name()
            );
            if step.irreversible {
                title.push(' ');
                title.push_str(&p.red("IRREVERSIBLE"));
            }
            if is_outside(&outside, step) {
                title.push(' ');
                title.push_str(&p.red(OUTSIDE_SCOPE));
            }
            let _ = writeln!(out, "{title}");
            let indent = " ".repeat(width + 2);
            let _ = writeln!(
                out,
                "{indent}{}",
                p.dim(&format!("why: {}", reason_line(step)))
            );
            let _ = writeln!(out, "{indent}{}", describe_action(&step.action, None));
            for line in carried_config(&step.action) {
                let _ = writeln!(out, "{indent}{}", p.dim(&line));
            }
        }
    }

    if !plan.warnings.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", p.bold("Warnings:"));
        for w in &plan.warnings {
            let _ = writeln!(out, "  {}", p.yellow(&format!("! {w}")));
        }
    }

    if !outside.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "{}",
            p.red("Outside the plan's scope (apply refuses this plan; `kubectl meshup plan` never writes these):")
        );
        for v in &outside {
            let _ = writeln!(out, "  {}", p.red(&format!("! {v}")));
        }
    }

    out.push('\n');
    if plan.steps.is_empty() {
        let _ = writeln!(out, "Nothing to apply.");
    } else {
        let _ = writeln!(
            out,
            "Save this plan with `-o yaml --out plan.yaml`, review it, then apply it with:"
        );
        out.push('\n');
        let _ = writeln!(out, "    {}", p.bold(APPLY_COMMAND));
    }
    out
}

/// The change-ticket view.
pub fn render_markdown(plan: &UpgradePlan) -> String {
    let (plan, outside) = displayable(plan);
    let plan = &plan;
    let mut out = String::new();
    let _ = writeln!(out, "# Upgrade plan: {}", targets_line(plan));
    out.push('\n');
    let _ = writeln!(out, "- Istio strategy: {}", strategy_name(plan));
    let _ = writeln!(out, "- Clusters: {}", plan.clusters.join(", "));
    let _ = writeln!(
        out,
        "- Made by: kubectl-meshup {}, compatibility data of {}",
        plan.metadata.tool_version,
        compat_label(plan)
    );
    let _ = writeln!(
        out,
        "- Cluster fingerprint: `{}:{}` ({} facts)",
        plan.fingerprint.algorithm,
        short(&plan.fingerprint.value),
        plan.fingerprint.facts.len()
    );
    out.push('\n');
    let _ = writeln!(out, "## Components");
    out.push('\n');
    let _ = writeln!(out, "| Component | Cluster | Current | Target | Path |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for c in &plan.components {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&c.component),
            cell(&c.cluster),
            cell(&c.current),
            cell(&c.target),
            cell(&c.path.join(" → "))
        );
    }
    if !plan.hops.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "## Why this path");
        out.push('\n');
        for h in &plan.hops {
            let flag = if h.downgrade { " **(downgrade)**" } else { "" };
            let _ = writeln!(
                out,
                "- `{}` {} {} → {}{flag}: {}",
                h.cluster, h.mesh, h.from, h.to, h.reason
            );
            for (minor, url, items) in notes_by_minor(h) {
                match h.mesh {
                    super::Mesh::Istio => {
                        let _ =
                            writeln!(out, "  - Read first: [Istio {minor} upgrade notes]({url})");
                        for (title, _) in items {
                            let _ = writeln!(out, "    - {title}");
                        }
                    }
                    mesh => {
                        let mesh = mesh_name(mesh);
                        let _ = writeln!(
                            out,
                            "  - Read first: {mesh} {minor} breaking changes (changelog)"
                        );
                        for (title, link) in items {
                            let _ = writeln!(out, "    - [{title}]({link})");
                        }
                    }
                }
            }
        }
    }
    if !outside.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "> [!CAUTION]");
        let _ = writeln!(
            out,
            "> Outside the plan's scope (apply refuses this plan; `kubectl meshup plan` never writes these):"
        );
        for v in &outside {
            let _ = writeln!(out, "> - {}", v.to_string().replace('`', "'"));
        }
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "> [!WARNING]");
        for w in &plan.warnings {
            let _ = writeln!(out, "> - {w}");
        }
    }
    out.push('\n');
    let _ = writeln!(out, "## Steps");
    out.push('\n');
    if plan.steps.is_empty() {
        let _ = writeln!(
            out,
            "None: every targeted component is already at its target."
        );
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let mut flag = if step.irreversible {
            " — **IRREVERSIBLE**".to_string()
        } else {
            String::new()
        };
        if is_outside(&outside, step) {
            flag.push_str(&format!(" — **{OUTSIDE_SCOPE}**"));
        }
        let _ = writeln!(
            out,
            "{}. **{}** (`{}` on `{}`, id `{}`){flag}",
            i + 1,
            step.title,
            step.action.type_name(),
            step.cluster,
            step.id
        );
        let _ = writeln!(out, "   - Why: {}", reason_line(step));
        let _ = writeln!(out, "   - Source: {}", step.reason.source);
        let detail = describe_action(&step.action, None);
        let _ = writeln!(out, "   - Action: `{}`", detail.replace('`', "'"));
        let carried = carried_config(&step.action);
        if let Some((head, document)) = carried.split_first() {
            let _ = writeln!(out, "   - Carries {head}");
            let _ = writeln!(out, "     ```yaml");
            for line in document {
                let _ = writeln!(out, "     {}", line.trim_start_matches("  "));
            }
            let _ = writeln!(out, "     ```");
        }
        if let Some(undo) = &step.undo {
            let detail = describe_action(undo, None);
            let _ = writeln!(out, "   - Undo: `{}`", detail.replace('`', "'"));
        }
    }
    out.push('\n');
    let _ = writeln!(out, "## Apply");
    out.push('\n');
    let _ = writeln!(out, "```sh");
    let _ = writeln!(out, "{APPLY_COMMAND}");
    let _ = writeln!(out, "```");
    out
}

fn reason_line(step: &Step) -> String {
    let r = &step.reason;
    match &r.step {
        Some(n) => format!("{}, {}: {}", r.runbook, n, r.text),
        None => format!("{}: {}", r.runbook, r.text),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// `2026-09-09`, or `2026-09-09 (built in)` when the plan records where its data came from.
fn compat_label(plan: &UpgradePlan) -> String {
    match &plan.metadata.compat_data_from {
        Some(from) => format!("{} ({from})", plan.metadata.compat_data),
        None => plan.metadata.compat_data.clone(),
    }
}

/// A hop's notes grouped by minor: (minor, the first note's page, [(title, page)]), in the order the hop
/// crosses them.
type NoteGroup = (String, String, Vec<(String, String)>);

fn notes_by_minor(hop: &super::Hop) -> Vec<NoteGroup> {
    let mut out: Vec<NoteGroup> = Vec::new();
    for n in &hop.upgrade_notes {
        let minor = n.minor.to_string();
        let item = (
            escape_control(&n.title).into_owned(),
            escape_control(&n.url).into_owned(),
        );
        match out.last_mut() {
            Some((m, _, items)) if *m == minor => items.push(item),
            _ => out.push((minor, item.1.clone(), vec![item])),
        }
    }
    out
}

fn mesh_name(mesh: super::Mesh) -> &'static str {
    match mesh {
        super::Mesh::Istio => "Istio",
        super::Mesh::GlooMesh => "Gloo Mesh",
        super::Mesh::Kmesh => "Kmesh",
    }
}
