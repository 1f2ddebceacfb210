//! Upgrade notes on the plan: the one home of the rule that lists, under each Istio hop, the upgrade
//! notes of every minor the hop moves into, and warns where an installed setting (the mesh config and
//! istiod env observe read, the values of the mesh's Helm releases) is one such a note changes,
//! renames or removes, naming the note and its page. Nothing is dropped silently: the warning stands
//! in the plan for the reviewer.

use crate::compat::{CompatData, NoteSetting, UpgradeNotes};
use crate::snapshot::Cluster;
use crate::version::{Minor, Version};

use super::model::HopNote;

/// The notes pages of the minors after `from` up to and including `to` (none for a downgrade).
fn crossed(compat: &CompatData, from: Version, to: Version) -> impl Iterator<Item = &UpgradeNotes> {
    let (from, to): (Minor, Minor) = (from.minor_line(), to.minor_line());
    compat
        .istio
        .upgrade_notes
        .iter()
        .filter(move |n| n.minor > from && n.minor <= to)
}

/// The notes listed under an Istio hop from `from` to `to`.
pub(crate) fn for_hop(compat: &CompatData, from: Version, to: Version) -> Vec<HopNote> {
    crossed(compat, from, to)
        .flat_map(|page| {
            page.notes.iter().map(|n| HopNote {
                minor: page.minor,
                title: n.title.clone(),
                url: page.url.clone(),
            })
        })
        .collect()
}

/// The Gloo Mesh changelog's breaking changes of the minors after `from` up to `to` (runbook step 5:
/// networking resources must conform to the new APIs).
pub(crate) fn gloo_mesh_for_hop(compat: &CompatData, from: Version, to: Version) -> Vec<HopNote> {
    let (from, to) = (from.minor_line(), to.minor_line());
    compat
        .gloo_mesh
        .breaking_changes
        .iter()
        .filter(|c| c.minor > from && c.minor <= to)
        .map(|c| HopNote {
            minor: c.minor,
            title: format!("{} ({})", c.description, c.release),
            url: c.link.clone().unwrap_or_else(|| c.source.clone()),
        })
        .collect()
}

/// One warning per installed setting that a note of a crossed minor changes.
pub(crate) fn setting_warnings(
    cluster: &Cluster,
    compat: &CompatData,
    from: Version,
    to: Version,
) -> Vec<String> {
    let mut out = Vec::new();
    for page in crossed(compat, from, to) {
        for note in &page.notes {
            for setting in &note.settings {
                for place in installed(cluster, &setting.path) {
                    out.push(format!(
                        "{}: `{}` is set ({place}) and Istio {}'s upgrade note \"{}\" {}: read {} before the hop to {to}",
                        cluster.name,
                        setting.path,
                        page.minor,
                        note.title,
                        what_changes(setting),
                        page.url
                    ));
                }
            }
        }
    }
    out
}

fn what_changes(setting: &NoteSetting) -> String {
    match (setting.change.as_str(), &setting.to) {
        ("removed", _) => "removes it".to_string(),
        ("renamed", Some(to)) => format!("renames it to `{to}`"),
        ("default", _) => "changes its default".to_string(),
        _ => "changes what it does".to_string(),
    }
}

/// Where `path` is set in the cluster: `meshConfig.<path>` in a control plane's mesh config,
/// `istiod.env.<NAME>` on istiod, `helm.<chart>[.<values path>]` in a Helm release of that chart.
fn installed(cluster: &Cluster, path: &str) -> Vec<String> {
    let Some(istio) = &cluster.istio else {
        return Vec::new();
    };
    let mut places = Vec::new();
    if let Some(rest) = path.strip_prefix("meshConfig.") {
        for cp in &istio.control_planes {
            if let Some(mesh) = cp.config.as_ref().and_then(|c| c.mesh_config.as_ref())
                && lookup(mesh, rest).is_some()
            {
                places.push(format!("mesh config of istiod revision {}", cp.revision));
            }
        }
    } else if let Some(name) = path.strip_prefix("istiod.env.") {
        for cp in &istio.control_planes {
            if cp.config.as_ref().is_some_and(|c| c.env.contains_key(name)) {
                places.push(format!("env of istiod revision {}", cp.revision));
            }
        }
    } else if let Some(rest) = path.strip_prefix("helm.") {
        let (chart, values_path) = rest.split_once('.').unwrap_or((rest, ""));
        for release in istio.helm_releases.iter().filter(|r| r.chart == chart) {
            if values_path.is_empty() || lookup(&release.values, values_path).is_some() {
                places.push(format!(
                    "Helm release {}/{}",
                    release.namespace, release.name
                ));
            }
        }
    }
    places
}

/// The value at a dotted path, if set (null counts as unset).
fn lookup<'a>(value: &'a serde_json::Value, dotted: &str) -> Option<&'a serde_json::Value> {
    let found = dotted
        .split('.')
        .try_fold(value, |v, key| v.as_object()?.get(key))?;
    (!found.is_null()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hop_lists_the_notes_of_each_minor_it_moves_into_and_none_on_a_downgrade() {
        let compat = CompatData::embedded();
        let v = |s: &str| Version::parse(s).unwrap();
        let notes = for_hop(&compat, v("1.20.8"), v("1.22.8"));
        let minors: std::collections::BTreeSet<String> =
            notes.iter().map(|n| n.minor.to_string()).collect();
        assert_eq!(minors.into_iter().collect::<Vec<_>>(), ["1.21", "1.22"]);
        assert!(notes.iter().any(|n| n.title == "Delta xDS on by default"
            && n.url
                == "https://istio.io/latest/news/releases/1.22.x/announcing-1.22/upgrade-notes/"));
        assert!(for_hop(&compat, v("1.22.8"), v("1.20.8")).is_empty());
        assert!(for_hop(&compat, v("1.22.1"), v("1.22.8")).is_empty());
    }

    #[test]
    fn lookups_follow_dotted_paths_and_ignore_null() {
        let v = serde_json::json!({"a": {"b": {"C_D": "x"}, "n": null}});
        assert!(lookup(&v, "a.b.C_D").is_some());
        assert!(lookup(&v, "a.n").is_none());
        assert!(lookup(&v, "a.b.missing").is_none());
    }
}
