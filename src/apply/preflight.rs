//! Before anything changes: the plan's soundness and clusters, the `--confirm-manual` ids, the API
//! server each context must still name, an unfinished apply of this plan, and the journal each cluster
//! keeps ([`open_journal`]). The orchestration that runs these in order is [`super::run`].

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::describe::hint_target;
use super::error::{ApplyError, UnfinishedApply};
use super::journal::{self, Journal, JournalStore, StepState};
use super::{ApplyOptions, ApplyTarget};
use crate::plan::{Action, UpgradePlan, recorded_server, server_identity};
use crate::snapshot::ClusterSnapshot;

/// The journals of an unfinished apply of this very plan, per cluster. A journal that cannot be read
/// counts as none (the staleness check then applies, and opening the journal later reports it).
pub(super) async fn unfinished_journals(
    target: &ApplyTarget,
    clusters: &[String],
    namespaces: &BTreeMap<String, String>,
    plan: &UpgradePlan,
) -> BTreeMap<String, Journal> {
    let hash = journal::plan_hash(plan);
    let mut found = BTreeMap::new();
    for c in clusters {
        let Ok(client) = target.client(c) else {
            continue;
        };
        let mut store = JournalStore::new(client.clone(), &namespaces[c]);
        if let Ok(Some(j)) = store.load().await
            && j.plan == hash
            && !j.is_finished()
        {
            found.insert(c.clone(), j);
        }
    }
    found
}

/// The ids of the plan's manual steps, in plan order.
pub fn manual_step_ids(plan: &UpgradePlan) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| matches!(s.action, Action::Manual { .. }))
        .map(|s| s.id.clone())
        .collect()
}

/// Every id given to `--confirm-manual` names a manual step of the plan. Pure.
pub fn check_confirmed_ids(
    plan: &UpgradePlan,
    confirmed: &BTreeSet<String>,
) -> Result<(), ApplyError> {
    let manual = manual_step_ids(plan);
    let unknown: Vec<String> = confirmed
        .iter()
        .filter(|id| !manual.contains(id))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::UnknownManualStep { unknown, manual })
    }
}

/// The manual steps an unattended run would stop at: not confirmed ahead and not recorded done in
/// this plan's unfinished journal, as (id, title). Pure.
pub fn unconfirmed_manual_steps(
    plan: &UpgradePlan,
    confirmed: &BTreeSet<String>,
    journals: &BTreeMap<String, Journal>,
) -> Vec<(String, String)> {
    plan.steps
        .iter()
        .filter(|s| matches!(s.action, Action::Manual { .. }))
        .filter(|s| !confirmed.contains(&s.id))
        .filter(|s| {
            journals
                .get(&s.cluster)
                .is_none_or(|j| j.state(&s.id) != StepState::Done)
        })
        .map(|s| (s.id.clone(), s.title.clone()))
        .collect()
}

/// The plan's clusters that have steps, in the plan's order; and the plan's basic soundness.
pub(super) fn clusters_in_order(plan: &UpgradePlan) -> Result<Vec<String>, ApplyError> {
    let mut seen_ids = std::collections::BTreeSet::new();
    for step in &plan.steps {
        if !seen_ids.insert(step.id.as_str()) {
            return Err(ApplyError::InvalidPlan(format!(
                "step id {} appears twice",
                step.id
            )));
        }
    }
    let mut clusters: Vec<String> = Vec::new();
    for name in plan
        .clusters
        .iter()
        .chain(plan.steps.iter().map(|s| &s.cluster))
    {
        if plan.steps.iter().any(|s| &s.cluster == name) && !clusters.contains(name) {
            clusters.push(name.clone());
        }
    }
    Ok(clusters)
}

/// The API server each cluster must name for tools to run: the one the plan recorded, else (a plan
/// made before servers were recorded) the one apply observed the cluster at just now.
pub(super) fn expected_servers(
    plan: &UpgradePlan,
    current: &ClusterSnapshot,
    clusters: &[String],
) -> BTreeMap<String, Option<String>> {
    clusters
        .iter()
        .map(|c| {
            let recorded = recorded_server(&plan.fingerprint, c).map(String::from);
            let observed = journal::snapshot_cluster(current, c)
                .and_then(|o| o.server.as_deref())
                .map(server_identity);
            (c.clone(), recorded.or(observed))
        })
        .collect()
}

/// One cluster's journal and the store it is saved to.
pub(super) struct ClusterJournal {
    pub(super) store: JournalStore,
    pub(super) journal: Journal,
}

/// Opens `cluster`'s journal for `plan`: this plan's (resumed), or a fresh one replacing a finished
/// apply's; an unfinished apply of another plan is refused.
pub(super) async fn open_journal(
    client: &kube::Client,
    cluster: &str,
    namespace: &str,
    plan: &UpgradePlan,
    options: &ApplyOptions,
) -> Result<ClusterJournal, ApplyError> {
    let journal_err = |source| ApplyError::Journal {
        cluster: cluster.to_string(),
        source,
    };
    let mut store = JournalStore::new(client.clone(), namespace);
    let existing = store.load().await.map_err(journal_err)?;
    let hash = journal::plan_hash(plan);
    let journal = match existing {
        Some(j) if j.plan == hash => j,
        Some(j) if !j.is_finished() => {
            return Err(ApplyError::OtherPlanInProgress(Box::new(UnfinishedApply {
                cluster: cluster.to_string(),
                namespace: namespace.to_string(),
                plan: j.plan.chars().take(12).collect(),
                targets: j.targets.clone(),
                done: j.done_count(),
                total: j.steps.len(),
                started_at: j.started_at.clone(),
                kubectl: hint_target(options, cluster).kubectl(),
            })));
        }
        _ => {
            let fresh = Journal::new(plan, cluster, Timestamp::now().to_string());
            store.save(&fresh).await.map_err(journal_err)?;
            fresh
        }
    };
    Ok(ClusterJournal { store, journal })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::test_plans::{manual, plan_with, step};
    use crate::plan::{Action, Gate};

    fn gate(id: &str, cluster: &str) -> crate::plan::Step {
        step(
            id,
            cluster,
            Action::Gate {
                gate: Gate::CheckPasses,
            },
        )
    }

    #[test]
    fn clusters_come_in_the_plan_s_order_and_only_when_they_have_steps() {
        let plan = plan_with(
            &["b", "idle", "a"],
            vec![gate("1", "a"), gate("2", "b"), gate("3", "c")],
        );
        assert_eq!(clusters_in_order(&plan).unwrap(), ["b", "a", "c"]);
    }

    #[test]
    fn a_step_id_used_twice_makes_the_plan_invalid() {
        let plan = plan_with(&["a"], vec![gate("1", "a"), gate("1", "a")]);
        let err = clusters_in_order(&plan).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the plan is not valid: step id 1 appears twice; make a new plan"
        );
    }

    #[test]
    fn confirm_manual_may_name_only_manual_steps() {
        let plan = plan_with(&["a"], vec![gate("g", "a"), manual("m", "a")]);
        assert_eq!(manual_step_ids(&plan), ["m"]);
        assert!(check_confirmed_ids(&plan, &BTreeSet::from(["m".to_string()])).is_ok());
        let err = check_confirmed_ids(&plan, &BTreeSet::from(["g".to_string()])).unwrap_err();
        assert!(matches!(
            err,
            ApplyError::UnknownManualStep { ref unknown, ref manual }
                if unknown == &["g"] && manual == &["m"]
        ));
    }

    #[test]
    fn a_manual_step_done_in_the_journal_or_confirmed_ahead_is_not_asked_again() {
        let plan = plan_with(
            &["a"],
            vec![manual("m1", "a"), manual("m2", "a"), manual("m3", "a")],
        );
        let mut journal = Journal::new(&plan, "a", "2026-01-01T00:00:00Z".into());
        journal.record_mut("m1").state = StepState::Done;
        let journals = BTreeMap::from([("a".to_string(), journal)]);
        let confirmed = BTreeSet::from(["m2".to_string()]);
        assert_eq!(
            unconfirmed_manual_steps(&plan, &confirmed, &journals),
            [("m3".to_string(), "title of m3".to_string())]
        );
        assert_eq!(
            unconfirmed_manual_steps(&plan, &BTreeSet::new(), &BTreeMap::new()).len(),
            3
        );
    }
}
