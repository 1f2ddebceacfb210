//! Every rule id `check` reports, in one registry: the id a finding carries (stable: tools filter on
//! it), the severities it can have, what it checks and where its numbers come from. The table in
//! `check`'s module documentation is this registry, and a test holds the two together; another test
//! finds every id named in the sources and documents and asks that it is one of these.

use crate::report::Severity;
use Severity::{Fail, Info, Pass, Warn};

/// A rule `check` judges by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    SnapshotUnread,
    SnapshotNoMesh,
    IstioVersionRead,
    IstioVersionKnown,
    IstioK8sSupport,
    IstioEol,
    IstioProxyAhead,
    IstioDataPlaneSkew,
    IstioProxyVersionRead,
    IstioProxyControlPlane,
    IstioReplicasReady,
    IstioAmbientComponentsSkew,
    IstioAmbientGa,
    IstioFlavorMixed,
    GlooMeshVersionRead,
    GlooMeshVersionKnown,
    GlooMeshK8sSupport,
    GlooMeshIstioSupport,
    GlooMeshReplicasReady,
    GlooMeshRemoteSkew,
    GlooMeshRemoteUnobserved,
    KmeshVersionRead,
    KmeshVersionKnown,
    KmeshModeKnown,
    KmeshReplicasReady,
    KmeshKernel,
    KmeshIstioSupport,
    KmeshK8sSupport,
    KmeshDualEngineAmbient,
    KmeshKernelNativeL7,
}

impl Rule {
    /// Every rule, in the order the documentation lists them.
    pub const ALL: [Rule; 30] = [
        Rule::SnapshotUnread,
        Rule::SnapshotNoMesh,
        Rule::IstioVersionRead,
        Rule::IstioVersionKnown,
        Rule::IstioK8sSupport,
        Rule::IstioEol,
        Rule::IstioProxyAhead,
        Rule::IstioDataPlaneSkew,
        Rule::IstioProxyVersionRead,
        Rule::IstioProxyControlPlane,
        Rule::IstioReplicasReady,
        Rule::IstioAmbientComponentsSkew,
        Rule::IstioAmbientGa,
        Rule::IstioFlavorMixed,
        Rule::GlooMeshVersionRead,
        Rule::GlooMeshVersionKnown,
        Rule::GlooMeshK8sSupport,
        Rule::GlooMeshIstioSupport,
        Rule::GlooMeshReplicasReady,
        Rule::GlooMeshRemoteSkew,
        Rule::GlooMeshRemoteUnobserved,
        Rule::KmeshVersionRead,
        Rule::KmeshVersionKnown,
        Rule::KmeshModeKnown,
        Rule::KmeshReplicasReady,
        Rule::KmeshKernel,
        Rule::KmeshIstioSupport,
        Rule::KmeshK8sSupport,
        Rule::KmeshDualEngineAmbient,
        Rule::KmeshKernelNativeL7,
    ];

    /// The id a finding carries: `istio.k8s-support`.
    pub fn id(self) -> &'static str {
        self.entry().0
    }

    /// The severities a finding of this rule can have.
    pub fn severities(self) -> &'static [Severity] {
        self.entry().1
    }

    /// What the rule checks, in one line.
    pub fn checks(self) -> &'static str {
        self.entry().2
    }

    /// Where the rule's numbers come from.
    pub fn source(self) -> &'static str {
        self.entry().3
    }

    /// The rule with the id `id`.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    #[rustfmt::skip]
    fn entry(self) -> (&'static str, &'static [Severity], &'static str, &'static str) {
        match self {
            Rule::SnapshotUnread => ("snapshot.unread", &[Warn], "a fact observe could not read (forbidden, failed), and what it leaves unjudged", "the snapshot"),
            Rule::SnapshotNoMesh => ("snapshot.no-mesh", &[Info], "the cluster runs no Istio, Gloo Mesh or Kmesh, so only the snapshot was read", "the snapshot"),
            Rule::IstioVersionRead => ("istio.version-read", &[Warn], "istiod's version could be read from neither image tag nor chart labels", "the snapshot"),
            Rule::IstioVersionKnown => ("istio.version-known", &[Warn], "the istiod minor has a row in the data (else: newer than this build knows)", "the data's date"),
            Rule::IstioK8sSupport => ("istio.k8s-support", &[Pass, Warn, Fail], "Kubernetes minor in the Istio row's supported list (warn: only \"tested\")", "Istio release row"),
            Rule::IstioEol => ("istio.eol", &[Pass, Info, Warn], "Istio end of life as of the evaluation date (info: within 30 days)", "Istio release row"),
            Rule::IstioProxyAhead => ("istio.proxy-ahead", &[Info, Fail], "a proxy newer than its control plane (fail on a newer minor, info on a newer patch)", "`dataPlaneMaxLagMinors`"),
            Rule::IstioDataPlaneSkew => ("istio.data-plane-skew", &[Pass, Info, Fail], "proxies at most `dataPlaneMaxLagMinors` behind their control plane", "`dataPlaneMaxLagMinors`"),
            Rule::IstioProxyVersionRead => ("istio.proxy-version-read", &[Warn], "proxies whose version could not be read", "the snapshot"),
            Rule::IstioProxyControlPlane => ("istio.proxy-control-plane", &[Warn], "proxies whose revision matches no istiod", "the snapshot"),
            Rule::IstioReplicasReady => ("istio.replicas-ready", &[Warn, Fail], "istiod (every revision), the gateways, ztunnel and istio-cni run: fail at 0 ready or 0 desired, warn when fewer ready than desired", "the snapshot"),
            Rule::IstioAmbientComponentsSkew => ("istio.ambient-components-skew", &[Pass, Fail], "ztunnel / istio-cni at most `ambientComponentsMaxLagMinors` behind, never ahead", "`ambientComponentsMaxLagMinors`"),
            Rule::IstioAmbientGa => ("istio.ambient-ga", &[Pass, Warn], "ambient mode on an Istio older than `ambientGa`", "`ambientGa`"),
            Rule::IstioFlavorMixed => ("istio.flavor-mixed", &[Pass, Info, Warn, Fail], "DaoCloud `-mspider` builds mixed with other builds in one cluster", "mspider `noMixedUpgrade`"),
            Rule::GlooMeshVersionRead => ("gloo-mesh.version-read", &[Warn], "a Gloo Mesh component whose version could not be read", "the snapshot"),
            Rule::GlooMeshVersionKnown => ("gloo-mesh.version-known", &[Warn], "the Gloo Mesh minor has a row in the data", "the data's date"),
            Rule::GlooMeshK8sSupport => ("gloo-mesh.k8s-support", &[Pass, Warn, Fail], "Kubernetes in the Gloo Mesh row (list or minimum), and the installed Istio supports it (the row's footnote)", "Gloo Mesh release row"),
            Rule::GlooMeshIstioSupport => ("gloo-mesh.istio-support", &[Pass, Fail], "every Istio revision (local, or in a registered remote cluster) in the Gloo Mesh row", "Gloo Mesh release row"),
            Rule::GlooMeshReplicasReady => ("gloo-mesh.replicas-ready", &[Warn, Fail], "`discovery`, `networking` and the agent run: fail at 0 ready or 0 desired, warn when fewer ready than desired", "the snapshot"),
            Rule::GlooMeshRemoteSkew => ("gloo-mesh.remote-skew", &[Pass, Warn, Fail], "a remote cluster's agent at most `remoteMaxLagMinors` behind the management plane, never ahead", "`remoteMaxLagMinors`"),
            Rule::GlooMeshRemoteUnobserved => ("gloo-mesh.remote-unobserved", &[Info, Warn], "a registered cluster absent from the snapshot, or present without an agent", "the snapshot"),
            Rule::KmeshVersionRead => ("kmesh.version-read", &[Warn], "the Kmesh DaemonSet's version could not be read", "the snapshot"),
            Rule::KmeshVersionKnown => ("kmesh.version-known", &[Warn], "the Kmesh version and mode have a row in the data", "the data's date"),
            Rule::KmeshModeKnown => ("kmesh.mode-known", &[Warn], "the Kmesh mode is one this build knows", "the snapshot"),
            Rule::KmeshReplicasReady => ("kmesh.replicas-ready", &[Warn, Fail], "the Kmesh DaemonSet runs: fail at 0 ready or 0 desired, warn when fewer ready than desired", "the snapshot"),
            Rule::KmeshKernel => ("kmesh.kernel", &[Pass, Info, Warn, Fail], "every Linux node's kernel at least `kernelMin` (info: Windows nodes skipped; warn: unreadable)", "`kernelMin`"),
            Rule::KmeshIstioSupport => ("kmesh.istio-support", &[Pass, Warn, Fail], "every istiod minor in the Kmesh row (warn: Kernel-Native below the row, \"theoretically compatible\")", "Kmesh release row"),
            Rule::KmeshK8sSupport => ("kmesh.k8s-support", &[Pass, Fail], "the Kubernetes minor in the Kmesh row", "Kmesh release row"),
            Rule::KmeshDualEngineAmbient => ("kmesh.dual-engine-ambient", &[Pass, Fail], "Dual-Engine has an istiod with `PILOT_ENABLE_AMBIENT` at `dualEngineMinIstio` or newer", "`dualEngineMinIstio`"),
            Rule::KmeshKernelNativeL7 => ("kmesh.kernel-native-l7", &[Pass, Warn], "Kernel-Native L7 on an OS image outside `kernelNativeL7NativeOs` needs kernel patches", "`kernelNativeL7NativeOs`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    #[test]
    fn ids_are_unique_and_each_reads_back() {
        let ids: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            assert_eq!(Rule::from_id(rule.id()), Some(rule));
            assert!(!rule.severities().is_empty(), "{}", rule.id());
        }
        assert_eq!(Rule::from_id("istio.k8s-supported"), None);
    }

    /// The table in `check`'s documentation, row by row, is the registry.
    #[test]
    fn the_documented_table_is_the_registry() {
        let doc = include_str!("mod.rs");
        let rows: Vec<String> = doc
            .lines()
            .filter(|l| l.starts_with("//! | `"))
            .map(str::to_string)
            .collect();
        let registry: Vec<String> = Rule::ALL
            .iter()
            .map(|r| {
                let severities: Vec<&str> = r.severities().iter().map(|s| s.as_str()).collect();
                format!(
                    "//! | `{}` | {} | {} | {} |",
                    r.id(),
                    severities.join(", "),
                    r.checks(),
                    r.source()
                )
            })
            .collect();
        assert_eq!(rows, registry);
    }

    /// Files below `dir` (sources, tests, snapshots, documents), skipping build output.
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name == "fake-apiserver" || name == "realcluster" {
                continue;
            }
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| {
                ["rs", "md", "snap", "json", "yaml"].contains(&e.to_str().unwrap_or(""))
            }) {
                out.push(path);
            }
        }
    }

    /// Every `"mesh.rule"` or `` `mesh.rule` `` named in the sources, tests and documents.
    fn named_ids(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for prefix in ["istio.", "gloo-mesh.", "kmesh.", "snapshot."] {
            for (at, _) in text.match_indices(prefix) {
                let before = text[..at].chars().next_back();
                if !matches!(before, Some('"' | '`')) {
                    continue;
                }
                let rest = &text[at + prefix.len()..];
                let name_len = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                    .unwrap_or(rest.len());
                let (name, after) = rest.split_at(name_len);
                if !after.starts_with(['"', '`']) || name.is_empty() {
                    continue;
                }
                // File names and domains, not rules.
                if ["rs", "json", "yaml", "yml", "md", "go", "toml"].contains(&name)
                    || name == "io"
                    || name.starts_with("io-")
                {
                    continue;
                }
                found.push(format!("{prefix}{name}"));
            }
        }
        found
    }

    #[test]
    fn every_rule_id_named_anywhere_is_in_the_registry() {
        // The workspace root, two levels above this crate.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut paths = Vec::new();
        for dir in ["src", "crates", "tests", "docs", "deploy"] {
            files(&root.join(dir), &mut paths);
        }
        paths.push(root.join("README.md"));
        let mut unknown = BTreeSet::new();
        let mut named = 0;
        // This file names a wrong id on purpose, in the tests of the scan.
        for path in paths.iter().filter(|p| !p.ends_with("src/check/rules.rs")) {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            for id in named_ids(&text) {
                named += 1;
                if Rule::from_id(&id).is_none() {
                    unknown.insert(format!("{id} in {}", path.display()));
                }
            }
        }
        assert!(named > 100, "the scan found only {named} ids");
        assert!(unknown.is_empty(), "not rules: {unknown:#?}");
    }

    #[test]
    fn the_scan_finds_quoted_ids_and_passes_over_file_names_and_domains() {
        assert_eq!(
            named_ids(
                r#"rule "istio.k8s-supported", `kmesh.kernel`, "istio.rs", "istio.io-gateway-controller", istio.proxies"#
            ),
            ["istio.k8s-supported", "kmesh.kernel"]
        );
    }
}
