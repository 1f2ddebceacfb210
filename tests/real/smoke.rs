//! The control plane comes up as the harness promises, and `check` reads it: Kubernetes v1.34.4 and
//! every node's platform facts, the Windows node included.

use serde_json::Value;

use crate::harness::{KUBERNETES_VERSION, NODES, RealCluster, text};

/// `kubectl meshup snapshot -o json` and `check -o json` against the real API server.
#[test]
fn check_reads_version_and_every_node() {
    let cluster = RealCluster::start();

    // The harness's promises first: /version is v1.34.4, the nodes are Ready.
    let version = cluster.get_json(&["--raw=/version"]);
    assert_eq!(version["gitVersion"], KUBERNETES_VERSION);

    let out = cluster.meshup(&["snapshot", "-o", "json"]);
    assert!(out.status.success(), "snapshot: {}", text(&out.stderr));
    let snapshot: Value = serde_json::from_slice(&out.stdout).expect("snapshot JSON");
    let c = &snapshot["clusters"][0];
    assert_eq!(c["name"], cluster.context());
    assert_eq!(c["server"], cluster.server());
    assert_eq!(c["kubernetes"]["gitVersion"], KUBERNETES_VERSION, "{c:#}");
    assert!(c.get("unread").is_none(), "nothing unread as admin: {c:#}");
    let groups = c["nodes"].as_array().expect("node groups");
    for node in NODES {
        let group = groups
            .iter()
            .find(|g| {
                g["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == node.name))
            })
            .unwrap_or_else(|| panic!("node {} in the snapshot: {groups:#?}", node.name));
        assert_eq!(group["kernelVersion"], node.kernel, "{group:#}");
        assert_eq!(group["osImage"], node.os_image, "{group:#}");
        assert_eq!(group["operatingSystem"], node.os, "{group:#}");
        assert_eq!(group["architecture"], node.arch, "{group:#}");
        assert_eq!(group["kubeletVersion"], KUBERNETES_VERSION, "{group:#}");
        assert_eq!(group["containerRuntimeVersion"], node.runtime, "{group:#}");
    }

    let out = cluster.meshup(&["check", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "check: {}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(report["kind"], "CheckReport");
    assert_eq!(report["clusters"], serde_json::json!([cluster.context()]));
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert_eq!(rules, ["snapshot.no-mesh"], "{report:#}");
}
