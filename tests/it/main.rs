//! The integration tests: one test binary (`cargo test --test it`), so the test support code, the
//! plugin library and the dependencies are compiled and linked once, not once a file.
//!
//! Each module is one area, run alone with a filter: `cargo test --test it apply::`,
//! `cargo test --test it cli_snapshots::`. The real tier is `real` (`cargo test --test it real::`):
//! the plugin against a real Kubernetes control plane and the vendors' real tools (see
//! tests/realcluster/README.md). The others run against the project's fake API server
//! (tests/fake-apiserver) and stand-in tools, each of which says what it plays instead of a real
//! component.

mod support;

mod apply;
mod cli;
mod cli_snapshots;
mod compat_update;
mod e2e;
mod faults;
mod fleet;
mod kill_resume;
mod krew;
mod observe;
mod real;
mod scope;
mod tool_cluster;
