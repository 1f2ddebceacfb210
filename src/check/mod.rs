//! `check`: judges a snapshot against the compatibility data. Pure: the evaluation date is an input.
//!
//! STAND-IN on branch `cli` only, so the CLI compiles before the real rules land from branch `check`
//! (which replaces this file and `render.rs` whole): it judges nothing and returns an empty report.

pub mod render;

use crate::compat::CompatData;
use crate::report::CheckReport;
use crate::snapshot::ClusterSnapshot;

pub fn check(snapshot: &ClusterSnapshot, compat: &CompatData, today: &str) -> CheckReport {
    CheckReport::new(
        today.to_string(),
        compat.date.clone(),
        snapshot.clusters.iter().map(|c| c.name.clone()).collect(),
        Vec::new(),
    )
}
