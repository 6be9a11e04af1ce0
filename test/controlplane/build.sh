#!/usr/bin/env bash
# Builds the pinned kube-apiserver, kubectl, etcd and helm from their Go modules, once.
# Binaries land in ${LLMPROXY_CACHE:-$HOME/.cache/llmproxy}/bin/<name>-<version> and are reused;
# plain-name symlinks (bin/kubectl, bin/helm, ...) point at the pinned versions.
# Only Go and the Go module proxy are used; nothing else is downloaded.
#   build.sh                          build what is missing (idempotent)
#   build.sh --print-replaces vX.Y.Z  print the replace block for k8s.io/kubernetes at vX.Y.Z
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

if [ "${1:-}" = "--print-replaces" ]; then
  v="${2:?usage: build.sh --print-replaces vX.Y.Z}"
  mod="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  echo "replace ("
  sed -n '/^replace (/,/^)/p' "$mod" | awk -v s="v0.${v#v1.}" '/=>/ {printf "\t%s => %s %s\n", $1, $1, s}'
  echo ")"
  exit 0
fi

cache="${LLMPROXY_CACHE:-$HOME/.cache/llmproxy}"
bin="$cache/bin"
mkdir -p "$bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0
jobs="${LLMPROXY_BUILD_JOBS:-2}"

die() { printf 'controlplane build: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "go is not on PATH (Go 1.26 is required to build the control plane)"

# A go.mod that drifted from versions.env would cache a binary under the wrong name.
pin() { # module-dir module version
  grep -qE "^require $2 $3\$" "$here/$1/go.mod" ||
    die "$1/go.mod does not require $2 $3 (versions.env and go.mod disagree)"
}
pin kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
pin helm helm.sh/helm/v3 "$HELM_VERSION"

# Two test runs on one machine must not build the same binary at once.
exec 9>"$bin/.build.lock"
flock 9

build() { # name version module-dir package minutes
  local name="$1" version="$2" dir="$3" pkg="$4" minutes="$5"
  local out="$bin/$name-$version"
  if [ ! -x "$out" ]; then
    printf '==> building %s %s (first time only, ~%s min on 2 cores)…\n' "$name" "$version" "$minutes"
    local start=$SECONDS tmp="$out.tmp.$$"
    (cd "$here/$dir" && go build -p "$jobs" -trimpath -ldflags='-s -w' -o "$tmp" "$pkg") ||
      { rm -f "$tmp"; die "building $name $version failed (see the go output above)"; }
    mv -f "$tmp" "$out"
    printf '    built %s in %ss\n' "$out" "$((SECONDS - start))"
  fi
  ln -sfn "$name-$version" "$bin/$name"
}

build etcd "$ETCD_VERSION" etcd ./cmd/etcd 3
build kube-apiserver "$KUBERNETES_VERSION" kubernetes k8s.io/kubernetes/cmd/kube-apiserver 12
build kubectl "$KUBERNETES_VERSION" kubernetes k8s.io/kubernetes/cmd/kubectl 4
build helm "$HELM_VERSION" helm helm.sh/helm/v3/cmd/helm 4
echo "==> control plane binaries ready in $bin"
