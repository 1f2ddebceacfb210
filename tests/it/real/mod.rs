//! The real tier (`cargo test --test it real::`): kubectl-meshup against a real Kubernetes control plane (kube-apiserver,
//! kube-controller-manager, kube-scheduler and etcd of k8s.io/kubernetes v1.34.4, KWOK v0.8.0 as the
//! kubelets), built from Go modules by `scripts/build-realcluster.sh`. See tests/realcluster/README.md.
//!
//! One control plane per test (`harness::RealCluster::start`), at most `MESHUP_REAL_CLUSTERS` (2)
//! at a time.

mod harness;
mod injector;
mod istio;

mod gloo;
mod smoke;

mod apply;
mod incluster;
mod journal;
mod rbac;
