//! The fake API server's own tests, one binary (`cargo test -p fake-apiserver --test it`): `kube_rs`
//! drives it with kube-rs, as kubectl-meshup does; `kubectl` with the real kubectl.

mod kube_rs;
mod kubectl;

/// A namespaced custom resource with a status subresource, for both clients.
const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;
