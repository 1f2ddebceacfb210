//! The importer: the one parser of the vendors' documents under `data/sources/` (istio.io's
//! `supportStatus.yml`, Kmesh's `kmesh_support.md` tables, the Gloo Mesh OSS supported-versions table)
//! and of the readings kept beside them. It makes the embedded `data/compat.json` (a unit test proves the
//! committed file is what it makes) and the data `kubectl meshup compat update` writes. Pure: the files'
//! text and the date are passed in.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::model::*;
use crate::snapshot::KmeshMode;
use crate::version::{Minor, Version};

/// A source document that cannot be used; nothing is written when one is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ImportError {
    pub file: String,
    pub message: String,
}

fn err(file: &str, message: impl Into<String>) -> ImportError {
    ImportError {
        file: file.to_string(),
        message: message.into(),
    }
}

pub const MANIFEST: &str = "manifest.json";
pub const ISTIO_SUPPORT_STATUS: &str = "istio/supportStatus.yml";
pub const ISTIO_RELEASES: &str = "istio/releases.json";
pub const ISTIO_READINGS: &str = "istio/readings.json";
pub const ISTIO_UPGRADE_NOTES: &str = "istio/upgrade-notes.json";
pub const KMESH_SUPPORT: &str = "kmesh/kmesh_support.md";
pub const KMESH_READINGS: &str = "kmesh/readings.json";
pub const GLOO_MESH_TABLE: &str = "gloo-mesh/supported-versions.md";
pub const GLOO_MESH_READINGS: &str = "gloo-mesh/readings.json";
pub const GLOO_MESH_CHANGELOG: &str = "gloo-mesh/changelog-breaking.yaml";
pub const MSPIDER_READINGS: &str = "daocloud/readings.json";

/// The sources as built into the binary, so an update that replaces one file rebuilds from the rest.
const EMBEDDED: &[(&str, &str)] = &[
    (
        MANIFEST,
        include_str!("../../../../data/sources/manifest.json"),
    ),
    (
        ISTIO_SUPPORT_STATUS,
        include_str!("../../../../data/sources/istio/supportStatus.yml"),
    ),
    (
        ISTIO_RELEASES,
        include_str!("../../../../data/sources/istio/releases.json"),
    ),
    (
        ISTIO_READINGS,
        include_str!("../../../../data/sources/istio/readings.json"),
    ),
    (
        ISTIO_UPGRADE_NOTES,
        include_str!("../../../../data/sources/istio/upgrade-notes.json"),
    ),
    (
        KMESH_SUPPORT,
        include_str!("../../../../data/sources/kmesh/kmesh_support.md"),
    ),
    (
        KMESH_READINGS,
        include_str!("../../../../data/sources/kmesh/readings.json"),
    ),
    (
        GLOO_MESH_TABLE,
        include_str!("../../../../data/sources/gloo-mesh/supported-versions.md"),
    ),
    (
        GLOO_MESH_READINGS,
        include_str!("../../../../data/sources/gloo-mesh/readings.json"),
    ),
    (
        GLOO_MESH_CHANGELOG,
        include_str!("../../../../data/sources/gloo-mesh/changelog-breaking.yaml"),
    ),
    (
        MSPIDER_READINGS,
        include_str!("../../../../data/sources/daocloud/readings.json"),
    ),
];

/// The files the importer reads, by their path under `data/sources/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    files: BTreeMap<String, String>,
}

impl Sources {
    pub fn embedded() -> Sources {
        Sources {
            files: EMBEDDED
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// The paths the importer reads, relative to `data/sources/`.
    pub fn paths() -> impl Iterator<Item = &'static str> {
        EMBEDDED.iter().map(|(p, _)| *p)
    }

    pub fn get(&self, path: &str) -> Result<&str, ImportError> {
        self.files
            .get(path)
            .map(String::as_str)
            .ok_or_else(|| err(path, "missing"))
    }

    /// Replaces one document (a newer download or a `--from` file).
    pub fn set(&mut self, path: &str, text: String) {
        self.files.insert(path.to_string(), text);
    }

    pub fn manifest(&self) -> Result<Manifest, ImportError> {
        json(self.get(MANIFEST)?, MANIFEST)
    }
}

/// `data/sources/manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub date: String,
    pub cites: Vec<String>,
    pub files: Vec<SourceFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFile {
    pub path: String,
    pub format: String,
    /// Where the vendor publishes the file; `compat update` fetches it from there.
    pub upstream: Option<String>,
    pub read: String,
}

fn json<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, ImportError> {
    serde_json::from_str(text).map_err(|e| err(file, e.to_string()))
}

// --- Istio: supportStatus.yml ------------------------------------------------------------------

/// One row of istio.io's `data/compatibility/supportStatus.yml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportRow {
    pub version: String,
    #[serde(default)]
    pub supported: Option<String>,
    #[serde(default)]
    pub release_date: Option<String>,
    #[serde(default)]
    pub eol_date: Option<String>,
    #[serde(default)]
    pub k8s_versions: Option<Vec<String>>,
    #[serde(default)]
    pub tested_k8s_versions: Option<Vec<String>>,
}

/// What a table row says about one minor, read into the data's terms.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioRow {
    pub supported_k8s: Vec<Minor>,
    #[serde(default)]
    pub tested_k8s: Vec<Minor>,
    #[serde(default)]
    pub release_date: Option<String>,
    #[serde(default)]
    pub eol: Option<String>,
    pub eol_status: String,
}

/// Parses `supportStatus.yml`: the `master` row is skipped; every other row must name a minor, its
/// Kubernetes versions, and dates the table's way (`May 14, 2026`, `~Nov 2026 (Expected)`, or empty).
pub fn parse_support_status(text: &str) -> Result<BTreeMap<Minor, IstioRow>, ImportError> {
    let file = ISTIO_SUPPORT_STATUS;
    let rows: Vec<SupportRow> =
        serde_saphyr::from_str(text).map_err(|e| err(file, first_line(&e.to_string())))?;
    if rows.is_empty() {
        return Err(err(file, "no rows"));
    }
    let mut out = BTreeMap::new();
    for row in rows {
        if row.version.trim().starts_with("master") {
            continue;
        }
        let minor = Minor::parse(row.version.trim())
            .map_err(|e| err(file, format!("row {:?}: {e}", row.version)))?;
        let k8s = |list: &Option<Vec<String>>| -> Result<Vec<Minor>, ImportError> {
            list.iter()
                .flatten()
                .map(|v| {
                    Minor::parse(v.trim())
                        .map_err(|e| err(file, format!("Istio {minor} Kubernetes version: {e}")))
                })
                .collect()
        };
        let supported_k8s = k8s(&row.k8s_versions)?;
        if supported_k8s.is_empty() {
            return Err(err(
                file,
                format!("Istio {minor} lists no supported Kubernetes version"),
            ));
        }
        let release_date = match row.release_date.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(table_date(d).ok_or_else(|| {
                err(
                    file,
                    format!("Istio {minor} releaseDate {d:?} is not a date"),
                )
            })?),
        };
        let supported = row.supported.as_deref().unwrap_or("").trim();
        let (eol, eol_status) = match row.eol_date.as_deref().map(str::trim) {
            None | Some("") => (None, "unknown"),
            Some(d) if d.contains("Expected") || d.starts_with('~') => (None, "expected"),
            Some(d) => {
                let date = table_date(d).ok_or_else(|| {
                    err(file, format!("Istio {minor} eolDate {d:?} is not a date"))
                })?;
                let status = if supported.eq_ignore_ascii_case("no") {
                    "final"
                } else {
                    "planned"
                };
                (Some(date), status)
            }
        };
        let parsed = IstioRow {
            supported_k8s,
            tested_k8s: k8s(&row.tested_k8s_versions)?,
            release_date,
            eol,
            eol_status: eol_status.to_string(),
        };
        if out.insert(minor, parsed).is_some() {
            return Err(err(file, format!("Istio {minor} appears twice")));
        }
    }
    Ok(out)
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    line.trim_start_matches("error: ").to_string()
}

/// `May 14, 2026`, `November 7, 2024` or `2026-05-14` as `YYYY-MM-DD`.
pub fn table_date(text: &str) -> Option<String> {
    let text = text.trim();
    if crate::dates::day_number(text).is_some() && text.len() == 10 {
        return Some(text.to_string());
    }
    let (month, rest) = text.split_once(' ')?;
    let (day, year) = rest.split_once(',')?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = month.trim_end_matches('.').to_ascii_lowercase();
    let m = MONTHS.iter().position(|p| lower.starts_with(p))? + 1;
    let d: u32 = day.trim().parse().ok()?;
    let y: u32 = year.trim().parse().ok()?;
    let date = format!("{y:04}-{m:02}-{d:02}");
    crate::dates::day_number(&date).map(|_| date)
}

// --- Istio: the release list and the readings ----------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
struct ReleaseList {
    minors: BTreeMap<String, ReleaseMinor>,
}

#[derive(Debug, Clone, Deserialize)]
struct ReleaseMinor {
    #[serde(default)]
    patches: Vec<u64>,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IstioReadings {
    minors: BTreeMap<String, MinorReading>,
    in_place_max_minors: Rule<u64>,
    canary_max_minors: Rule<u64>,
    downgrade_max_minors: Rule<u64>,
    data_plane_max_lag_minors: Rule<u64>,
    ambient_components_max_lag_minors: Rule<u64>,
    ambient_ga: Rule<Minor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MinorReading {
    source: String,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    uncertain: bool,
    /// The row for a minor the table lacks.
    #[serde(default)]
    row: Option<IstioRow>,
    /// An end of life announced before the table has a final date.
    #[serde(default)]
    eol: Option<String>,
    #[serde(default)]
    eol_status: Option<String>,
}

fn istio(sources: &Sources, support_status_url: &str) -> Result<IstioData, ImportError> {
    let table = parse_support_status(sources.get(ISTIO_SUPPORT_STATUS)?)?;
    let list: ReleaseList = json(sources.get(ISTIO_RELEASES)?, ISTIO_RELEASES)?;
    let readings: IstioReadings = json(sources.get(ISTIO_READINGS)?, ISTIO_READINGS)?;
    let mut readings_by_minor = BTreeMap::new();
    for (k, v) in readings.minors {
        let minor = Minor::parse(&k).map_err(|e| err(ISTIO_READINGS, e.to_string()))?;
        readings_by_minor.insert(minor, v);
    }
    let mut minors: Vec<Minor> = table.keys().copied().collect();
    minors.extend(
        readings_by_minor
            .iter()
            .filter(|(m, r)| r.row.is_some() && !table.contains_key(m))
            .map(|(m, _)| *m),
    );
    minors.sort();
    let mut releases = Vec::new();
    for minor in minors {
        let reading = readings_by_minor.get(&minor);
        let mut row = match (table.get(&minor), reading.and_then(|r| r.row.clone())) {
            (Some(row), _) => row.clone(),
            (None, Some(row)) => row,
            (None, None) => continue,
        };
        // An announced end of life stands until the table itself gives a final date.
        if let Some(r) = reading
            && row.eol_status != "final"
            && let (Some(eol), Some(status)) = (&r.eol, &r.eol_status)
        {
            row.eol = Some(eol.clone());
            row.eol_status = status.clone();
        }
        let patches = list.minors.get(&minor.to_string());
        let mut notes = reading.map(|r| r.notes.clone()).unwrap_or_default();
        if let Some(source) = patches.and_then(|p| p.source.as_ref()) {
            notes.push(format!("patches: {source}"));
        }
        releases.push(IstioRelease {
            minor,
            supported_k8s: row.supported_k8s,
            tested_k8s: row.tested_k8s,
            patches: patches.map(|p| p.patches.clone()).unwrap_or_default(),
            release_date: row.release_date,
            eol: row.eol,
            eol_status: row.eol_status,
            source: reading.map(|r| r.source.clone()).unwrap_or_else(|| {
                format!(
                    "istio/istio.io data/compatibility/supportStatus.yml ({support_status_url})"
                )
            }),
            uncertain: reading.is_some_and(|r| r.uncertain),
            notes,
        });
    }
    Ok(IstioData {
        releases,
        in_place_max_minors: readings.in_place_max_minors,
        canary_max_minors: readings.canary_max_minors,
        downgrade_max_minors: readings.downgrade_max_minors,
        data_plane_max_lag_minors: readings.data_plane_max_lag_minors,
        ambient_components_max_lag_minors: readings.ambient_components_max_lag_minors,
        ambient_ga: readings.ambient_ga,
        upgrade_notes: upgrade_notes(sources)?,
    })
}

#[derive(Debug, Clone, Deserialize)]
struct UpgradeNotesFile {
    minors: Vec<UpgradeNotes>,
}

/// `istio/upgrade-notes.json`: each minor once, each with its page and source, each setting path of a
/// kind the plan can look up.
fn upgrade_notes(sources: &Sources) -> Result<Vec<UpgradeNotes>, ImportError> {
    let file = ISTIO_UPGRADE_NOTES;
    let mut doc: UpgradeNotesFile = json(sources.get(file)?, file)?;
    doc.minors.sort_by_key(|m| m.minor);
    for pair in doc.minors.windows(2) {
        if pair[0].minor == pair[1].minor {
            return Err(err(file, format!("Istio {} appears twice", pair[0].minor)));
        }
    }
    for m in &doc.minors {
        if !m.url.starts_with("https://") || m.source.trim().is_empty() {
            return Err(err(
                file,
                format!(
                    "Istio {}: a page needs its https:// url and source",
                    m.minor
                ),
            ));
        }
        for s in m.notes.iter().flat_map(|n| n.settings.iter()) {
            let kind_ok = ["meshConfig.", "istiod.env.", "helm."]
                .iter()
                .any(|p| s.path.starts_with(p));
            let change_ok =
                ["default", "behaviour", "removed", "renamed"].contains(&s.change.as_str());
            if !kind_ok || !change_ok || (s.change == "renamed") != s.to.is_some() {
                return Err(err(
                    file,
                    format!(
                        "Istio {}: setting {:?} ({}) is not one the plan can look up",
                        m.minor, s.path, s.change
                    ),
                ));
            }
        }
    }
    Ok(doc.minors)
}

// --- Markdown tables (Kmesh, Gloo Mesh) ----------------------------------------------------------

/// The cells of the first Markdown table whose header line starts with `header_start`.
fn table_rows(text: &str, header_start: &str, file: &str) -> Result<Vec<Vec<String>>, ImportError> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim().starts_with(header_start))
        .ok_or_else(|| {
            err(
                file,
                format!("no table whose header starts {header_start:?}"),
            )
        })?;
    Ok(lines[start + 2..]
        .iter()
        .take_while(|l| l.trim().starts_with('|'))
        .map(|row| {
            row.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect())
}

/// `1.7 - 1.10` as every minor in it; `1.23, 1.24` as a list.
fn expand(cell: &str, file: &str) -> Result<Vec<Minor>, ImportError> {
    let cell = cell.replace(['`', '*'], "");
    let bad = |e: crate::version::VersionError| err(file, format!("{cell:?}: {e}"));
    if let Some((a, b)) = cell.split_once(" - ").or_else(|| cell.split_once('-'))
        && !a.trim().is_empty()
    {
        let (a, b) = (
            Minor::parse(a.trim()).map_err(bad)?,
            Minor::parse(b.trim()).map_err(bad)?,
        );
        if a.major != b.major || a.minor > b.minor {
            return Err(err(file, format!("{cell:?} is not a range of minors")));
        }
        return Ok((a.minor..=b.minor)
            .map(|m| Minor::new(a.major, m))
            .collect());
    }
    cell.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Minor::parse(p).map_err(bad))
        .collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KmeshReadings {
    kernel_min: Rule<Minor>,
    dual_engine_min_istio: Rule<Minor>,
    kernel_native_l7_native_os: Rule<Vec<String>>,
}

const KMESH_ROW_SOURCE: &str = "shared/seeds/kmesh-support-status.md (seed table), same as kmesh-net/kmesh docs/en/kmesh_support.md";

fn kmesh(sources: &Sources) -> Result<KmeshData, ImportError> {
    let file = KMESH_SUPPORT;
    let text = sources.get(file)?;
    let readings: KmeshReadings = json(sources.get(KMESH_READINGS)?, KMESH_READINGS)?;
    let (dual, native) = text
        .split_once("**Kmesh Kernel-Native Mode:**")
        .ok_or_else(|| err(file, "no \"Kmesh Kernel-Native Mode\" section"))?;
    let mut releases = Vec::new();
    for (mode, part) in [
        (KmeshMode::DualEngine, dual),
        (KmeshMode::KernelNative, native),
    ] {
        for row in table_rows(part, "| Version", file)? {
            let [version, _kernel, istio, k8s, ..] = row.as_slice() else {
                return Err(err(file, format!("row {row:?} has fewer than 4 cells")));
            };
            let minor = if version.starts_with("main") {
                None
            } else {
                let v = version.trim_end_matches(".x");
                Some(Minor::parse(v).map_err(|e| err(file, e.to_string()))?)
            };
            releases.push(KmeshRelease {
                minor,
                mode: mode.clone(),
                istio: expand(istio, file)?,
                k8s: expand(k8s, file)?,
                source: KMESH_ROW_SOURCE.to_string(),
            });
        }
    }
    Ok(KmeshData {
        kernel_min: readings.kernel_min,
        dual_engine_min_istio: readings.dual_engine_min_istio,
        kernel_native_l7_native_os: readings.kernel_native_l7_native_os,
        releases,
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlooMeshReadings {
    releases: Vec<GlooMeshReading>,
    remote_max_lag_minors: Rule<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlooMeshReading {
    minor: Minor,
    istio: Vec<Minor>,
    #[serde(default)]
    k8s: Vec<Minor>,
    source: String,
    #[serde(default)]
    k8s_min: Option<Minor>,
    #[serde(default)]
    latest_patch: Option<Version>,
    #[serde(default)]
    uncertain: bool,
    #[serde(default)]
    notes: Vec<String>,
}

const GLOO_MESH_TABLE_CITE: &str = "shared/seeds/gloo-mesh-oss-supported-versions.md";

fn list(minors: &[Minor]) -> String {
    minors
        .iter()
        .map(Minor::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn gloo_mesh(sources: &Sources) -> Result<GlooMeshData, ImportError> {
    let file = GLOO_MESH_TABLE;
    let readings: GlooMeshReadings = json(sources.get(GLOO_MESH_READINGS)?, GLOO_MESH_READINGS)?;
    let mut table = BTreeMap::new();
    for row in table_rows(sources.get(file)?, "| Gloo Mesh Open Source", file)? {
        let [version, istio, k8s, ..] = row.as_slice() else {
            return Err(err(file, format!("row {row:?} has fewer than 3 cells")));
        };
        let minor = Minor::parse(version).map_err(|e| err(file, e.to_string()))?;
        table.insert(minor, (expand(istio, file)?, expand(k8s, file)?));
    }
    let releases = readings
        .releases
        .into_iter()
        .map(|r| {
            let mut notes = Vec::new();
            let (mut istio, mut k8s, mut source) = (r.istio, r.k8s, r.source);
            // The supported-versions table is primary; a different reading is kept as a note.
            if let Some((t_istio, t_k8s)) = table.get(&r.minor) {
                if *t_istio != istio || *t_k8s != k8s {
                    notes.push(format!(
                        "compat-sources.json gives Istio {} and Kubernetes {} ({source}); the seed table is primary.",
                        list(&istio),
                        list(&k8s)
                    ));
                }
                istio = t_istio.clone();
                k8s = t_k8s.clone();
                source = format!("{GLOO_MESH_TABLE_CITE} (seed table), cross-checked with {source}");
            }
            notes.extend(r.notes);
            GlooMeshRelease {
                minor: r.minor,
                istio,
                k8s,
                k8s_min: r.k8s_min,
                latest_patch: r.latest_patch,
                runbook: if r.minor.major < 1 { "pre-1.0" } else { "helm" }.to_string(),
                source,
                uncertain: r.uncertain,
                notes,
            }
        })
        .collect();
    Ok(GlooMeshData {
        releases,
        remote_max_lag_minors: readings.remote_max_lag_minors,
        breaking_changes: gloo_mesh_breaking_changes(sources)?,
    })
}

#[derive(Debug, Clone, Deserialize)]
struct ChangelogFile {
    path: String,
    file: String,
}

/// A solo-io changelog file (`changelog/<release>/<name>.yaml`).
#[derive(Debug, Clone, Deserialize)]
struct Changelog {
    changelog: Vec<ChangelogEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangelogEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    issue_link: Option<String>,
}

/// The BREAKING_CHANGE entries of the Gloo Mesh changelog files, ordered by release.
fn gloo_mesh_breaking_changes(sources: &Sources) -> Result<Vec<BreakingChange>, ImportError> {
    let file = GLOO_MESH_CHANGELOG;
    let files: Vec<ChangelogFile> = serde_saphyr::from_str(sources.get(file)?)
        .map_err(|e| err(file, first_line(&e.to_string())))?;
    let mut out = Vec::new();
    for f in files {
        let release = f
            .path
            .split('/')
            .nth(1)
            .ok_or_else(|| err(file, format!("{}: not changelog/<release>/<file>", f.path)))?;
        let minor_text: String = release
            .trim_start_matches('v')
            .split('-')
            .next()
            .unwrap_or_default()
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".");
        let minor = Minor::parse(&minor_text).map_err(|e| err(file, format!("{}: {e}", f.path)))?;
        let log: Changelog = serde_saphyr::from_str(&f.file)
            .map_err(|e| err(file, format!("{}: {}", f.path, first_line(&e.to_string()))))?;
        for entry in log
            .changelog
            .into_iter()
            .filter(|e| e.kind == "BREAKING_CHANGE")
        {
            out.push(BreakingChange {
                minor,
                release: release.to_string(),
                description: entry.description.unwrap_or_default().trim().to_string(),
                link: entry.issue_link,
                source: format!("solo-io/gloo-mesh {}", f.path),
            });
        }
    }
    // Pre-releases (`v1.0.0-beta4`) before their release (`v1.0.0`).
    out.sort_by(|a, b| {
        (a.minor, !a.release.contains('-'), &a.release).cmp(&(
            b.minor,
            !b.release.contains('-'),
            &b.release,
        ))
    });
    Ok(out)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MspiderReadings {
    no_mixed_upgrade: Rule<bool>,
    no_rollback: Rule<bool>,
    releases: Vec<MspiderRelease>,
    source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MspiderRelease {
    #[serde(default)]
    istio_added: Vec<String>,
}

fn mspider(sources: &Sources) -> Result<MspiderData, ImportError> {
    let r: MspiderReadings = json(sources.get(MSPIDER_READINGS)?, MSPIDER_READINGS)?;
    // Release notes also name minors ("1.23") and patched builds ("1.17.8-fix-20231226"): only
    // plain patch versions are builds one can pick.
    let mut versions: Vec<Version> = r
        .releases
        .iter()
        .flat_map(|rel| rel.istio_added.iter())
        .filter(|v| v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u64>().is_ok()))
        .filter_map(|v| Version::parse(v).ok())
        .collect();
    versions.sort();
    versions.dedup();
    Ok(MspiderData {
        no_mixed_upgrade: r.no_mixed_upgrade,
        no_rollback: r.no_rollback,
        istio_versions: versions,
        source: r.source,
    })
}

/// Builds the compatibility data from `sources`. `date` is the data's date: the manifest's for the
/// committed sources, the day of the download for `compat update`.
pub fn build(sources: &Sources, date: Option<&str>) -> Result<CompatData, ImportError> {
    let manifest = sources.manifest()?;
    let url = manifest
        .files
        .iter()
        .find(|f| f.path == ISTIO_SUPPORT_STATUS)
        .and_then(|f| f.upstream.clone())
        .unwrap_or_default();
    let mut cites = manifest.cites.clone();
    cites.sort();
    let data = CompatData {
        schema_version: 1,
        date: date.unwrap_or(&manifest.date).to_string(),
        sources: cites,
        istio: istio(sources, &url)?,
        gloo_mesh: gloo_mesh(sources)?,
        kmesh: kmesh(sources)?,
        mspider: mspider(sources)?,
    };
    data.validate().map_err(|m| err(MANIFEST, m))?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../../data/compat.json");

    /// `data/compat.json` is exactly what the importer makes from `data/sources/`. To regenerate it
    /// after changing a source: `MESHUP_WRITE_COMPAT=1 cargo test -p meshup-core --lib compat::import`.
    #[test]
    fn committed_compat_json_is_what_the_sources_make() {
        let data = build(&Sources::embedded(), None).expect("the committed sources import");
        let made = serde_json::to_string_pretty(&data).expect("serializable") + "\n";
        if std::env::var_os("MESHUP_WRITE_COMPAT").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/compat.json");
            std::fs::write(path, &made).expect("write data/compat.json");
            return;
        }
        assert_eq!(
            CompatData::parse(COMMITTED, "data/compat.json").expect("committed data parses"),
            data
        );
        assert!(
            made == COMMITTED,
            "data/compat.json is not what data/sources makes: run MESHUP_WRITE_COMPAT=1 cargo test -p meshup-core --lib compat::import"
        );
    }

    #[test]
    fn gloo_mesh_breaking_changes_come_from_the_changelog_files() {
        let data = build(&Sources::embedded(), None).unwrap();
        let changes = &data.gloo_mesh.breaking_changes;
        assert_eq!(changes.len(), 15);
        let in_07: Vec<&str> = changes
            .iter()
            .filter(|c| c.minor == Minor::new(0, 7))
            .map(|c| c.description.as_str())
            .collect();
        assert_eq!(
            in_07.len(),
            3,
            "the NEW_FEATURE entries of v0.7.0 are left out"
        );
        assert!(in_07[0].starts_with("Rename the following CRDs"));
        let v10: Vec<&str> = changes
            .iter()
            .filter(|c| c.minor == Minor::new(1, 0))
            .map(|c| c.release.as_str())
            .collect();
        assert_eq!(
            v10,
            ["v1.0.0-beta1", "v1.0.0-beta4", "v1.0.0-beta5", "v1.0.0"]
        );
        assert_eq!(
            changes[0].source,
            "solo-io/gloo-mesh changelog/v0.5.0/virtual-mesh-default-global-access-control.yaml"
        );
    }

    #[test]
    fn support_status_rows_read_the_tables_way() {
        let yml = r#"
- version: "master"
  supported: "No"
  releaseDate: ""
  eolDate: ""
  k8sVersions: ["1.33"]
  testedK8sVersions: []
- version: "1.32"
  supported: "Yes"
  releaseDate: "November 5, 2026"
  eolDate: "~May 2027 (Expected)"
  k8sVersions: ["1.33", "1.34"]
  testedK8sVersions: ["1.30"]
- version: "1.31"
  supported: "Yes"
  releaseDate: "Aug 20, 2026"
  eolDate: "Mar 1, 2027"
  k8sVersions: ["1.32"]
- version: "1.28"
  supported: "No"
  releaseDate: "Nov 5, 2025"
  eolDate: "Jul 1, 2026"
  k8sVersions: ["1.30"]
  testedK8sVersions: null
"#;
        let rows = parse_support_status(yml).unwrap();
        assert_eq!(rows.len(), 3, "master is not a minor");
        let r = &rows[&Minor::new(1, 32)];
        assert_eq!(r.release_date.as_deref(), Some("2026-11-05"));
        assert_eq!(
            (r.eol.as_deref(), r.eol_status.as_str()),
            (None, "expected")
        );
        assert_eq!(r.tested_k8s, vec![Minor::new(1, 30)]);
        let r = &rows[&Minor::new(1, 31)];
        assert_eq!(
            (r.eol.as_deref(), r.eol_status.as_str()),
            (Some("2027-03-01"), "planned")
        );
        let r = &rows[&Minor::new(1, 28)];
        assert_eq!(
            (r.eol.as_deref(), r.eol_status.as_str()),
            (Some("2026-07-01"), "final")
        );
        assert!(r.tested_k8s.is_empty());
    }

    #[test]
    fn a_broken_table_is_refused_with_the_reason() {
        for (yml, want) in [
            ("<html>rate limited</html>", "supportStatus.yml"),
            (
                "- version: \"1.32\"\n  k8sVersions: []\n",
                "lists no supported Kubernetes version",
            ),
            (
                "- version: \"1.32\"\n  releaseDate: \"soon\"\n  k8sVersions: [\"1.33\"]\n",
                "is not a date",
            ),
            (
                "- version: \"one\"\n  k8sVersions: [\"1.33\"]\n",
                "is not a version",
            ),
            ("[]", "no rows"),
        ] {
            let e = parse_support_status(yml).unwrap_err().to_string();
            assert!(e.contains(want), "{yml:?}: {e}");
        }
    }

    #[test]
    fn a_newer_table_adds_its_minor_and_its_final_date_wins_over_an_announced_one() {
        let mut sources = Sources::embedded();
        let old = sources.get(ISTIO_SUPPORT_STATUS).unwrap().to_string();
        let newer = old.replacen(
            "- version: \"1.30\"",
            "- version: \"1.32\"\n  supported: \"Yes\"\n  releaseDate: \"Nov 12, 2026\"\n  eolDate: \"\"\n  k8sVersions: [\"1.33\", \"1.34\", \"1.35\", \"1.36\", \"1.37\"]\n  testedK8sVersions: []\n- version: \"1.30\"",
            1,
        ).replace("~Aug 2026 (Expected)", "Oct 14, 2026").replacen("supported: \"Yes\"\n  releaseDate: \"Feb 16, 2026\"", "supported: \"No\"\n  releaseDate: \"Feb 16, 2026\"", 1);
        sources.set(ISTIO_SUPPORT_STATUS, newer);
        let data = build(&sources, Some("2026-11-20")).unwrap();
        assert_eq!(data.date, "2026-11-20");
        let r132 = data
            .istio_release(Minor::new(1, 32))
            .expect("the new minor");
        assert_eq!(r132.supported_k8s.first(), Some(&Minor::new(1, 33)));
        assert!(r132.source.contains("supportStatus.yml"));
        let r129 = data.istio_release(Minor::new(1, 29)).unwrap();
        assert_eq!(
            (r129.eol.as_deref(), r129.eol_status.as_str()),
            (Some("2026-10-14"), "final")
        );
        // 1.31 is still known from its announcement.
        assert!(data.istio_release(Minor::new(1, 31)).is_some());
    }
}
