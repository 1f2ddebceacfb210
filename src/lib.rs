//! kubectl-meshup: check, plan and apply service-mesh upgrades.
