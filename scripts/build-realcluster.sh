#!/usr/bin/env bash
# Builds the real-cluster test tier from Go modules (the Go module proxy is the only source):
#   bin/kube-apiserver, kube-controller-manager, kube-scheduler   k8s.io/kubernetes v1.34.4
#   bin/etcd                                                      go.etcd.io/etcd/server/v3 (the version kubernetes pins)
#   bin/kwok                                                      sigs.k8s.io/kwok v0.8.0
#   bin/helm                                                      helm.sh/helm/v3 v3.21.4
#   bin/istioctl-1.30, bin/istioctl-1.31                          istio.io/istio, release-1.30 and release-1.31 commits
#   charts/istio-<version>/*.tgz                                  the Istio charts of those commits, packaged by that helm
# into $MESHUP_REALCLUSTER_DIR (default: target/realcluster). Each Go module under tests/realcluster/ pins
# its versions in a committed go.sum; builds are -mod=readonly with the machine's own Go (GOTOOLCHAIN=local)
# and reuse the usual Go caches, so a second run only checks that everything is up to date.
#
# Istio publishes no semantic-version tags to the Go module proxy, only commits of its release branches
# (see tests/realcluster/README.md); the binaries and charts are stamped with the release those commits
# lead to (1.30.4, 1.31.0), as Istio's own release build stamps them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${MESHUP_REALCLUSTER_DIR:-$root/target/realcluster}
mkdir -p "$out/bin" "$out/charts"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0

say() { printf 'build-realcluster: %s\n' "$*" >&2; }
timed() {
  local what=$1 start=$SECONDS
  shift
  "$@"
  say "$what: $((SECONDS - start)) s"
}

# Stamp /version as the real release build does (hack/lib/version.sh).
k8s_version=v1.34.4
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=34"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-02-10T00:00:00Z"
done
build_kube() {
  (cd tests/realcluster/kube &&
    go build -trimpath -ldflags "$k8s_ldflags" -o "$out/bin/" tool ./cmd/etcd)
}

build_kwok() {
  (cd tests/realcluster/kwok &&
    go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=0.8.0" -o "$out/bin/" tool)
}

build_helm() {
  (cd tests/realcluster/helm &&
    go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v3.21.4" -o "$out/bin/" tool)
}

# build_istio MINOR VERSION: istioctl-MINOR and the charts of that commit, packaged as VERSION.
build_istio() {
  local minor=$1 version=$2 mod dir commit
  mod=tests/realcluster/istioctl-$minor
  dir=$(cd "$mod" && go list -m -f '{{.Dir}}' istio.io/istio)
  commit=$(cd "$mod" && go list -m -f '{{.Version}}' istio.io/istio)
  commit=${commit##*-}
  local ldflags="-s -w"
  local v=istio.io/istio/pkg/version
  ldflags+=" -X $v.buildVersion=$version -X $v.buildGitRevision=$commit -X $v.buildStatus=Clean"
  ldflags+=" -X $v.buildTag=$version -X $v.buildHub=docker.io/istio -X $v.buildOS=linux -X $v.buildArch=amd64"
  (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$out/bin/istioctl-$minor" istio.io/istio/istioctl/cmd/istioctl)
  local charts=$out/charts/istio-$version
  rm -rf "$charts"
  mkdir -p "$charts"
  local chart
  for chart in base istio-control/istio-discovery gateway istio-cni ztunnel; do
    "$out/bin/helm" package "$dir/manifests/charts/$chart" --version "$version" --app-version "$version" \
      --destination "$charts" >/dev/null
  done
}

# The modules are fetched first (network), then built one after the other: on two cores a parallel
# build only adds memory.
for m in kube kwok helm istioctl-1.30 istioctl-1.31; do
  timed "download $m" bash -c "cd tests/realcluster/$m && go mod download"
done
timed "kube-apiserver, kube-controller-manager, kube-scheduler, etcd" build_kube
timed "kwok" build_kwok
timed "helm" build_helm
timed "istioctl 1.30 and charts" build_istio 1.30 1.30.4
timed "istioctl 1.31 and charts" build_istio 1.31 1.31.0
say "done: $out"
