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
export GOTOOLCHAIN=local GOFLAGS='-mod=readonly -buildvcs=false' CGO_ENABLED=0
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

# The upstream release builds stamp their version with -X; so do we, from the module's .info
# (its publish time as build date, for reproducible binaries, and its commit when known).
info() { # module-dir module@version field
  local file
  file="$(cd "$here/$1" && go mod download -json "$2" | sed -n 's/.*"Info": "\(.*\)",*/\1/p')"
  case "$3" in
    time) sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$file" ;;
    commit) sed -n 's/.*"Hash":"\([^"]*\)".*/\1/p' "$file" ;;
  esac
}

kube_ldflags() {
  local v="$KUBERNETES_VERSION" minor date commit flags="" pkg
  minor="${v#v1.}"
  minor="${minor%%.*}"
  date="$(info kubernetes "k8s.io/kubernetes@$v" time)"
  commit="$(info kubernetes "k8s.io/kubernetes@$v" commit)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=$commit"
  done
  echo "$flags"
}

helm_ldflags() {
  local p=helm.sh/helm/v3 k8s minor
  k8s="$(cd "$here/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)" # v0.34.2
  minor="${k8s#v0.}"
  minor="${minor%%.*}"
  echo "-X $p/internal/version.version=$HELM_VERSION -X $p/internal/version.gitTreeState=clean" \
    "-X $p/internal/version.gitCommit=$(info helm "$p@$HELM_VERSION" commit)" \
    "-X $p/pkg/lint/rules.k8sVersionMajor=1 -X $p/pkg/lint/rules.k8sVersionMinor=$minor" \
    "-X $p/pkg/chartutil.k8sVersionMajor=1 -X $p/pkg/chartutil.k8sVersionMinor=$minor"
}

build() { # name version module-dir package minutes [function printing extra ldflags]
  local name="$1" version="$2" dir="$3" pkg="$4" minutes="$5" extra=""
  local out="$bin/$name-$version"
  if [ ! -x "$out" ]; then
    if [ -n "${6:-}" ]; then extra="$("$6")" || die "reading module info for $name failed"; fi
    printf '==> building %s %s (first time only, ~%s min on 2 cores)…\n' "$name" "$version" "$minutes"
    local start=$SECONDS tmp="$out.tmp.$$"
    (cd "$here/$dir" && go build -p "$jobs" -trimpath -ldflags="-s -w $extra" -o "$tmp" "$pkg") ||
      { rm -f "$tmp"; die "building $name $version failed (see the go output above)"; }
    mv -f "$tmp" "$out"
    printf '    built %s in %ss\n' "$out" "$((SECONDS - start))"
  fi
  ln -sfn "$name-$version" "$bin/$name"
}

build etcd "$ETCD_VERSION" etcd ./cmd/etcd 2
build kube-apiserver "$KUBERNETES_VERSION" kubernetes k8s.io/kubernetes/cmd/kube-apiserver 10 kube_ldflags
build kubectl "$KUBERNETES_VERSION" kubernetes k8s.io/kubernetes/cmd/kubectl 2 kube_ldflags
build helm "$HELM_VERSION" helm helm.sh/helm/v3/cmd/helm 3 helm_ldflags
echo "==> control plane binaries ready in $bin"
