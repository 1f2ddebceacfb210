//! An in-memory Kubernetes API server for tests (see README.md beside this crate).
