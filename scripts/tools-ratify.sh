#!/usr/bin/env bash
# scripts/tools-ratify.sh (part of make tools): build Ratify v1.4.0, the
# reference Gatekeeper external data provider that keyward serve's
# comparison test and `make bench` run beside keyward, idempotently.
#
#   `go install github.com/ratify-project/ratify/cmd/ratify@v1.4.0` builds
#   from Ratify's own go.mod and go.sum (checked against the Go checksum
#   database), so the version pin is this script's RATIFY_VERSION. The binary
#   lands in $KEYWARD_TOOLS_BIN (default .cache/tools/bin) as `ratify`; a
#   stamp file (hash of this script and `go version`) makes a second run
#   skip the build.
#
# The first build downloads and compiles several hundred modules (Ratify
# links the Kubernetes, Azure and AWS clients): about ten minutes on two
# cores. If it fails, this script fails when CI=true (the comparison test
# would otherwise only be skipped) and only warns otherwise.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEYWARD_TOOLS_BIN:-$repo/.cache/tools/bin}
RATIFY_VERSION=v1.4.0
pkg=github.com/ratify-project/ratify/cmd/ratify

say() { printf 'tools: %s\n' "$*"; }
die() { printf 'tools: %s\n' "$*" >&2; exit 1; }
is_ci() { case "${CI:-}" in true | TRUE | True | 1) return 0 ;; *) return 1 ;; esac; }
fail() {
	if is_ci; then die "$*"; fi
	say "warning: $*; the Ratify comparison test and benchmark will be skipped"
	exit 0
}

command -v go >/dev/null || die "go is not on PATH; install Go (see tools/go.mod for the version) and rerun"
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

# A lock of its own: scripts/tools.sh holds $bin/.lock while it builds,
# and the two builds need not wait for each other.
if command -v flock >/dev/null; then
	exec 8>"$bin/.lock-ratify"
	flock 8
fi

stamp_want=$(cat "$repo/scripts/tools-ratify.sh" <(go version) | sha256sum | cut -d' ' -f1)
stamp_have=$(cat "$bin/.stamp-ratify" 2>/dev/null || true)
if [ "$stamp_want" = "$stamp_have" ] && [ -x "$bin/ratify" ]; then
	say "ratify $RATIFY_VERSION is up to date in $bin"
	exit 0
fi

say "building ratify $RATIFY_VERSION into $bin (the first build compiles several hundred modules: about ten minutes)"
start=$(date +%s)
rm -f "$bin/.stamp-ratify"
tmp=$(mktemp -d "$bin/.build-ratify.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# GOWORK=off and a neutral directory: no go.work or go.mod around the
# checkout may change the versions Ratify's go.sum pins. Ratify's release
# builds stamp internal/version.GitTag; do the same so `ratify version`
# names the release.
if ! (cd "$tmp" && GOWORK=off GOFLAGS= CGO_ENABLED=0 GOBIN="$tmp" \
	go install -trimpath \
		-ldflags "-w -X github.com/ratify-project/ratify/internal/version.GitTag=$RATIFY_VERSION" \
		"$pkg@$RATIFY_VERSION") 2>"$tmp/build.log"; then
	grep -v '^go: downloading ' "$tmp/build.log" >&2 || true
	fail "building ratify $RATIFY_VERSION failed (see above)"
fi
[ -x "$tmp/ratify" ] || fail "go install did not produce ratify"
mv -f "$tmp/ratify" "$bin/ratify"
printf '%s\n' "$stamp_want" >"$bin/.stamp-ratify"
say "built ratify $RATIFY_VERSION in $(($(date +%s) - start)) s"
