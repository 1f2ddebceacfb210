//! Istio version paths: the fewest hops from the installed version to the target, each hop within the
//! strategy's limit (compat rules, never hard-coded), every intermediate minor allowed by the cluster's
//! Kubernetes and the other meshes; among the shortest paths, the one that moves furthest first, and
//! the newest known patch of each intermediate minor.
//!
//! Decision: an intermediate minor must be *supported* on the cluster's Kubernetes; "tested, but not
//! supported" is not enough to stop on. Only the target itself may be tested-only, and the plan then
//! warns (the environment check decides that, not this module).

use crate::version::{Minor, Version};

/// One hop of a path, with why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathHop {
    pub from: Version,
    pub to: Version,
    pub reason: String,
    pub downgrade: bool,
}

/// What a path search needs to know.
pub(crate) struct PathRules<'a> {
    /// Most minors one hop may move (canary 2, in-place 1, or less where ambient components limit it).
    pub max_minors: u64,
    /// Why `max_minors`, with its source, cited first in each hop's reason.
    pub max_minors_rule: String,
    /// Why a stop is allowed (`supported on Kubernetes 1.29`), cited for each stop.
    pub allowed_note: String,
    /// `None` when an intermediate minor may be stopped on, otherwise why not.
    pub blocker: &'a dyn Fn(Minor) -> Option<String>,
    /// The version to stop on for an intermediate minor (its newest known patch, in the right flavor).
    pub patch_of: &'a dyn Fn(Minor) -> Option<Version>,
}

/// The path from `from` to `to` (an upgrade). `Err` explains why no path exists.
pub(crate) fn upgrade_path(
    from: Version,
    to: Version,
    rules: &PathRules<'_>,
) -> Result<Vec<PathHop>, String> {
    if to <= from {
        return Ok(Vec::new());
    }
    let (a, b) = (from.minor_line(), to.minor_line());
    if a.major != b.major {
        return Err(format!(
            "no path from {from} to {to}: the matrices say nothing about moving across major versions"
        ));
    }
    if a == b {
        return Ok(vec![PathHop {
            from,
            to,
            reason: format!("patch upgrade within Istio {a}"),
            downgrade: false,
        }]);
    }
    // Minors a (index 0) ..= b (index n). fewest[i]: fewest hops from minor i to the target.
    let n = (b.minor - a.minor) as usize;
    let minor_at = |i: usize| Minor::new(a.major, a.minor + i as u64);
    let step = rules.max_minors.max(1) as usize;
    let blockers: Vec<Option<String>> = (0..=n)
        .map(|i| {
            if i == 0 || i == n {
                None
            } else {
                (rules.blocker)(minor_at(i)).or_else(|| {
                    (rules.patch_of)(minor_at(i))
                        .is_none()
                        .then(|| format!("no known release of Istio {}", minor_at(i)))
                })
            }
        })
        .collect();
    let mut fewest: Vec<Option<usize>> = vec![None; n + 1];
    fewest[n] = Some(0);
    for i in (0..n).rev() {
        fewest[i] = (i + 1..=(i + step).min(n))
            .filter(|&j| blockers[j].is_none())
            .filter_map(|j| fewest[j])
            .min()
            .map(|h| h + 1);
    }
    let Some(total) = fewest[0] else {
        let why: Vec<String> = blockers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| format!("{} ({b})", minor_at(i))))
            .collect();
        return Err(format!(
            "no upgrade path from Istio {from} to {to} moving at most {step} minor(s) per hop: the minors in between cannot be stopped on: {}",
            why.join("; ")
        ));
    };
    let mut hops = Vec::with_capacity(total);
    let mut i = 0;
    let mut current = from;
    while i < n {
        let want = fewest[i].unwrap_or(0).saturating_sub(1);
        let reach = (i + step).min(n);
        // Furthest first among the hops that keep the path shortest.
        let Some(j) = (i + 1..=reach)
            .rev()
            .find(|&j| blockers[j].is_none() && fewest[j] == Some(want))
        else {
            break;
        };
        let next = if j == n {
            to
        } else {
            (rules.patch_of)(minor_at(j)).unwrap_or(to)
        };
        let mut reason = rules.max_minors_rule.clone();
        let skipped: Vec<String> = (j + 1..=reach)
            .filter_map(|k| {
                blockers[k]
                    .as_ref()
                    .map(|b| format!("{} not allowed: {b}", minor_at(k)))
            })
            .collect();
        if j == n {
            reason.push_str(&format!(
                "; {} is the target, {}",
                minor_at(j),
                rules.allowed_note
            ));
        } else {
            reason.push_str(&format!(
                "; {} is the furthest stop that keeps the path shortest, {}, at its newest known patch {next}",
                minor_at(j),
                rules.allowed_note
            ));
        }
        if !skipped.is_empty() {
            reason.push_str(&format!("; {}", skipped.join("; ")));
        }
        hops.push(PathHop {
            from: current,
            to: next,
            reason,
            downgrade: false,
        });
        current = next;
        i = j;
    }
    Ok(hops)
}

/// A downgrade is one hop of at most `max_minors`, flagged.
pub(crate) fn downgrade_path(
    from: Version,
    to: Version,
    max_minors: u64,
    rule: &str,
) -> Result<Vec<PathHop>, String> {
    let distance = to.minor_line().minors_to(from.minor_line());
    if distance < 0 || distance as u64 > max_minors {
        return Err(format!(
            "no downgrade path from Istio {from} to {to}: a downgrade may move at most {max_minors} minor(s) ({rule})"
        ));
    }
    Ok(vec![PathHop {
        from,
        to,
        reason: format!(
            "downgrade of {distance} minor(s), within the limit of {max_minors} ({rule})"
        ),
        downgrade: true,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn path(from: &str, to: &str, max: u64, blocked: &[u64]) -> Result<Vec<String>, String> {
        let blocked = blocked.to_vec();
        let blocker = move |m: Minor| blocked.contains(&m.minor).then(|| "blocked".to_string());
        let patch_of = |m: Minor| Some(Version::new(m.major, m.minor, 9));
        let rules = PathRules {
            max_minors: max,
            max_minors_rule: "rule".into(),
            allowed_note: "allowed".into(),
            blocker: &blocker,
            patch_of: &patch_of,
        };
        upgrade_path(v(from), v(to), &rules)
            .map(|hops| hops.iter().map(|h| h.to.to_string()).collect())
    }

    #[test]
    fn canary_takes_two_minors_per_hop() {
        assert_eq!(
            path("1.20.8", "1.24.6", 2, &[]).unwrap(),
            ["1.22.9", "1.24.6"]
        );
        assert_eq!(path("1.20.8", "1.22.8", 2, &[]).unwrap(), ["1.22.8"]);
    }

    #[test]
    fn in_place_goes_through_every_minor() {
        assert_eq!(
            path("1.20.8", "1.23.1", 1, &[]).unwrap(),
            ["1.21.9", "1.22.9", "1.23.1"]
        );
    }

    #[test]
    fn shortest_then_furthest_first_around_a_blocked_minor() {
        // 1.22 blocked: 1.20 -> 1.21 -> 1.23 -> 1.24 or 1.20 -> 1.21 -> 1.23 ...; three hops either way.
        assert_eq!(
            path("1.20.8", "1.24.6", 2, &[22]).unwrap(),
            ["1.21.9", "1.23.9", "1.24.6"]
        );
        // Odd distance: 1.20 -> 1.23 needs two hops; furthest first gives 1.22 then 1.23.
        assert_eq!(
            path("1.20.8", "1.23.6", 2, &[]).unwrap(),
            ["1.22.9", "1.23.6"]
        );
    }

    #[test]
    fn no_path_names_the_blocked_minors() {
        let err = path("1.20.8", "1.23.6", 1, &[21]).unwrap_err();
        assert!(err.contains("1.21 (blocked)"), "{err}");
    }

    #[test]
    fn patch_upgrade_and_no_op() {
        assert_eq!(path("1.24.2", "1.24.6", 1, &[]).unwrap(), ["1.24.6"]);
        assert!(path("1.24.6", "1.24.6", 1, &[]).unwrap().is_empty());
    }

    #[test]
    fn downgrades_are_limited_and_flagged() {
        let hops = downgrade_path(v("1.24.6"), v("1.23.6"), 1, "rule").unwrap();
        assert!(hops[0].downgrade);
        assert!(downgrade_path(v("1.24.6"), v("1.22.8"), 1, "rule").is_err());
    }
}
