//! Building the step list: stable, readable ids (`<cluster>-<nn>-<slug>`) and reasons that cite their
//! runbook step.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Reason, Step};

/// A runbook as cited in step reasons: its id, the document it comes from, and how many steps it has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Runbook {
    pub id: &'static str,
    pub source: &'static str,
    pub steps: usize,
}

impl Runbook {
    /// The reason for a step that implements runbook step `n`.
    pub fn step(&self, n: usize, text: impl Into<String>) -> Reason {
        Reason {
            runbook: self.id.to_string(),
            step: Some(format!("step {n} of {}", self.steps)),
            text: text.into(),
            source: self.source.to_string(),
        }
    }

    /// A reason that cites a rule (with its own source) rather than a numbered step.
    pub fn rule(&self, text: impl Into<String>, source: impl Into<String>) -> Reason {
        Reason {
            runbook: self.id.to_string(),
            step: None,
            text: text.into(),
            source: source.into(),
        }
    }
}

/// Steps in plan order, numbered per cluster.
#[derive(Debug, Default)]
pub(crate) struct StepList {
    steps: Vec<Step>,
    per_cluster: BTreeMap<String, usize>,
    ids: BTreeSet<String>,
}

impl StepList {
    /// Appends a step and returns it so the caller can set `irreversible` or `undo`.
    pub fn push(
        &mut self,
        cluster: &str,
        slug: &str,
        title: impl Into<String>,
        reason: Reason,
        action: Action,
    ) -> &mut Step {
        let n = self.per_cluster.entry(cluster.to_string()).or_insert(0);
        *n += 1;
        let base = format!("{}-{:02}-{}", slug_of(cluster), n, slug_of(slug));
        let mut id = base.clone();
        let mut suffix = 2;
        while !self.ids.insert(id.clone()) {
            id = format!("{base}-{suffix}");
            suffix += 1;
        }
        self.steps.push(Step {
            id,
            cluster: cluster.to_string(),
            title: title.into(),
            reason,
            action,
            irreversible: false,
            undo: None,
        });
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }

    pub fn has_steps_for(&self, cluster: &str) -> bool {
        self.per_cluster.contains_key(cluster)
    }

    pub fn into_steps(self) -> Vec<Step> {
        self.steps
    }
}

/// Lower-case ASCII letters, digits and single dashes: `arn:aws:eks:eu-west-1:1234:cluster/prod` becomes
/// `arn-aws-eks-eu-west-1-1234-cluster-prod`.
pub(crate) fn slug_of(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "cluster".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Gate;

    #[test]
    fn ids_are_numbered_per_cluster_and_readable() {
        let rb = Runbook {
            id: "check",
            source: "x",
            steps: 1,
        };
        let mut list = StepList::default();
        let gate = Action::Gate {
            gate: Gate::CheckPasses,
        };
        list.push(
            "arn:aws:eks:eu-west-1:1:cluster/prod",
            "check passes",
            "t",
            rb.step(1, "r"),
            gate.clone(),
        );
        list.push(
            "arn:aws:eks:eu-west-1:1:cluster/prod",
            "check",
            "t",
            rb.step(1, "r"),
            gate.clone(),
        );
        list.push("kind-remote", "check", "t", rb.step(1, "r"), gate);
        let ids: Vec<String> = list.into_steps().into_iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "arn-aws-eks-eu-west-1-1-cluster-prod-01-check-passes",
                "arn-aws-eks-eu-west-1-1-cluster-prod-02-check",
                "kind-remote-01-check"
            ]
        );
    }
}
