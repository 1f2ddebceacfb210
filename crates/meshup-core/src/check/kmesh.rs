//! Kmesh rules: node kernels, the Kmesh row (version and mode) against Istio and Kubernetes, and what
//! each mode needs (ambient istiod for Dual-Engine, kernel patches for Kernel-Native L7).

use super::Rule;
use std::collections::BTreeMap;

use super::istio::control_plane_subject;
use super::{Findings, agree, fmt_list, fmt_minors, plural, replicas};
use crate::compat::{CompatData, KmeshRelease};
use crate::report::Severity;
use crate::snapshot::{Cluster, Kmesh, KmeshMode, NodeGroup};
use crate::verdict::{K8sRange, KernelVerdict, k8s_range, kmesh_kernel};

/// Node names listed in one finding before "and N more".
const NODES_NAMED: usize = 8;

pub(super) fn check(cluster: &Cluster, compat: &CompatData, out: &mut Findings) {
    let Some(kmesh) = &cluster.kmesh else {
        return;
    };
    replicas::judge(
        cluster,
        Rule::KmeshReplicasReady,
        "kmesh",
        "the Kmesh daemon",
        &kmesh.daemonset,
        out,
    );
    kernels(cluster, compat, out);
    let mode = match &kmesh.mode {
        KmeshMode::Unknown(raw) => {
            out.push(
                &cluster.name,
                Rule::KmeshModeKnown,
                Severity::Warn,
                "kmesh",
                format!(
                    "Kmesh runs in mode `{raw}` (from {}), which this build does not know; its Istio and Kubernetes \
                     support and mode requirements are unjudged — update kubectl-meshup",
                    kmesh.mode_source
                ),
                "the snapshot",
            );
            return;
        }
        mode => mode,
    };
    if let Some(row) = release(cluster, kmesh, mode, compat, out) {
        istio_support(cluster, mode, row, out);
        k8s_support(cluster, mode, row, out);
    }
    match mode {
        KmeshMode::DualEngine => dual_engine_ambient(cluster, compat, out),
        KmeshMode::KernelNative => kernel_native_l7(cluster, compat, out),
        KmeshMode::Unknown(_) => {}
    }
}

fn mode_name(mode: &KmeshMode) -> &str {
    match mode {
        KmeshMode::DualEngine => "Dual-Engine",
        KmeshMode::KernelNative => "Kernel-Native",
        KmeshMode::Unknown(raw) => raw,
    }
}

/// The Kmesh row for the running version and mode, or a warning saying why there is none.
fn release<'a>(
    cluster: &Cluster,
    kmesh: &Kmesh,
    mode: &KmeshMode,
    compat: &'a CompatData,
    out: &mut Findings,
) -> Option<&'a KmeshRelease> {
    let Some(version) = kmesh.daemonset.version.version else {
        out.push(
            &cluster.name,
            Rule::KmeshVersionRead,
            Severity::Warn,
            "kmesh",
            format!(
                "the Kmesh version of {}/{} could not be read ({}); its Istio and Kubernetes support are unjudged",
                kmesh.daemonset.namespace, kmesh.daemonset.name, kmesh.daemonset.version.image
            ),
            "the snapshot",
        );
        return None;
    };
    let row = compat.kmesh_release(version.minor_line(), mode);
    if row.is_none() {
        let known: Vec<_> = compat
            .kmesh
            .releases
            .iter()
            .filter_map(|r| r.minor)
            .collect();
        let newer = known.iter().all(|k| *k < version.minor_line());
        let why = if newer {
            "newer than this build knows — update kubectl-meshup or pass --compat FILE with newer data"
        } else {
            "the data has no row for it"
        };
        out.push(
            &cluster.name,
            Rule::KmeshVersionKnown,
            Severity::Warn,
            "kmesh",
            format!(
                "Kmesh {version} ({}) is not in the compatibility data (data dated {}, rows {}.x); {why}. \
                 Its Istio and Kubernetes support are unjudged",
                mode_name(mode),
                compat.date,
                fmt_minors(&known)
            ),
            &format!("compatibility data dated {}", compat.date),
        );
    }
    row
}

fn row_name(row: &KmeshRelease, mode: &KmeshMode) -> String {
    match row.minor {
        Some(minor) => format!("Kmesh {minor}.x ({})", mode_name(mode)),
        None => format!("Kmesh main/latest ({})", mode_name(mode)),
    }
}

fn istio_support(cluster: &Cluster, mode: &KmeshMode, row: &KmeshRelease, out: &mut Findings) {
    let name = row_name(row, mode);
    let supported = fmt_minors(&row.istio);
    let control_planes = cluster.istio_control_planes();
    if control_planes.is_empty() {
        out.push(
            &cluster.name,
            Rule::KmeshIstioSupport,
            Severity::Fail,
            "kmesh",
            format!("{name} uses istiod as its control plane, but no istiod was found; install Istio {supported}"),
            &row.source,
        );
        return;
    }
    let lowest = row.istio.iter().min();
    for cp in control_planes {
        let Some(version) = cp.istiod.version.version else {
            continue; // istio.version-read says why.
        };
        let istio = version.minor_line();
        let (severity, message) = if row.istio.contains(&istio) {
            (Severity::Pass, format!("{name} supports Istio {istio}"))
        } else if *mode == KmeshMode::KernelNative && lowest.is_some_and(|l| istio < *l) {
            (
                Severity::Warn,
                format!(
                    "{name} lists Istio {supported}, not {istio}; Kernel-Native mode does not need ambient and is only \
                     theoretically compatible with older istiod — upgrade Istio to {supported}"
                ),
            )
        } else {
            (
                Severity::Fail,
                format!(
                    "{name} does not support Istio {istio} (supported: {supported}); move Istio or Kmesh into the matrix"
                ),
            )
        };
        out.push(
            &cluster.name,
            Rule::KmeshIstioSupport,
            severity,
            &control_plane_subject(cp),
            message,
            &row.source,
        );
    }
}

fn k8s_support(cluster: &Cluster, mode: &KmeshMode, row: &KmeshRelease, out: &mut Findings) {
    let name = row_name(row, mode);
    let k8s = cluster.kubernetes.minor();
    let (severity, message) = if k8s_range(&row.k8s, None, k8s) == K8sRange::Listed {
        (Severity::Pass, format!("{name} supports Kubernetes {k8s}"))
    } else {
        (
            Severity::Fail,
            format!(
                "{name} does not support Kubernetes {k8s} (supported: {})",
                fmt_minors(&row.k8s)
            ),
        )
    };
    out.push(
        &cluster.name,
        Rule::KmeshK8sSupport,
        severity,
        "kmesh",
        message,
        &row.source,
    );
}

fn dual_engine_ambient(cluster: &Cluster, compat: &CompatData, out: &mut Findings) {
    let rule = &compat.kmesh.dual_engine_min_istio;
    let min = rule.value;
    let control_planes = cluster.istio_control_planes();
    let mut ready = Vec::new();
    let mut missing = Vec::new();
    for cp in control_planes {
        let version = cp.istiod.version.version;
        let mut gaps = Vec::new();
        match version {
            Some(v) if v.minor_line() < min => {
                gaps.push(format!("runs Istio {} (needs {min}+)", v.minor_line()))
            }
            None => gaps.push("has an unread version".to_string()),
            Some(_) => {}
        }
        if !cp.ambient_enabled {
            gaps.push("does not set PILOT_ENABLE_AMBIENT=true".to_string());
        }
        if gaps.is_empty() {
            ready.push(format!("istiod {}", cp.revision));
        } else {
            missing.push(format!("istiod {} {}", cp.revision, gaps.join(" and ")));
        }
    }
    let (severity, message) = if !ready.is_empty() {
        (
            Severity::Pass,
            format!(
                "Dual-Engine mode has an ambient-enabled istiod at Istio {min} or newer: {}",
                ready.join(", ")
            ),
        )
    } else if missing.is_empty() {
        (
            Severity::Fail,
            format!(
                "Dual-Engine mode needs istiod with PILOT_ENABLE_AMBIENT=true at Istio {min} or newer, and no istiod was found"
            ),
        )
    } else {
        (
            Severity::Fail,
            format!(
                "Dual-Engine mode needs istiod with PILOT_ENABLE_AMBIENT=true at Istio {min} or newer, but {}; \
                 set pilot.env.PILOT_ENABLE_AMBIENT=true on an Istio {min}+ istiod",
                missing.join("; ")
            ),
        )
    };
    out.push(
        &cluster.name,
        Rule::KmeshDualEngineAmbient,
        severity,
        "kmesh",
        message,
        &rule.source,
    );
}

fn linux_nodes(cluster: &Cluster) -> impl Iterator<Item = &NodeGroup> {
    cluster.nodes.iter().filter(|n| n.is_linux())
}

fn kernels(cluster: &Cluster, compat: &CompatData, out: &mut Findings) {
    let rule = &compat.kmesh.kernel_min;
    let min = rule.value;
    // Nodes regrouped by kernel string and the one verdict of the rule: the only facts it reads.
    let mut by_kernel: BTreeMap<&str, (KernelVerdict, Vec<String>)> = BTreeMap::new();
    let mut not_linux: Vec<String> = Vec::new();
    for group in &cluster.nodes {
        match kmesh_kernel(&group.operating_system, group.kernel.as_ref(), min) {
            KernelVerdict::NotLinux => not_linux.extend(group.names.iter().cloned()),
            verdict => by_kernel
                .entry(group.kernel_version.as_str())
                .or_insert((verdict, Vec::new()))
                .1
                .extend(group.names.iter().cloned()),
        }
    }
    for (raw, (verdict, mut names)) in by_kernel {
        names.sort();
        let count = plural(names.len() as u64, "node", "nodes");
        let listed = fmt_list(&names, NODES_NAMED);
        let subject = format!("kernel {raw}");
        let (severity, message) = match verdict {
            KernelVerdict::NotLinux | KernelVerdict::Unreadable => (
                Severity::Warn,
                format!(
                    "the kernel version `{raw}` of {count} ({listed}) could not be read; whether it meets Kmesh's {min} minimum is unjudged"
                ),
            ),
            KernelVerdict::Below(k) => (
                Severity::Fail,
                format!(
                    "{count} {} kernel {k}, older than the {min} Kmesh needs for its eBPF programs: {listed}; \
                     move them to a {min}+ node image or keep Kmesh off them",
                    agree(names.len() as u64, "runs", "run")
                ),
            ),
            KernelVerdict::AtLeast(k) => (
                Severity::Pass,
                format!(
                    "{count} {} kernel {k}, at least {min}",
                    agree(names.len() as u64, "runs", "run")
                ),
            ),
        };
        out.push(
            &cluster.name,
            Rule::KmeshKernel,
            severity,
            &subject,
            message,
            &rule.source,
        );
    }
    if !not_linux.is_empty() {
        out.push(
            &cluster.name,
            Rule::KmeshKernel,
            Severity::Info,
            "non-Linux nodes",
            format!(
                "{} ({}) are not judged by Kmesh's Linux kernel rule; Kmesh runs only on Linux nodes",
                plural(not_linux.len() as u64, "node", "nodes"),
                fmt_list(&not_linux, NODES_NAMED)
            ),
            &rule.source,
        );
    }
}

fn kernel_native_l7(cluster: &Cluster, compat: &CompatData, out: &mut Findings) {
    let rule = &compat.kmesh.kernel_native_l7_native_os;
    let native = |os_image: &str| {
        let os = os_image.to_ascii_lowercase();
        rule.value
            .iter()
            .any(|n| os.starts_with(&n.to_ascii_lowercase()))
    };
    let mut by_os: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for group in linux_nodes(cluster) {
        by_os
            .entry(group.os_image.as_str())
            .or_default()
            .extend(group.names.iter().cloned());
    }
    for (os_image, mut names) in by_os {
        names.sort();
        let count = plural(names.len() as u64, "node", "nodes");
        let (severity, message) = if native(os_image) {
            (
                Severity::Pass,
                format!(
                    "{count} on {os_image} {} Kernel-Native L7 without kernel patches",
                    agree(names.len() as u64, "supports", "support")
                ),
            )
        } else {
            (
                Severity::Warn,
                format!(
                    "{count} on {os_image} ({}) {} Kmesh's kernel patches for Kernel-Native L7 (natively supported only on {}); \
                     without them only L4 and sockmap acceleration work",
                    fmt_list(&names, NODES_NAMED),
                    agree(names.len() as u64, "needs", "need"),
                    rule.value.join(", ")
                ),
            )
        };
        out.push(
            &cluster.name,
            Rule::KmeshKernelNativeL7,
            severity,
            &format!("nodes on {os_image}"),
            message,
            &rule.source,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::report::Severity;
    use crate::snapshot::{Cluster, KmeshMode};

    fn kmesh_cluster(
        k8s: &str,
        kmesh_tag: &str,
        mode: KmeshMode,
        pilot_tag: &str,
        ambient: bool,
    ) -> Cluster {
        let mut c = cluster("lab", k8s);
        let mut cp = istiod("default", &format!("docker.io/istio/pilot:{pilot_tag}"));
        cp.ambient_enabled = ambient;
        c.istio = Some(istio(vec![cp]));
        c.kmesh = Some(kmesh(&format!("ghcr.io/kmesh-net/kmesh:{kmesh_tag}"), mode));
        c.nodes.push(linux_nodes(
            "5.15.0-119-generic",
            "Ubuntu 22.04.4 LTS",
            &["n1", "n2"],
        ));
        c
    }

    #[test]
    fn a_node_with_no_operating_system_is_judged_as_plan_and_the_gate_judge_it() {
        let mut c = kmesh_cluster("v1.30.4", "v1.0.0", KmeshMode::DualEngine, "1.23.4", true);
        let mut bare = linux_nodes("5.4.0-1103-aws", "Custom", &["bare-1"]);
        bare.operating_system = String::new();
        c.nodes.push(bare);
        let report = run(vec![c]);
        let fs = of(&report, "kmesh.kernel");
        let old = fs
            .iter()
            .find(|f| f.subject == "kernel 5.4.0-1103-aws")
            .expect("the node is judged");
        assert_eq!(old.severity, Severity::Fail);
        assert_eq!(
            old.message,
            "1 node runs kernel 5.4.0, older than the 5.10 Kmesh needs for its eBPF programs: bare-1; move them to a 5.10+ node image or keep Kmesh off them"
        );
        assert!(!fs.iter().any(|f| f.subject == "non-Linux nodes"));
    }

    #[test]
    fn every_old_linux_kernel_fails_naming_its_nodes_and_windows_is_skipped() {
        let mut c = kmesh_cluster("v1.30.4", "v1.0.0", KmeshMode::DualEngine, "1.23.4", true);
        let old: Vec<String> = (1..=10).map(|i| format!("old-{i:02}")).collect();
        let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
        c.nodes.push(linux_nodes(
            "5.4.0-1103-aws",
            "Ubuntu 20.04.6 LTS",
            &old_refs,
        ));
        c.nodes.push(linux_nodes("5.9.16", "Custom", &["edge-1"]));
        c.nodes.push(windows_nodes(&["win-1"]));
        let report = run(vec![c]);
        let fs = of(&report, "kmesh.kernel");
        let fail_54 = fs
            .iter()
            .find(|f| f.subject == "kernel 5.4.0-1103-aws")
            .unwrap();
        assert_eq!(fail_54.severity, Severity::Fail);
        assert!(
            fail_54
                .message
                .contains("10 nodes run kernel 5.4.0, older than the 5.10"),
            "{}",
            fail_54.message
        );
        assert!(
            fail_54.message.contains("old-01, old-02") && fail_54.message.contains("and 2 more"),
            "{}",
            fail_54.message
        );
        // 5.9 is older than 5.10: numeric, not lexical.
        let fail_59 = fs.iter().find(|f| f.subject == "kernel 5.9.16").unwrap();
        assert_eq!(fail_59.severity, Severity::Fail);
        assert!(fail_59.message.contains("edge-1"), "{}", fail_59.message);
        let pass = fs
            .iter()
            .find(|f| f.subject == "kernel 5.15.0-119-generic")
            .unwrap();
        assert_eq!(pass.severity, Severity::Pass);
        let windows = fs.iter().find(|f| f.subject == "non-Linux nodes").unwrap();
        assert_eq!(windows.severity, Severity::Info);
        assert!(windows.message.contains("win-1"), "{}", windows.message);
        assert!(fs.iter().all(|f| !f.subject.contains("10.0.20348")));
    }

    #[test]
    fn an_unreadable_kernel_warns() {
        let mut c = kmesh_cluster("v1.30.4", "v1.0.0", KmeshMode::DualEngine, "1.23.4", true);
        c.nodes
            .push(linux_nodes("custom-kernel", "Talos (v1.7.6)", &["t1"]));
        let report = run(vec![c]);
        let f = of(&report, "kmesh.kernel")
            .into_iter()
            .find(|f| f.subject == "kernel custom-kernel")
            .unwrap();
        assert_eq!(f.severity, Severity::Warn);
    }

    #[test]
    fn no_kernel_rules_without_kmesh() {
        let mut c = cluster("plain", "v1.30.4");
        c.nodes.push(linux_nodes(
            "4.18.0-513.24.1.el8_9.x86_64",
            "RHEL 8.9",
            &["r1"],
        ));
        let report = run(vec![c]);
        assert!(of(&report, "kmesh.kernel").is_empty());
    }

    #[test]
    fn the_kmesh_row_judges_istio_and_kubernetes() {
        // compat-sources section 11: Kmesh 1.0.x Dual-Engine with Istio 1.25 is not in its list.
        let report = run(vec![kmesh_cluster(
            "v1.32.0",
            "v1.0.0",
            KmeshMode::DualEngine,
            "1.25.2",
            true,
        )]);
        let istio = only(&report, "kmesh.istio-support");
        assert_eq!(istio.severity, Severity::Fail);
        assert!(
            istio.message.contains(
                "Kmesh 1.0.x (Dual-Engine) does not support Istio 1.25 (supported: 1.22–1.24)"
            ),
            "{}",
            istio.message
        );
        let k8s = only(&report, "kmesh.k8s-support");
        assert_eq!(k8s.severity, Severity::Fail);
        assert!(
            k8s.message
                .contains("Kubernetes 1.32 (supported: 1.26–1.31)"),
            "{}",
            k8s.message
        );

        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "v1.1.0",
            KmeshMode::KernelNative,
            "1.24.3",
            false,
        )]);
        assert_eq!(
            only(&report, "kmesh.istio-support").severity,
            Severity::Pass
        );
        assert_eq!(only(&report, "kmesh.k8s-support").severity, Severity::Pass);
    }

    #[test]
    fn kernel_native_below_the_row_is_only_theoretically_compatible() {
        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "v1.0.0",
            KmeshMode::KernelNative,
            "1.21.2",
            false,
        )]);
        let f = only(&report, "kmesh.istio-support");
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.contains("theoretically compatible"),
            "{}",
            f.message
        );
        assert!(of(&report, "kmesh.dual-engine-ambient").is_empty());
    }

    #[test]
    fn dual_engine_needs_an_ambient_istiod_at_the_minimum() {
        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "v1.0.0",
            KmeshMode::DualEngine,
            "1.22.3",
            false,
        )]);
        let f = only(&report, "kmesh.dual-engine-ambient");
        assert_eq!(f.severity, Severity::Fail);
        assert!(
            f.message
                .contains("istiod default does not set PILOT_ENABLE_AMBIENT=true"),
            "{}",
            f.message
        );
        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "v0.3.0",
            KmeshMode::DualEngine,
            "1.21.2",
            true,
        )]);
        let f = only(&report, "kmesh.dual-engine-ambient");
        assert!(
            f.message.contains("runs Istio 1.21 (needs 1.22+)"),
            "{}",
            f.message
        );
        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "v1.0.0",
            KmeshMode::DualEngine,
            "1.23.4",
            true,
        )]);
        assert_eq!(
            only(&report, "kmesh.dual-engine-ambient").severity,
            Severity::Pass
        );
    }

    #[test]
    fn kernel_native_l7_needs_patches_except_on_openeuler_23_03() {
        let mut c = kmesh_cluster(
            "v1.30.4",
            "v1.1.0",
            KmeshMode::KernelNative,
            "1.24.3",
            false,
        );
        c.nodes.push(linux_nodes(
            "5.10.0-153.12.0.92.oe2303.x86_64",
            "openEuler 23.03",
            &["oe-1"],
        ));
        let report = run(vec![c]);
        let fs = of(&report, "kmesh.kernel-native-l7");
        let oe = fs
            .iter()
            .find(|f| f.subject == "nodes on openEuler 23.03")
            .unwrap();
        assert_eq!(oe.severity, Severity::Pass);
        let ubuntu = fs
            .iter()
            .find(|f| f.subject == "nodes on Ubuntu 22.04.4 LTS")
            .unwrap();
        assert_eq!(ubuntu.severity, Severity::Warn);
        assert!(
            ubuntu.message.contains("kernel patches"),
            "{}",
            ubuntu.message
        );
    }

    #[test]
    fn unknown_modes_and_versions_warn_instead_of_passing() {
        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "v1.0.0",
            KmeshMode::Unknown("turbo".into()),
            "1.23.4",
            true,
        )]);
        assert_eq!(only(&report, "kmesh.mode-known").severity, Severity::Warn);
        assert!(of(&report, "kmesh.istio-support").is_empty());

        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "v1.2.0",
            KmeshMode::DualEngine,
            "1.25.2",
            true,
        )]);
        let f = only(&report, "kmesh.version-known");
        assert!(
            f.message
                .contains("Kmesh 1.2.0 (Dual-Engine) is not in the compatibility data"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("newer than this build knows"),
            "{}",
            f.message
        );
        assert!(of(&report, "kmesh.istio-support").is_empty());

        let report = run(vec![kmesh_cluster(
            "v1.30.4",
            "latest",
            KmeshMode::DualEngine,
            "1.25.2",
            true,
        )]);
        assert_eq!(only(&report, "kmesh.version-read").severity, Severity::Warn);
    }

    #[test]
    fn kmesh_without_istiod_fails() {
        let mut c = kmesh_cluster("v1.30.4", "v1.0.0", KmeshMode::DualEngine, "1.23.4", true);
        c.istio = None;
        let report = run(vec![c]);
        assert!(
            only(&report, "kmesh.istio-support")
                .message
                .contains("no istiod was found")
        );
        assert_eq!(
            only(&report, "kmesh.dual-engine-ambient").severity,
            Severity::Fail
        );
    }

    #[test]
    fn the_kmesh_daemonset_with_no_ready_pod_fails_and_a_partial_one_warns() {
        let mut c = kmesh_cluster("v1.30.4", "v1.0.0", KmeshMode::DualEngine, "1.23.4", true);
        if let Some(k) = c.kmesh.as_mut() {
            k.daemonset.desired = 2;
            k.daemonset.ready = 0;
        }
        let report = run(vec![c.clone()]);
        let f = only(&report, "kmesh.replicas-ready");
        assert_eq!(f.severity, Severity::Fail);
        assert_eq!(
            f.message,
            "DaemonSet kmesh-system/kmesh (the Kmesh daemon) has 0 of 2 pods ready, so it is down; look at \
             its pods: kubectl -n kmesh-system describe daemonset kmesh"
        );
        if let Some(k) = c.kmesh.as_mut() {
            k.daemonset.ready = 1;
        }
        let report = run(vec![c]);
        assert_eq!(
            only(&report, "kmesh.replicas-ready").severity,
            Severity::Warn
        );
    }
}
