//! Plans and steps for apply's unit tests.

use std::collections::BTreeMap;

use crate::plan::{
    Action, Fingerprint, Mesh, PlanMetadata, Reason, Step, Strategy, Target, UpgradePlan,
};
use crate::version::Version;

pub fn plan_with(clusters: &[&str], steps: Vec<Step>) -> UpgradePlan {
    UpgradePlan {
        api_version: "meshup.dev/v1alpha1".into(),
        kind: "UpgradePlan".into(),
        metadata: PlanMetadata {
            tool_version: "0.1.0".into(),
            compat_data: "2025-01-01".into(),
            compat_data_from: None,
            created_at: None,
        },
        targets: vec![Target {
            mesh: Mesh::GlooMesh,
            version: Version::new(1, 0, 0),
            flavor: None,
        }],
        strategy: Strategy::InPlace,
        clusters: clusters.iter().map(|c| c.to_string()).collect(),
        fingerprint: Fingerprint {
            algorithm: "sha256".into(),
            value: "abc".into(),
            facts: BTreeMap::new(),
        },
        components: vec![],
        hops: vec![],
        warnings: vec![],
        steps,
        integrity: None,
    }
}

pub fn step(id: &str, cluster: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        cluster: cluster.into(),
        title: format!("title of {id}"),
        reason: Reason {
            runbook: "gloo-mesh-pre-1.0".into(),
            step: None,
            text: "r".into(),
            source: "s".into(),
        },
        action,
        irreversible: false,
        undo: None,
    }
}

pub fn manual(id: &str, cluster: &str) -> Step {
    step(
        id,
        cluster,
        Action::Manual {
            instructions: format!("do {id}"),
            command: None,
        },
    )
}

/// A client nothing answers (a request fails at once); building it needs a Tokio runtime.
pub fn unreachable_client() -> kube::Client {
    kube::Client::try_from(kube::Config::new(
        "http://127.0.0.1:9".parse().expect("a URL"),
    ))
    .expect("client")
}
