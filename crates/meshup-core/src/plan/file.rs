//! Plan files: stable YAML (or JSON) that a reviewer reads and `apply` executes exactly as reviewed.
//!
//! `integrity` is the sha256 of the plan's canonical JSON (sorted keys, no whitespace) without the
//! `integrity` field. `load` refuses a file whose hash does not match, so a hand-edited or truncated
//! plan cannot be applied.

use std::collections::BTreeSet;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::fingerprint::hex;
use super::{PLAN_KIND, UpgradePlan};
use crate::snapshot::API_VERSION;

const REPLAN: &str = "re-run `kubectl meshup plan` to write a new plan";

/// Why a plan file was refused. Every message is one line and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanFileError {
    #[error("the plan file is empty; {REPLAN}")]
    Empty,
    #[error("the plan file is not valid {format} ({message}); it may be truncated: {REPLAN}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    #[error(
        "the file is a `{found}` document, not an UpgradePlan; pass a file written by `kubectl meshup plan`"
    )]
    WrongKind { found: String },
    #[error(
        "the plan's apiVersion is `{found}`, but this kubectl-meshup reads {API_VERSION}; {REPLAN} with this version"
    )]
    WrongApiVersion { found: String },
    #[error(
        "the plan file does not match the UpgradePlan schema ({message}); it may be truncated or hand-edited: {REPLAN}"
    )]
    Schema { message: String },
    #[error("the plan file has no integrity hash, so it cannot be checked; {REPLAN}")]
    MissingIntegrity,
    #[error(
        "the plan file was changed after `kubectl meshup plan` wrote it (integrity hash mismatch); {REPLAN} instead of editing the file"
    )]
    IntegrityMismatch,
    #[error("the plan file is inconsistent ({message}); {REPLAN}")]
    Invalid { message: String },
    #[error("the plan file's {field} is {value}, above the limit of {limit}; {REPLAN}")]
    Limit {
        /// Where: `steps[3].action.timeoutSeconds (step c-04-wait)`.
        field: String,
        value: String,
        limit: String,
    },
}

/// The longest wait, gate or tool timeout a plan may ask for: 7 days. The runbooks use minutes.
pub const MAX_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;
/// The most replicas a scale step may set.
pub const MAX_REPLICAS: u64 = 10_000;
/// The longest text a plan may hold in one string (a fact listing the sidecar workloads of a big
/// namespace is the longest the planner writes).
pub const MAX_TEXT_CHARS: usize = 1 << 20;
/// The most entries of one list (steps, arguments, workloads).
pub const MAX_LIST_ITEMS: usize = 100_000;

/// The plan as stable, diff-friendly YAML, with `integrity` set.
pub fn to_yaml(plan: &UpgradePlan) -> String {
    let sealed = sealed(plan);
    // Plain structs with string keys always serialize; JSON (valid YAML) is the fallback all the same.
    // One line per value (no folded blocks), so a changed reason is a one-line diff.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    // A plan holding characters a terminal would obey (only a crafted one does) is written as JSON
    // (valid YAML), where they are `\u` escapes: the same plan, safe to show.
    serde_saphyr::to_string_with_options(&sealed, options)
        .ok()
        .filter(|yaml| !crate::text::has_control(yaml))
        .unwrap_or_else(|| json_of(&sealed))
}

/// The plan as pretty JSON, with `integrity` set.
pub fn to_json(plan: &UpgradePlan) -> String {
    json_of(&sealed(plan))
}

/// Reads a plan written by [`to_yaml`] or [`to_json`], checking kind, apiVersion, schema and integrity.
/// Never panics, whatever the input.
pub fn load(text: &str) -> Result<UpgradePlan, PlanFileError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(PlanFileError::Empty);
    }
    let is_json = trimmed.starts_with('{');
    let format = if is_json { "JSON" } else { "YAML" };

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Header {
        api_version: Option<serde_json::Value>,
        kind: Option<serde_json::Value>,
    }
    let header: Header =
        parse(trimmed, is_json).map_err(|message| PlanFileError::Syntax { format, message })?;
    let as_text = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => "(missing)".to_string(),
    };
    let kind = as_text(header.kind);
    if kind != PLAN_KIND {
        return Err(PlanFileError::WrongKind { found: kind });
    }
    let api_version = as_text(header.api_version);
    if api_version != API_VERSION {
        return Err(PlanFileError::WrongApiVersion { found: api_version });
    }
    let plan: UpgradePlan =
        parse(trimmed, is_json).map_err(|message| PlanFileError::Schema { message })?;
    check_limits(&plan)?;
    let Some(stored) = plan.integrity.clone() else {
        return Err(PlanFileError::MissingIntegrity);
    };
    if stored != integrity_of(&plan) {
        return Err(PlanFileError::IntegrityMismatch);
    }
    let mut ids = BTreeSet::new();
    for step in &plan.steps {
        if !ids.insert(step.id.as_str()) {
            return Err(PlanFileError::Invalid {
                message: format!("step id {} appears twice", step.id),
            });
        }
    }
    Ok(plan)
}

/// Durations, counts and lengths within bounds, so no value in a plan can overflow a deadline or a
/// count later: the first one outside, named by its place in the file.
pub fn check_limits(plan: &UpgradePlan) -> Result<(), PlanFileError> {
    let value = serde_json::to_value(plan).unwrap_or_default();
    let step_ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    walk(&value, &mut String::new(), &step_ids)
}

fn walk(
    value: &serde_json::Value,
    path: &mut String,
    step_ids: &[&str],
) -> Result<(), PlanFileError> {
    use serde_json::Value;
    let too_big = |path: &str, value: String, limit: String| {
        let step = path
            .strip_prefix("steps[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| step_ids.get(n))
            .map(|id| format!(" (step {})", crate::text::escape_control(id)))
            .unwrap_or_default();
        Err(PlanFileError::Limit {
            field: format!("{path}{step}"),
            value,
            limit,
        })
    };
    match value {
        Value::Number(n) => {
            let key = path.rsplit('.').next().unwrap_or_default();
            let limit = match key {
                "timeoutSeconds" => Some((MAX_TIMEOUT_SECONDS, "604800 seconds (7 days)")),
                "replicas" => Some((MAX_REPLICAS, "10000 replicas")),
                _ => None,
            };
            if let Some((max, shown)) = limit
                && n.as_u64().is_none_or(|v| v > max)
            {
                return too_big(path, n.to_string(), shown.to_string());
            }
        }
        Value::String(text) => {
            let chars = text.chars().count();
            if chars > MAX_TEXT_CHARS {
                return too_big(
                    path,
                    format!("a text of {chars} characters"),
                    format!("{MAX_TEXT_CHARS} characters"),
                );
            }
        }
        Value::Array(items) => {
            if items.len() > MAX_LIST_ITEMS {
                return too_big(
                    path,
                    format!("a list of {} entries", items.len()),
                    format!("{MAX_LIST_ITEMS} entries"),
                );
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, step_ids)?;
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&crate::text::escape_control(key));
                walk(item, path, step_ids)?;
                path.truncate(len);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
    Ok(())
}

/// sha256 of the canonical JSON of the plan without its `integrity`.
pub fn integrity_of(plan: &UpgradePlan) -> String {
    let mut unsealed = plan.clone();
    unsealed.integrity = None;
    // serde_json's `Value` keeps object keys sorted, which makes the form canonical.
    let canonical = serde_json::to_value(&unsealed)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default();
    format!("sha256:{}", hex(&Sha256::digest(&canonical)))
}

fn sealed(plan: &UpgradePlan) -> UpgradePlan {
    let mut p = plan.clone();
    p.integrity = Some(integrity_of(plan));
    p
}

/// Pretty JSON with nothing raw for a terminal to obey ([`crate::text::escape_json_text`]).
fn json_of(plan: &UpgradePlan) -> String {
    let s = serde_json::to_string_pretty(plan).unwrap_or_default();
    let mut s = crate::text::escape_json_text(&s).into_owned();
    s.push('\n');
    s
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, is_json: bool) -> Result<T, String> {
    let result = if is_json {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    };
    result.map_err(|m| one_line(&m))
}

fn one_line(message: &str) -> String {
    let mut s: String = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}
