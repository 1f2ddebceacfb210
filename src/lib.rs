//! kubectl-meshup: check, plan and apply service-mesh upgrades.
//!
//! The shape is observe → decide → act (see README.md):
//! - [`snapshot`], [`version`], [`compat`], [`report`], [`check`] and [`plan`] are the pure core: no
//!   network, no clock, no environment;
//! - the IO edges read clusters into a [`snapshot::ClusterSnapshot`] ([`client`], [`observe`]) and
//!   execute plans;
//! - [`cli`] parses the command line once into settings and runs the commands; [`error`] maps every
//!   outcome to one exit code; [`output`] writes data documents to stdout.

pub mod apply;
pub mod check;
pub mod cli;
pub mod client;
pub mod compat;
pub mod credentials;
pub mod error;
pub mod fleet;
pub mod incluster;
pub mod limits;
pub mod metrics;
pub mod observe;
pub mod output;
pub mod plan;
pub mod publish;
pub mod redact;
pub mod report;
pub mod retry;
pub mod snapshot;
pub mod text;
pub mod verdict;
pub mod version;
