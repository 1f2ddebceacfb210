//! kubectl-meshup's pure core: the decide step of observe → decide → act (see README.md).
//!
//! - [`snapshot`]: the facts a cluster read gives, plain and serializable; [`version`]: the one version
//!   parser;
//! - [`compat`]: the compatibility data (embedded, or parsed from text the caller read) and its look-ups;
//! - [`check`] judges a snapshot into a [`report::CheckReport`]; [`plan`] turns a snapshot and targets
//!   into an upgrade plan; [`verdict`] holds the judgements both (and apply's gates) share;
//! - [`text`]: the one escaping of control characters in anything shown; [`dates`]: calendar dates
//!   as day numbers (the one calendar, jiff's).
//!
//! No network, no clock, no environment, no files: this crate depends on no Kubernetes client, async
//! runtime or HTTP client, and the unit tests in `purity.rs` keep it so. The plugin crate
//! (`kubectl-meshup`) reads clusters and files, executes plans and runs the command line.

#![forbid(unsafe_code)]

pub mod check;
pub mod compat;
pub mod dates;
pub mod plan;
#[cfg(test)]
mod purity;
pub mod report;
pub mod snapshot;
pub mod text;
pub mod verdict;
pub mod version;
