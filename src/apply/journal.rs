//! The journal: what an apply has done in one cluster, kept in that cluster so any machine can resume.
//!
//! It is the ConfigMap `kubectl-meshup-journal` in the journal namespace (see [`journal_namespace`]),
//! whose `journal.json` key holds a [`Journal`]. A step is marked `in-progress` (with the values needed
//! to undo it, such as the replicas before a scale-down) *before* the change is made, and `done` after
//! its wait and gate passed, so after any interruption the journal says what may have happened.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::{Action, Mesh, ObjectRef, ReplicasBefore, UpgradePlan};
use crate::snapshot::{Cluster, ClusterSnapshot};

pub const JOURNAL_NAME: &str = "kubectl-meshup-journal";
const JOURNAL_KEY: &str = "journal.json";
const PLAN_KEY: &str = "plan";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "kubectl-meshup";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    /// Started and not known to have finished: resume re-checks it.
    InProgress,
    Done,
    Failed,
    /// Done, then undone after a failure or an abort.
    Undone,
}

/// Values recorded before a change so it can be reversed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UndoRecord {
    /// The replicas the workload had just before the step scaled it (which may differ from the count
    /// the plan observed; for a recording scale-down that found the workload already at zero with its
    /// `meshup.dev/replicas-before` annotation, the annotation's count).
    Scale { target: ObjectRef, replicas: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub state: StepState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How many times the step was started (a resumed step counts again).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoRecord>,
    /// The `restartedAt` value a restart step uses, recorded before the first attempt so a repeated
    /// restart changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<String>,
    /// Who confirmed a manual step done, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<Confirmation>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The binary a tool step ran (or would have run): absent in journals written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolRecord>,
}

/// Which binary a tool step used: its absolute path and the version it reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRecord {
    pub path: String,
    /// `None` when the tool printed no version apply could read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How a manual step was confirmed done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfirmedBy {
    /// Ahead of the run, with `--confirm-manual STEP_ID`.
    ConfirmManualFlag,
    /// At the prompt on the terminal.
    Terminal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub by: ConfirmedBy,
    /// When the apply took the confirmation (RFC 3339).
    pub at: String,
}

impl StepRecord {
    fn pending() -> Self {
        Self {
            state: StepState::Pending,
            started_at: None,
            finished_at: None,
            attempts: 0,
            undo: None,
            restarted_at: None,
            confirmed: None,
            error: None,
            tool: None,
        }
    }
}

/// The journal of one cluster for one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// [`plan_hash`] of the plan being applied.
    pub plan: String,
    /// `gloo-mesh=1.0.0`, for people reading the ConfigMap.
    pub targets: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Step id -> record, for this cluster's steps.
    pub steps: BTreeMap<String, StepRecord>,
}

impl Journal {
    pub fn new(plan: &UpgradePlan, cluster: &str, now: String) -> Self {
        let steps = plan
            .steps
            .iter()
            .filter(|s| s.cluster == cluster)
            .map(|s| (s.id.clone(), StepRecord::pending()))
            .collect();
        Self {
            plan: plan_hash(plan),
            targets: targets_text(plan),
            started_at: now,
            finished_at: None,
            steps,
        }
    }

    pub fn state(&self, step_id: &str) -> StepState {
        self.steps
            .get(step_id)
            .map(|r| r.state)
            .unwrap_or(StepState::Pending)
    }

    pub fn record_mut(&mut self, step_id: &str) -> &mut StepRecord {
        self.steps
            .entry(step_id.to_string())
            .or_insert_with(StepRecord::pending)
    }

    pub fn undo(&self, step_id: &str) -> Option<&UndoRecord> {
        self.steps.get(step_id).and_then(|r| r.undo.as_ref())
    }

    /// The replicas a recording scale-down of `target` (a step of `plan`) saw before it scaled, when
    /// this journal has one above zero: what the matching scale-up restores.
    pub fn replicas_before(&self, plan: &UpgradePlan, target: &ObjectRef) -> Option<u32> {
        plan.steps
            .iter()
            .filter(|s| {
                matches!(&s.action, Action::Scale {
                    target: t,
                    replicas_before: Some(ReplicasBefore::Record),
                    ..
                } if t == target)
            })
            .find_map(|s| match self.undo(&s.id) {
                Some(UndoRecord::Scale { replicas, .. }) if *replicas > 0 => Some(*replicas),
                _ => None,
            })
    }

    pub fn done_count(&self) -> usize {
        self.steps
            .values()
            .filter(|r| r.state == StepState::Done)
            .count()
    }

    /// Finished: every step done (a finished journal may be replaced by a new plan's).
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

/// The identity of a plan: sha256 over its canonical JSON without the `integrity` field, so the same
/// reviewed plan always has the same hash whatever file it was read from.
pub fn plan_hash(plan: &UpgradePlan) -> String {
    let mut unsigned = plan.clone();
    unsigned.integrity = None;
    // Serializing plain data types to JSON cannot fail; the fallback keeps this total anyway.
    let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn targets_text(plan: &UpgradePlan) -> String {
    plan.targets
        .iter()
        .map(|t| format!("{}={}", t.mesh, t.version))
        .collect::<Vec<_>>()
        .join(",")
}

/// The namespace holding the journal and the lock in one cluster: the namespace of the mesh the plan
/// acts on, as observed — Gloo Mesh: the namespace of `discovery` (or `networking`, or the agent);
/// Istio: the namespace of the first istiod; Kmesh: the namespace of its DaemonSet. When the snapshot
/// does not show the mesh, its conventional namespace: `gloo-mesh`, `istio-system`, `kmesh-system`.
/// The first target decides which mesh that is.
pub fn journal_namespace(plan: &UpgradePlan, cluster: Option<&Cluster>) -> String {
    let mesh = plan.targets.first().map(|t| t.mesh).unwrap_or(Mesh::Istio);
    let observed = cluster.and_then(|c| match mesh {
        Mesh::GlooMesh => c.gloo_mesh.as_ref().and_then(|g| {
            [&g.discovery, &g.networking, &g.agent]
                .into_iter()
                .flatten()
                .map(|w| w.namespace.clone())
                .next()
        }),
        Mesh::Istio => c.istio.as_ref().and_then(|i| {
            i.control_planes
                .first()
                .map(|cp| cp.istiod.namespace.clone())
        }),
        Mesh::Kmesh => c.kmesh.as_ref().map(|k| k.daemonset.namespace.clone()),
    });
    observed.unwrap_or_else(|| {
        match mesh {
            Mesh::GlooMesh => "gloo-mesh",
            Mesh::Istio => "istio-system",
            Mesh::Kmesh => "kmesh-system",
        }
        .to_string()
    })
}

/// The snapshot's facts about the named cluster.
pub fn snapshot_cluster<'a>(snapshot: &'a ClusterSnapshot, name: &str) -> Option<&'a Cluster> {
    snapshot.clusters.iter().find(|c| c.name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read or write ConfigMap {namespace}/{JOURNAL_NAME}: {}", crate::client::brief(.source))]
    Api {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "ConfigMap {namespace}/{JOURNAL_NAME} does not hold a readable journal ({reason}); inspect it, and delete it if it is not needed"
    )]
    Unreadable { namespace: String, reason: String },
}

/// The journal ConfigMap of one cluster, read and written with optimistic concurrency (resourceVersion).
pub struct JournalStore {
    api: Api<ConfigMap>,
    namespace: String,
    resource_version: Option<String>,
}

impl JournalStore {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            resource_version: None,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn api_error(&self, source: kube::Error) -> JournalError {
        JournalError::Api {
            namespace: self.namespace.clone(),
            source,
        }
    }

    /// The journal now in the cluster, if any.
    pub async fn load(&mut self) -> Result<Option<Journal>, JournalError> {
        let found = self
            .api
            .get_opt(JOURNAL_NAME)
            .await
            .map_err(|e| self.api_error(e))?;
        let Some(cm) = found else {
            self.resource_version = None;
            return Ok(None);
        };
        self.resource_version = cm.metadata.resource_version.clone();
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get(JOURNAL_KEY))
            .ok_or_else(|| JournalError::Unreadable {
                namespace: self.namespace.clone(),
                reason: format!("no `{JOURNAL_KEY}` key"),
            })?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| JournalError::Unreadable {
                namespace: self.namespace.clone(),
                reason: e.to_string(),
            })
    }

    /// Write the journal: create it, or replace the version last read (a concurrent writer makes this
    /// fail with a conflict instead of being overwritten).
    pub async fn save(&mut self, journal: &Journal) -> Result<(), JournalError> {
        // Failure reasons quote tools' last lines, which can carry credentials: stored redacted.
        let mut journal = journal.clone();
        for record in journal.steps.values_mut() {
            if let Some(error) = &mut record.error {
                *error = crate::redact::text(error);
            }
        }
        let journal = &journal;
        let text = serde_json::to_string_pretty(journal).map_err(|e| JournalError::Unreadable {
            namespace: self.namespace.clone(),
            reason: e.to_string(),
        })?;
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(JOURNAL_NAME.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY_LABEL.to_string(),
                    MANAGED_BY.to_string(),
                )])),
                resource_version: self.resource_version.clone(),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                (PLAN_KEY.to_string(), journal.plan.clone()),
                (JOURNAL_KEY.to_string(), text),
            ])),
            ..ConfigMap::default()
        };
        let written = match self.resource_version {
            Some(_) => self
                .api
                .replace(JOURNAL_NAME, &PostParams::default(), &cm)
                .await
                .map_err(|e| self.api_error(e))?,
            None => self
                .api
                .create(&PostParams::default(), &cm)
                .await
                .map_err(|e| self.api_error(e))?,
        };
        self.resource_version = written.metadata.resource_version;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::test_plans::{manual, plan_with};

    #[test]
    fn plan_hash_ignores_integrity_and_sees_steps() {
        let plan = plan_with(&["mgmt"], vec![manual("a", "mgmt")]);
        let mut signed = plan.clone();
        signed.integrity = Some("sha256:whatever".into());
        assert_eq!(plan_hash(&plan), plan_hash(&signed));
        let other = plan_with(&["mgmt"], vec![manual("b", "mgmt")]);
        assert_ne!(plan_hash(&plan), plan_hash(&other));
    }

    #[test]
    fn journal_holds_only_its_clusters_steps() {
        let plan = plan_with(&["mgmt"], vec![manual("a", "mgmt"), manual("b", "remote")]);
        let j = Journal::new(&plan, "mgmt", "now".into());
        assert_eq!(j.steps.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(j.state("a"), StepState::Pending);
        assert_eq!(j.targets, "gloo-mesh=1.0.0");
    }

    #[test]
    fn a_journal_written_before_tool_records_still_reads() {
        let old = r#"{"plan":"abc","targets":"istio=1.24.2","startedAt":"2026-01-01T00:00:00Z",
            "steps":{"istio-01":{"state":"done","attempts":1}}}"#;
        let j: Journal = serde_json::from_str(old).expect("old journal");
        assert_eq!(j.state("istio-01"), StepState::Done);
        assert_eq!(j.steps["istio-01"].tool, None);
        let mut new = j.clone();
        new.record_mut("istio-01").tool = Some(ToolRecord {
            path: "/usr/local/bin/istioctl".into(),
            version: Some("1.24.2".into()),
        });
        let text = serde_json::to_string(&new).expect("write");
        assert!(
            text.contains(r#""tool":{"path":"/usr/local/bin/istioctl","version":"1.24.2"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Journal>(&text).expect("read"), new);
    }

    #[test]
    fn journal_namespace_falls_back_to_the_mesh_convention() {
        let plan = plan_with(&["mgmt"], vec![]);
        assert_eq!(journal_namespace(&plan, None), "gloo-mesh");
    }
}
