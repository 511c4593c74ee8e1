#!/usr/bin/env bash
# scripts/tools-helm.sh (part of make tools): build the helm CLI that the
# deployment tests run (helm lint, helm template of deploy/helm/keyward),
# idempotently.
#
# helm v3.21.4 is pinned in tools/helm/go.mod + tools/helm/go.sum: a module
# of its own, because helm needs k8s.io modules at v0.36 while keyward's
# go.mod pins v0.31.0 (the kube-apiserver the tests run). It is built with
# -trimpath into $KEYWARD_TOOLS_BIN (default .cache/tools/bin). A stamp file
# (hash of tools/helm/go.mod, tools/helm/go.sum, this script and
# `go version`) makes a second run skip the build.
#
# Needs Go and, on the first run, the Go module proxy.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEYWARD_TOOLS_BIN:-$repo/.cache/tools/bin}
mod=$repo/tools/helm

say() { printf 'tools-helm: %s\n' "$*"; }
die() { printf 'tools-helm: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go (see tools/helm/go.mod for the version) and rerun"
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

# Serialise concurrent runs; a lock of its own so that scripts/tools.sh and
# this script may run side by side.
if command -v flock >/dev/null; then
	exec 9>"$bin/.lock-helm"
	flock 9
fi

version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3; exit} $1 == "helm.sh/helm/v3" {print $2; exit}' "$mod/go.mod")
[ -n "$version" ] || die "tools/helm/go.mod does not require helm.sh/helm/v3"
stamp_want=$(cat "$mod/go.mod" "$mod/go.sum" "$repo/scripts/tools-helm.sh" <(go version) | sha256sum | cut -d' ' -f1)
stamp_have=$(cat "$bin/.stamp-helm" 2>/dev/null || true)

if [ "$stamp_want" = "$stamp_have" ] && [ -x "$bin/helm" ]; then
	say "helm $version is up to date in $bin"
	exit 0
fi

say "building helm $version into $bin (the first build compiles about 250 modules: a few minutes)"
start=$(date +%s)
rm -f "$bin/.stamp-helm"
tmp=$(mktemp -d "$bin/.build-helm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# helm prints its version from these variables; without them it would say
# v3.x-unreleased.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
# GOWORK=off: a go.work around the checkout must not change the pins;
# -mod=readonly: go.sum is the source of truth, never rewritten here.
if ! (cd "$mod" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 \
	go build -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm) 2>"$tmp/build.log"; then
	grep -v '^go: downloading ' "$tmp/build.log" >&2 || true
	die "building helm failed (see above)"
fi
[ -x "$tmp/helm" ] || die "the build did not produce helm"
mv -f "$tmp/helm" "$bin/helm"
printf '%s\n' "$stamp_want" >"$bin/.stamp-helm"
say "built in $(($(date +%s) - start)) s: $("$bin/helm" version --short)"
