#!/usr/bin/env bash
# scripts/tools-opa.sh (part of make tools): build the OPA CLI that the
# deployment tests run to evaluate the Gatekeeper ConstraintTemplate's Rego
# (deploy/helm/keyward/files/keywardverification.rego), idempotently.
#
# OPA v1.22.4 is pinned in tools/opa/go.mod + tools/opa/go.sum, a module of
# its own like tools/helm. It is built with -trimpath into
# $KEYWARD_TOOLS_BIN (default .cache/tools/bin). A stamp file (hash of
# tools/opa/go.mod, tools/opa/go.sum, this script and `go version`) makes a
# second run skip the build.
#
# Needs Go and, on the first run, the Go module proxy.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEYWARD_TOOLS_BIN:-$repo/.cache/tools/bin}
mod=$repo/tools/opa

say() { printf 'tools-opa: %s\n' "$*"; }
die() { printf 'tools-opa: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go (see tools/opa/go.mod for the version) and rerun"
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

# Serialise concurrent runs; a lock of its own so that scripts/tools.sh and
# this script may run side by side.
if command -v flock >/dev/null; then
	exec 9>"$bin/.lock-opa"
	flock 9
fi

version=$(awk '$1 == "require" && $2 == "github.com/open-policy-agent/opa" {print $3; exit} $1 == "github.com/open-policy-agent/opa" {print $2; exit}' "$mod/go.mod")
[ -n "$version" ] || die "tools/opa/go.mod does not require github.com/open-policy-agent/opa"
stamp_want=$(cat "$mod/go.mod" "$mod/go.sum" "$repo/scripts/tools-opa.sh" <(go version) | sha256sum | cut -d' ' -f1)
stamp_have=$(cat "$bin/.stamp-opa" 2>/dev/null || true)

if [ "$stamp_want" = "$stamp_have" ] && [ -x "$bin/opa" ]; then
	say "opa $version is up to date in $bin"
	exit 0
fi

say "building opa $version into $bin (the first build takes a few minutes)"
start=$(date +%s)
rm -f "$bin/.stamp-opa"
tmp=$(mktemp -d "$bin/.build-opa.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ldflags="-s -w"
# GOWORK=off: a go.work around the checkout must not change the pins;
# -mod=readonly: go.sum is the source of truth, never rewritten here.
if ! (cd "$mod" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 \
	go build -trimpath -ldflags "$ldflags" -o "$tmp/opa" github.com/open-policy-agent/opa) 2>"$tmp/build.log"; then
	grep -v '^go: downloading ' "$tmp/build.log" >&2 || true
	die "building opa failed (see above)"
fi
[ -x "$tmp/opa" ] || die "the build did not produce opa"
mv -f "$tmp/opa" "$bin/opa"
printf '%s\n' "$stamp_want" >"$bin/.stamp-opa"
say "built in $(($(date +%s) - start)) s: $("$bin/opa" version | head -1)"
