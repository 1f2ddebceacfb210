// The real istioctl and Istio charts of the release-1.30 branch for kubectl-meshup's real-cluster tests.
// Test infrastructure only; built by scripts/build-realcluster.sh.
module meshup.dev/realcluster/istioctl-1.30

go 1.26.0

replace istio.io/api => istio.io/api v1.30.8

replace github.com/envoyproxy/go-control-plane/envoy => github.com/envoyproxy/go-control-plane/envoy v1.37.1-0.20260713214202-ca8ce173c36f

replace istio.io/client-go => istio.io/client-go v1.30.8
