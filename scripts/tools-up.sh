#!/usr/bin/env bash
# Install or locate the tools test/integration/deploy.test.ts checks the Helm chart with:
#   helm          v3.16.4, built from source with the Go toolchain (go install via the Go module proxy)
#   k8svalidate   tools/k8svalidate (strict Kubernetes API schema check), built with go build
#   promtool      Debian's `prometheus` package
#   prometheus    Debian's `prometheus` package
#
# Idempotent: what is built is cached under ${FARAD_CACHE_DIR:-$HOME/.cache/farad}/bin and reused
# (helm by version, k8svalidate by a hash of its sources); promtool/prometheus are taken from PATH
# and apt-get installed (as root, without starting the package's service) when missing.
# The first helm build compiles ~300 packages: several minutes on 2 cores, once.
#
# Output: progress on stderr; on success, KEY=VALUE lines on stdout:
#   HELM=... HELM_VERSION=... K8SVALIDATE=... PROMTOOL=... PROMETHEUS=... PROMETHEUS_VERSION=... GO_VERSION=...
# Exit status non-zero, with a message saying what is missing, when a tool cannot be had.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${FARAD_CACHE_DIR:-${HOME:-/root}/.cache/farad}"
BIN="$CACHE_ROOT/bin"
HELM_VERSION=v3.16.4
# Kubernetes version helm assumes without a cluster (.Capabilities.KubeVersion, lint deprecation
# checks): helm's Makefile derives it from its k8s.io/client-go (v0.31.x → 1.31).
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=31
MIN_GO_MINOR=25 # tools/k8svalidate/go.mod: go 1.25

log() { printf '[tools-up] %s\n' "$*" >&2; }
die() { printf '[tools-up] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$BIN"

# One build at a time per cache (parallel test runs, CI + a developer shell).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/tools.lock"
  flock 9
fi

# --- Go ----------------------------------------------------------------------------------
need_go() {
  command -v go >/dev/null 2>&1 \
    || die "the Go toolchain (go >= 1.$MIN_GO_MINOR) is needed to build helm and tools/k8svalidate; install it from https://go.dev/dl/ and put go on PATH"
  local v minor
  v="$(go env GOVERSION)"
  minor="$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$v")"
  [[ "$minor" =~ ^[0-9]+$ ]] && ((minor >= MIN_GO_MINOR)) \
    || die "go $v is too old: tools/k8svalidate needs go >= 1.$MIN_GO_MINOR"
}

# --- helm --------------------------------------------------------------------------------
HELM="$BIN/helm"
# The stamp records how the cached binary was built (version and assumed Kubernetes version).
HELM_STAMP="$BIN/helm.stamp"
helm_build="$HELM_VERSION k8s-$HELM_K8S_MAJOR.$HELM_K8S_MINOR"
helm_version() { "$HELM" version --template '{{.Version}}' 2>/dev/null || true; }
if [[ -x "$HELM" && "$(helm_version)" == "$HELM_VERSION" && "$(cat "$HELM_STAMP" 2>/dev/null)" == "$helm_build" ]]; then
  log "helm $HELM_VERSION: $HELM (cached)"
else
  need_go
  log "building helm $HELM_VERSION with $(go env GOVERSION) into $BIN (first time: several minutes)"
  start=$SECONDS
  pkg=helm.sh/helm/v3
  ( cd "$CACHE_ROOT" && GOBIN="$BIN" GOFLAGS=-buildvcs=false go install -trimpath \
      -ldflags "-s -w -X $pkg/internal/version.version=$HELM_VERSION \
        -X $pkg/pkg/chartutil.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR \
        -X $pkg/pkg/lint/rules.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR" \
      "$pkg/cmd/helm@$HELM_VERSION" ) >&2 \
    || die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed (is the Go module proxy $(go env GOPROXY) reachable?)"
  [[ "$(helm_version)" == "$HELM_VERSION" ]] || die "built $HELM but it reports version '$(helm_version)'"
  echo "$helm_build" >"$HELM_STAMP"
  log "helm $HELM_VERSION built in $((SECONDS - start))s"
fi

# --- k8svalidate -------------------------------------------------------------------------
SRC="$ROOT/tools/k8svalidate"
[[ -f "$SRC/go.mod" ]] || die "$SRC/go.mod not found"
hash="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-16)"
K8SVALIDATE="$BIN/k8svalidate-$hash"
if [[ -x "$K8SVALIDATE" ]]; then
  log "k8svalidate: $K8SVALIDATE (cached)"
else
  need_go
  log "building tools/k8svalidate (first time: a few minutes)"
  start=$SECONDS
  ( cd "$SRC" && GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$K8SVALIDATE.tmp" . ) >&2 \
    || die "go build tools/k8svalidate failed"
  mv -f "$K8SVALIDATE.tmp" "$K8SVALIDATE"
  # Drop binaries of older sources.
  find "$BIN" -maxdepth 1 -name 'k8svalidate-*' ! -name "k8svalidate-$hash" -delete 2>/dev/null || true
  log "k8svalidate built in $((SECONDS - start))s"
fi

# --- promtool / prometheus (Debian package) ----------------------------------------------
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 \
    || die "promtool/prometheus not found and apt-get is not available: install Prometheus (promtool and prometheus on PATH)"
  [[ "$(id -u)" == 0 ]] \
    || die "promtool/prometheus not found: run 'sudo apt-get install -y prometheus' (or bash .ci/run as root)"
  log "apt-get install prometheus (its service is kept from starting)"
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  apt_log="$(mktemp)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >"$apt_log" 2>&1; then
    ((created_policy)) && rm -f "$policy"
    cat "$apt_log" >&2
    die "apt-get install prometheus failed"
  fi
  ((created_policy)) && rm -f "$policy"
  rm -f "$apt_log"
fi
PROMTOOL="$(command -v promtool)" || die "promtool not found after installing prometheus"
PROMETHEUS="$(command -v prometheus)" || die "prometheus not found after installing prometheus"
PROMETHEUS_VERSION="$("$PROMETHEUS" --version 2>&1 | sed -nE 's/^prometheus, version ([^ ]+).*/\1/p' | head -n 1)"
log "promtool: $PROMTOOL; prometheus $PROMETHEUS_VERSION: $PROMETHEUS"

echo "HELM=$HELM"
echo "HELM_VERSION=$HELM_VERSION"
echo "K8SVALIDATE=$K8SVALIDATE"
echo "PROMTOOL=$PROMTOOL"
echo "PROMETHEUS=$PROMETHEUS"
echo "PROMETHEUS_VERSION=$PROMETHEUS_VERSION"
echo "GO_VERSION=$(go env GOVERSION 2>/dev/null || echo none)"
