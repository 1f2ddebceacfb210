//! The example snapshots in `examples/` (the README's quick start), judged at a pinned date.

use super::render_table;
use super::testkit::*;
use crate::report::{CheckReport, Severity};
use crate::version::{ImageVersion, KernelVersion, image_version};

fn report_of(path: &str) -> CheckReport {
    super::check(
        &load_example(path),
        &crate::compat::CompatData::embedded(),
        TODAY,
    )
}

fn severity_of(report: &CheckReport, cluster: &str, rule: &str, subject_part: &str) -> Severity {
    let found: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.cluster == cluster && f.rule == rule && f.subject.contains(subject_part))
        .collect();
    match found.as_slice() {
        [one] => one.severity,
        other => {
            panic!("expected one {rule} finding about {subject_part} in {cluster}, got {other:#?}")
        }
    }
}

#[test]
fn examples_are_consistent_with_what_observe_would_read() {
    for path in EXAMPLES {
        let snapshot = load_example(path);
        assert_eq!(snapshot.kind, "ClusterSnapshot", "{path}");
        for cluster in &snapshot.clusters {
            for group in &cluster.nodes {
                let parsed = group
                    .is_linux()
                    .then(|| KernelVersion::parse(&group.kernel_version))
                    .flatten();
                assert_eq!(group.kernel, parsed, "{path}: {}", group.kernel_version);
            }
            let kube =
                crate::version::KubeVersion::from_server(&cluster.kubernetes.git_version, "", "")
                    .unwrap();
            assert_eq!(kube, cluster.kubernetes, "{path}");
            let mut versions = Vec::new();
            if let Some(istio) = &cluster.istio {
                versions.extend(istio.control_planes.iter().map(|cp| &cp.istiod.version));
                versions.extend(istio.proxies.iter().map(|p| &p.version));
                versions.extend(istio.gateways.iter().map(|g| &g.workload.version));
            }
            if let Some(gm) = &cluster.gloo_mesh {
                versions.extend(
                    [&gm.discovery, &gm.networking, &gm.agent]
                        .into_iter()
                        .flatten()
                        .map(|w| &w.version),
                );
            }
            if let Some(k) = &cluster.kmesh {
                versions.push(&k.daemonset.version);
            }
            for v in versions {
                match image_version(&v.image) {
                    ImageVersion::Tagged { version, flavor } => {
                        assert_eq!(v.version, Some(version), "{path}: {}", v.image);
                        assert_eq!(v.flavor, flavor, "{path}: {}", v.image);
                    }
                    other => panic!("{path}: {} reads as {other:?}", v.image),
                }
            }
        }
    }
}

#[test]
fn istio_1_20_on_eks_is_supported_but_past_end_of_life() {
    let r = report_of("examples/istio-1.20-eks.yaml");
    assert_eq!(
        severity_of(&r, "prod-eks", "istio.k8s-support", "1-20-3"),
        Severity::Pass
    );
    assert_eq!(
        severity_of(&r, "prod-eks", "istio.eol", "1-20-3"),
        Severity::Warn
    );
    // The 1.19 proxies in `legacy` reach 1-20-3 through the `default` revision tag, one minor behind.
    assert_eq!(
        severity_of(&r, "prod-eks", "istio.data-plane-skew", "1.19.5"),
        Severity::Info
    );
    assert_eq!(
        severity_of(&r, "prod-eks", "istio.data-plane-skew", "1.20.3"),
        Severity::Pass
    );
    assert_eq!(
        severity_of(&r, "prod-eks", "istio.flavor-mixed", ""),
        Severity::Pass
    );
    assert!(!r.has_failures());
    // No Kmesh here: the Windows node is not judged at all.
    assert!(r.findings.iter().all(|f| !f.rule.starts_with("kmesh.")));
}

#[test]
fn the_gloo_mesh_fleet_fails_where_the_seed_says_it_must() {
    let r = report_of("examples/gloo-mesh-fleet.yaml");
    let seed_case = r
        .findings
        .iter()
        .find(|f| {
            f.cluster == "remote-west"
                && f.rule == "gloo-mesh.k8s-support"
                && f.subject.contains("istiod")
        })
        .unwrap();
    assert_eq!(seed_case.severity, Severity::Fail);
    assert!(
        seed_case
            .message
            .contains("Istio 1.9 does not support Kubernetes 1.22"),
        "{}",
        seed_case.message
    );
    assert_eq!(
        severity_of(&r, "remote-west", "istio.k8s-support", "default"),
        Severity::Fail
    );
    assert_eq!(
        severity_of(&r, "remote-west", "gloo-mesh.remote-skew", "agent"),
        Severity::Warn
    );
    assert_eq!(
        severity_of(&r, "remote-east", "gloo-mesh.remote-skew", "agent"),
        Severity::Pass
    );
    assert_eq!(
        severity_of(&r, "remote-east", "gloo-mesh.istio-support", "istiod"),
        Severity::Pass
    );
    assert_eq!(
        severity_of(&r, "remote-east", "istio.k8s-support", "default"),
        Severity::Pass
    );
    assert!(r.has_failures());
}

#[test]
fn the_kmesh_lab_fails_on_its_centos_7_node() {
    let r = report_of("examples/kmesh.yaml");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "kmesh.kernel" && f.severity == Severity::Fail)
        .unwrap();
    assert!(f.message.contains("lab-worker-legacy"), "{}", f.message);
    assert_eq!(
        severity_of(&r, "edge-lab", "kmesh.dual-engine-ambient", "kmesh"),
        Severity::Pass
    );
    assert_eq!(
        severity_of(&r, "edge-lab", "kmesh.istio-support", "default"),
        Severity::Pass
    );
    assert_eq!(
        severity_of(&r, "edge-lab", "istio.ambient-ga", "default"),
        Severity::Warn
    );
}

#[test]
fn table_of_the_istio_example() {
    insta::assert_snapshot!(render_table(
        &report_of("examples/istio-1.20-eks.yaml"),
        false
    ));
}

#[test]
fn table_of_the_gloo_mesh_fleet() {
    insta::assert_snapshot!(render_table(
        &report_of("examples/gloo-mesh-fleet.yaml"),
        false
    ));
}

#[test]
fn table_of_the_kmesh_example() {
    insta::assert_snapshot!(render_table(&report_of("examples/kmesh.yaml"), false));
}

#[test]
fn colour_is_only_there_when_asked_for() {
    let r = report_of("examples/gloo-mesh-fleet.yaml");
    let coloured = render_table(&r, true);
    assert!(coloured.contains("\x1b[1;31mFAIL\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[1;33mWARN\x1b[0m"), "{coloured}");
    let plain = render_table(&r, false);
    assert!(!plain.contains('\x1b'), "{plain}");
}

#[test]
fn plain_tables_fit_100_columns_except_unbreakable_words() {
    for report in example_reports() {
        for line in render_table(&report, false).lines() {
            let fits = line.chars().count() <= 100;
            let one_long_word = line.split_whitespace().any(|w| w.chars().count() > 80);
            assert!(fits || one_long_word, "{line}");
        }
    }
}
