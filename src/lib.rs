//! kubectl-meshup: check, plan and apply service-mesh upgrades.
//!
//! The shape is observe → decide → act (see README.md):
//! - [`snapshot`], [`version`], [`compat`], [`report`], [`check`] and [`plan`] are the pure core, in
//!   the workspace crate `meshup-core` (crates/meshup-core): no network, no clock, no environment, no
//!   files;
//! - the IO edges read clusters into a [`snapshot::ClusterSnapshot`] ([`client`], [`observe`]) and
//!   execute plans;
//! - [`cli`] parses the command line once into settings and runs the commands; [`error`] maps every
//!   outcome to one exit code; [`output`] writes data documents to stdout.

// The pure core lives in its own crate so that purity is a crate boundary (no kube, tokio or
// filesystem dependency can reach it); re-exported under the names it had here, so `crate::plan::…`
// in this crate and `kubectl_meshup::plan::…` in the tests, benchmark and fuzz targets keep working.
pub use meshup_core::{check, compat, dates, plan, report, snapshot, text, verdict, version};

pub mod apply;
pub mod cli;
pub mod client;
pub mod credentials;
pub mod error;
pub mod fleet;
pub mod incluster;
pub mod limits;
pub mod metrics;
pub mod observe;
pub mod output;
pub mod publish;
pub mod redact;
pub mod retry;
pub mod web;
