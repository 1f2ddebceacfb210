//! `apply` of the Gloo Mesh pre-1.0 runbook against the real API server: `--dry-run` changes
//! nothing, `--yes` carries out every step and leaves the cluster as the runbook says.

use kubectl_meshup::apply::journal::StepState;

use crate::real::gloo::{self, DISCOVERY_GROUP, GlooMesh, NAMESPACE};
use crate::real::harness::{RealCluster, text};
use crate::support::storage_versions;

/// `apply --dry-run` sends every write with `dryRun=All`: the real API server validates them
/// (admission, schemas, the scale subresource) and stores nothing. Every object the plan touches
/// keeps its resourceVersion, and neither journal nor lock is written.
#[test]
fn dry_run_changes_nothing() {
    let mut cluster = RealCluster::start();
    let gloo = GlooMesh::install(&mut cluster);
    let plan = gloo::write_plan(&cluster, &gloo);
    let before = gloo::state(&cluster);
    assert!(
        before.contains_key(&format!(
            "TrafficTarget {NAMESPACE}/reviews-bookinfo-mgmt-cluster"
        )),
        "{before:#?}"
    );

    let plan_arg = plan.display().to_string();
    // Without the operator's approval the mirror is outside the plan's scope: the plan file alone
    // cannot name another chart repository. Refused before anything runs.
    let out = gloo.meshup(
        &cluster,
        cluster.kubeconfig(),
        &["apply", &plan_arg, "--yes", "--force-conflicts"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "apply without the mirror: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: the plan reaches outside its scope at step real-07-crds-1-0-0: applies the CRDs of chart gloo-mesh from {}; only gloo-mesh from https://storage.googleapis.com/gloo-mesh/gloo-mesh (or a mirror approved with `apply --allow-chart-repo URL`) may be applied; nothing was changed",
            gloo.repo.url
        )),
        "{stderr}"
    );
    eprintln!("apply without --allow-chart-repo: {stderr}");
    assert_eq!(
        gloo::state(&cluster),
        before,
        "the refused apply changed something"
    );
    assert!(
        gloo.meshctl_calls().is_empty(),
        "{:?}",
        gloo.meshctl_calls()
    );

    let out = gloo.meshup(
        &cluster,
        cluster.kubeconfig(),
        &[
            "apply",
            &plan_arg,
            "--allow-chart-repo",
            &gloo.repo.url,
            "--dry-run",
            "--yes",
            "--force-conflicts",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "apply --dry-run: {stderr}");

    let after = gloo::state(&cluster);
    assert_eq!(
        before, after,
        "apply --dry-run changed the cluster: {stderr}"
    );
    assert!(
        cluster
            .try_get("configmaps", Some(NAMESPACE), "kubectl-meshup-journal")
            .is_none()
    );
    assert!(
        cluster
            .try_get("leases", Some(NAMESPACE), "kubectl-meshup-lock")
            .is_none()
    );
    assert!(
        gloo.meshctl_calls().iter().all(|c| c == "meshctl version"),
        "dry-run runs no tool but version gates: {:?}",
        gloo.meshctl_calls()
    );
}

/// The whole runbook with `--yes`: the real helm upgrades the release from the chart repository on
/// 127.0.0.1, the CRDs are applied server-side, discovery's v1alpha2 objects are deleted and
/// rediscovered at v1, the Deployments scaled down and up again and rolled out by the real
/// controllers, and the journal records every step done.
#[test]
fn gloo_mesh_pre_1_0_runbook() {
    let mut cluster = RealCluster::start();
    let gloo = GlooMesh::install(&mut cluster);
    let plan = gloo::write_plan(&cluster, &gloo);
    let _discovery = gloo::play_discovery(&cluster);

    let plan_arg = plan.display().to_string();
    // helm created the 0.10 CRDs, so their fields belong to field manager `helm`: the real API
    // server refuses to let a server-side apply change them without force. apply stops at the CRD
    // step, naming the conflict and the flag.
    let out = gloo.meshup(
        &cluster,
        cluster.kubeconfig(),
        &[
            "apply",
            &plan_arg,
            "--allow-chart-repo",
            &gloo.repo.url,
            "--yes",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "apply: {stderr}");
    assert!(
        stderr.contains(
            "error: step real-07-crds-1-0-0 failed: server-side apply of CustomResourceDefinition meshes.discovery.mesh.gloo.solo.io conflicts with another field manager: Apply failed with 1 conflict: conflict with \"helm\" using apiextensions.k8s.io/v1: .spec.versions; re-run with --force-conflicts"
        ),
        "{stderr}"
    );
    let crd = cluster.get_json(&["crd", &format!("meshes.{DISCOVERY_GROUP}")]);
    assert_eq!(
        crd["spec"]["versions"][0]["name"], "v1alpha2",
        "CRD unchanged"
    );

    // Resumed with --force-conflicts: the CRD step is run again and the rest of the plan follows.
    let out = gloo.apply(&cluster, cluster.kubeconfig(), &plan_arg);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "apply: {stderr}");
    let journal = gloo::journal(&cluster).expect("journal");
    assert_eq!(
        journal.steps["real-07-crds-1-0-0"].attempts, 2,
        "{journal:#?}"
    );
    assert_eq!(
        journal.steps["real-02-scale-down-discovery"].attempts, 1,
        "{journal:#?}"
    );

    assert_upgraded(&mut cluster);
    // Every tool runs against the plan's cluster: the kubeconfig apply read and the plan's context.
    // `meshctl version` once per apply run (the first stopped at the CRD step, the second resumed).
    let on_cluster = format!(
        "--kubeconfig {} --kubecontext real",
        cluster.kubeconfig().display()
    );
    assert_eq!(
        gloo.meshctl_calls(),
        [
            format!("meshctl version {on_cluster}"),
            format!("meshctl version {on_cluster}"),
            format!("meshctl check {on_cluster}"),
        ]
    );
}

/// The cluster after the whole runbook: what every step left, read back from the API server.
pub fn assert_upgraded(cluster: &mut RealCluster) {
    // Deployments: upgraded by helm to 1.0.0 and back at one replica, rolled out by the controllers.
    for name in ["discovery", "networking"] {
        let d = cluster.get_json(&["deployment", name, "-n", NAMESPACE]);
        assert_eq!(d["spec"]["replicas"], 1, "{name}: {d:#}");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "gcr.io/gloo-mesh/gloo-mesh:1.0.0",
            "{name}"
        );
        assert_eq!(d["metadata"]["labels"]["helm.sh/chart"], "gloo-mesh-1.0.0");
    }
    cluster.wait_until(
        "networking available",
        std::time::Duration::from_secs(60),
        |c| c.get_json(&["deployment", "networking", "-n", NAMESPACE])["status"]["availableReplicas"] == 1,
    );
    // The release: revision 2 at chart 1.0.0.
    let releases = gloo::helm(cluster)
        .args(["list", "-n", NAMESPACE, "-o", "json"])
        .output()
        .expect("helm list");
    let releases: serde_json::Value = serde_json::from_slice(&releases.stdout).expect("helm list");
    assert_eq!(releases[0]["chart"], "gloo-mesh-1.0.0", "{releases:#}");
    assert_eq!(releases[0]["revision"], "2", "{releases:#}");

    // CRDs: the 1.0 ones, applied server-side by kubectl-meshup, serving v1.
    for crd in ["meshes", "destinations", "workloads"] {
        let d = cluster.get_json(&[
            "crd",
            &format!("{crd}.{DISCOVERY_GROUP}"),
            "--show-managed-fields",
        ]);
        assert_eq!(storage_versions(&d), ["v1"], "{crd}");
        assert!(
            d["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["manager"] == "kubectl-meshup" && f["operation"] == "Apply"),
            "{crd}: applied server-side by kubectl-meshup"
        );
    }
    // Discovery objects: 0.10's traffic target gone, 1.0's destinations written back.
    let tt = cluster.get_json(&[&format!("traffictargets.{DISCOVERY_GROUP}"), "-A"]);
    assert_eq!(tt["items"].as_array().map(Vec::len), Some(0), "{tt:#}");
    for r in ["meshes", "destinations", "workloads"] {
        let list = cluster.get_json(&[&format!("{r}.v1.{DISCOVERY_GROUP}"), "-A"]);
        assert_eq!(
            list["items"].as_array().map(Vec::len),
            Some(1),
            "{r}: {list:#}"
        );
    }
    // The user's networking resource is untouched.
    assert!(
        cluster
            .try_get(
                "virtualmeshes.networking.mesh.gloo.solo.io",
                Some(NAMESPACE),
                "virtual-mesh"
            )
            .is_some()
    );
    // The journal: every step done; the lock released.
    let journal = gloo::journal(cluster).expect("journal written");
    assert_eq!(journal.steps.len(), 15, "{journal:#?}");
    assert!(
        journal.steps.values().all(|s| s.state == StepState::Done),
        "{journal:#?}"
    );
    assert!(journal.finished_at.is_some(), "{journal:#?}");
    assert!(
        cluster
            .try_get("leases", Some(NAMESPACE), "kubectl-meshup-lock")
            .is_none(),
        "the lock is released"
    );
}
