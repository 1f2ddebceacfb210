//! Compatibility data: loading (embedded, or parsed from the text of a `--compat FILE` the plugin read)
//! and the look-ups rules and plans use.
//! The matrices live in `data/compat.json` (made by [`import`] from `data/sources/`); this module
//! only answers questions about them, so each fact has exactly one home.

pub mod import;
mod model;

pub use model::*;

use crate::snapshot::KmeshMode;
use crate::version::{Minor, Version};

/// The data shipped inside the binary.
const EMBEDDED: &str = include_str!("../../../../data/compat.json");

#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error("cannot read compatibility data {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "compatibility data {path} is not valid: {message}; use a file written by kubectl meshup compat update"
    )]
    Invalid { path: String, message: String },
}

/// How a compatibility matrix judges a pair of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// Istio's "tested, but not supported" column.
    TestedOnly,
    Unsupported,
    /// The data has no row for the version asked about (newer than the data, or never published).
    NotInData,
}

impl CompatData {
    /// The data embedded at build time.
    pub fn embedded() -> CompatData {
        // The embedded file is validated by a unit test; a failure here is a build defect, not input.
        Self::parse(EMBEDDED, "embedded data/compat.json").expect("embedded compatibility data")
    }

    pub fn parse(text: &str, origin: &str) -> Result<CompatData, CompatError> {
        let data: CompatData = serde_json::from_str(text).map_err(|e| CompatError::Invalid {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        data.validate().map_err(|message| CompatError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        Ok(data)
    }

    /// Every row must name its source, and each minor appears once.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.schema_version != 1 {
            return Err(format!(
                "schemaVersion {} is not supported (this build reads 1)",
                self.schema_version
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.istio.releases {
            if r.source.trim().is_empty() {
                return Err(format!("Istio {} has no source", r.minor));
            }
            if !seen.insert(r.minor) {
                return Err(format!("Istio {} appears twice", r.minor));
            }
        }
        for r in &self.gloo_mesh.releases {
            if r.source.trim().is_empty() {
                return Err(format!("Gloo Mesh {} has no source", r.minor));
            }
        }
        for r in &self.kmesh.releases {
            if r.source.trim().is_empty() {
                return Err("a Kmesh row has no source".to_string());
            }
        }
        Ok(())
    }

    pub fn istio_release(&self, minor: Minor) -> Option<&IstioRelease> {
        self.istio.releases.iter().find(|r| r.minor == minor)
    }

    /// The newest Istio minor in the data.
    pub fn newest_istio(&self) -> Option<&IstioRelease> {
        self.istio.releases.iter().max_by_key(|r| r.minor)
    }

    /// Istio `istio` on Kubernetes `k8s`.
    pub fn istio_on_k8s(&self, istio: Minor, k8s: Minor) -> Support {
        match self.istio_release(istio) {
            None => Support::NotInData,
            Some(r) if r.supported_k8s.contains(&k8s) => Support::Supported,
            Some(r) if r.tested_k8s.contains(&k8s) => Support::TestedOnly,
            Some(_) => Support::Unsupported,
        }
    }

    /// A version for `--to istio=1.24`: the newest known patch of that minor; an explicit patch is kept.
    pub fn resolve_istio(&self, wanted: Version) -> Option<Version> {
        let release = self.istio_release(wanted.minor_line())?;
        Some(match wanted.patch {
            Some(_) => wanted,
            None => release.newest_patch(),
        })
    }

    pub fn gloo_mesh_release(&self, minor: Minor) -> Option<&GlooMeshRelease> {
        self.gloo_mesh.releases.iter().find(|r| r.minor == minor)
    }

    /// The Kmesh row for a Kmesh version and mode. Versions newer than every numbered row are
    /// `None` (not in the data), never silently judged by `main/latest`.
    pub fn kmesh_release(&self, version: Minor, mode: &KmeshMode) -> Option<&KmeshRelease> {
        let mode = crate::verdict::kmesh_rows_mode(mode);
        self.kmesh
            .releases
            .iter()
            .find(|r| r.minor == Some(version) && &r.mode == mode)
    }
}

/// Data older than this many days is flagged in `check` and `plan`.
pub const STALE_AFTER_DAYS: i64 = 90;
/// The command that refreshes the data, named in every freshness warning.
pub const UPDATE_COMMAND: &str = "kubectl meshup compat update";

/// The data a command judged with, and where it came from (`built in`, a `compat update` file, or
/// `--compat FILE`), as the CLI loaded it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompatInUse {
    pub data: CompatData,
    pub origin: String,
}

impl CompatInUse {
    /// `2026-09-09 (built in)`: how headers name the data.
    pub fn label(&self) -> String {
        format!("{} ({})", self.data.date, self.origin)
    }
}

impl CompatData {
    /// Whole days from the data's date to `today` (both `YYYY-MM-DD`); `None` if either is unreadable.
    pub fn age_days(&self, today: &str) -> Option<i64> {
        Some(crate::dates::day_number(today)? - crate::dates::day_number(&self.date)?)
    }

    /// The warnings `check` and `plan` print in their header: data older than [`STALE_AFTER_DAYS`] at
    /// `today`, and an installed Istio minor newer than every minor in the data. Each names the update
    /// command. The one home of this rule.
    pub fn freshness_warnings(
        &self,
        today: &str,
        snapshot: &crate::snapshot::ClusterSnapshot,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(age) = self.age_days(today)
            && age > STALE_AFTER_DAYS
        {
            out.push(format!(
                "the compatibility data is {age} days old (dated {}, older than {STALE_AFTER_DAYS} days): newer releases and end-of-life dates may be missing; run `{UPDATE_COMMAND}`",
                self.date
            ));
        }
        let newest = self.newest_istio().map(|r| r.minor);
        let mut newer = std::collections::BTreeSet::new();
        for cluster in &snapshot.clusters {
            let Some(istio) = &cluster.istio else {
                continue;
            };
            for cp in &istio.control_planes {
                if let Some(v) = cp.istiod.version.version
                    && newest.is_some_and(|n| v.minor_line() > n)
                {
                    newer.insert((cluster.name.clone(), v));
                }
            }
        }
        for (cluster, v) in newer {
            out.push(format!(
                "cluster {cluster} runs Istio {v}, newer than every Istio minor in the compatibility data (dated {}, newest {}): run `{UPDATE_COMMAND}`",
                self.date,
                newest.map(|n| n.to_string()).unwrap_or_default()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_loads_and_every_row_has_a_source() {
        let data = CompatData::embedded();
        assert!(data.istio.releases.len() >= 27);
        assert!(data.istio.releases.iter().all(|r| !r.source.is_empty()));
        assert_eq!(data.istio.canary_max_minors.value, 2);
        assert_eq!(data.istio.in_place_max_minors.value, 1);
        assert_eq!(data.kmesh.kernel_min.value, Minor::new(5, 10));
    }

    #[test]
    fn istio_support_answers_match_istio_io() {
        let data = CompatData::embedded();
        let m = |s: &str| Minor::parse(s).unwrap();
        // compat-sources.md section 11.
        assert_eq!(
            data.istio_on_k8s(m("1.22"), m("1.31")),
            Support::Unsupported
        );
        assert_eq!(data.istio_on_k8s(m("1.22"), m("1.26")), Support::TestedOnly);
        assert_eq!(data.istio_on_k8s(m("1.24"), m("1.29")), Support::Supported);
        assert_eq!(data.istio_on_k8s(m("1.99"), m("1.29")), Support::NotInData);
    }

    #[test]
    fn a_minor_target_resolves_to_its_newest_known_patch() {
        let data = CompatData::embedded();
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(data.resolve_istio(v("1.24")), Some(v("1.24.6")));
        assert_eq!(data.resolve_istio(v("1.24.2")), Some(v("1.24.2")));
        assert_eq!(data.resolve_istio(v("1.99")), None);
    }

    #[test]
    fn seed_tables_are_primary_for_gloo_mesh() {
        let data = CompatData::embedded();
        let gm11 = data.gloo_mesh_release(Minor::new(1, 1)).unwrap();
        // The seed lists Istio 1.7 - 1.10 and Kubernetes 1.16 - 1.21 for Gloo Mesh OSS 1.1.
        assert_eq!(gm11.istio.first(), Some(&Minor::new(1, 7)));
        assert_eq!(gm11.k8s.first(), Some(&Minor::new(1, 16)));
        assert!(gm11.source.contains("seed"));
        assert!(!gm11.notes.is_empty(), "the disagreement is noted");
    }

    #[test]
    fn kmesh_rows_by_version_and_mode() {
        let data = CompatData::embedded();
        let row = data
            .kmesh_release(Minor::new(1, 0), &KmeshMode::DualEngine)
            .unwrap();
        assert_eq!(
            row.istio,
            vec![Minor::new(1, 22), Minor::new(1, 23), Minor::new(1, 24)]
        );
        assert!(
            data.kmesh_release(Minor::new(9, 9), &KmeshMode::KernelNative)
                .is_none()
        );
    }

    #[test]
    fn a_broken_override_is_refused_with_the_reason() {
        let err = CompatData::parse("{}", "x.json").unwrap_err().to_string();
        assert!(
            err.contains("x.json") && err.contains("missing field"),
            "{err}"
        );
    }
}
