//! `plan`: turns a snapshot and targets into an ordered `UpgradePlan`. Pure.

mod model;

pub use model::*;
