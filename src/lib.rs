//! kubectl-meshup: check, plan and apply service-mesh upgrades.
//!
//! The shape is observe → decide → act (see README.md):
//! - [`snapshot`], [`version`], [`compat`], [`report`], [`check`] and [`plan`] are the pure core: no
//!   network, no clock, no environment;
//! - the IO edges read clusters into a [`snapshot::ClusterSnapshot`] and execute plans.

pub mod apply;
pub mod check;
pub mod compat;
pub mod plan;
pub mod report;
pub mod snapshot;
pub mod version;
