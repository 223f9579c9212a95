#!/usr/bin/env bash
# Builds the test control plane from the pinned Go modules in this folder, once per machine:
# etcd, kube-apiserver, kube-controller-manager (kube/go.mod) and kwok (kwok/go.mod), into
#   ${XDG_CACHE_HOME:-~/.cache}/lagduel/controlplane/<kubernetes version>/
# with KWOK's stage definitions (kwok-stages.yaml). A binary already there is kept. Prints the folder.
# Each build's wall time goes to build-times.txt there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
k8s="$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/kube/go.mod")"
dest="${XDG_CACHE_HOME:-$HOME/.cache}/lagduel/controlplane/$k8s"
mkdir -p "$dest"
exec 9>"$dest/.build.lock"
flock 9  # one build per cache folder at a time

minor="${k8s#v1.}"; minor="${minor%%.*}"
stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# The version the apiserver reports (/version, discovery) instead of v0.0.0-master.
kver=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kver+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kver+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$stamp"
done

build() {  # build <module dir> <binary> <package> [ldflags]
  local dir="$1" bin="$2" pkg="$3" ldflags="${4:-}"
  [ -x "$dest/$bin" ] && return 0
  (cd "$here/$dir" && go mod download)  # no compile; a fresh module cache fills here
  local start=$SECONDS
  (cd "$here/$dir" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w $ldflags" -o "$dest/$bin.tmp" "$pkg")
  mv "$dest/$bin.tmp" "$dest/$bin"
  echo "$bin $((SECONDS - start))s $(go env GOVERSION) $stamp" >> "$dest/build-times.txt"
  echo "built $bin in $((SECONDS - start))s" >&2
}

build kube etcd ./etcd
build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kver"
build kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kver"
kwok="$(awk '$1 == "sigs.k8s.io/kwok" { print $2 }' "$here/kwok/go.mod")"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=${kwok#v}"
# KWOK's stages (what it does to nodes and pods) ship in its module, not in the binary: node Ready, pods
# Running/Ready, completed and deleted, as kwokctl's defaults.
if [ ! -s "$dest/kwok-stages.yaml" ]; then
  stages="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
  for f in node/fast/node-initialize pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"; cat "$stages/$f.yaml"
  done > "$dest/kwok-stages.yaml.tmp"
  mv "$dest/kwok-stages.yaml.tmp" "$dest/kwok-stages.yaml"
fi
echo "$dest"
