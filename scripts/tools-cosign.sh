#!/usr/bin/env bash
# scripts/tools-cosign.sh (part of make tools): install the cosign CLI that
# the `keyward scan` tests sign with, idempotently.
#
#   cosign v2.4.3, built by `go install` with -trimpath into $KEYWARD_TOOLS_BIN
#   (default .cache/tools/bin). A stamp file (hash of this script and `go
#   version`) makes a second run skip the build. cosign is large: the first
#   build downloads and compiles several hundred modules (10+ minutes on two
#   cores).
#
# Needs Go and network access to the Go module proxy on the first run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEYWARD_TOOLS_BIN:-$repo/.cache/tools/bin}
version=v2.4.3
pkg=github.com/sigstore/cosign/v2/cmd/cosign

say() { printf 'tools-cosign: %s\n' "$*"; }
die() { printf 'tools-cosign: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go and rerun"
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

# Serialise concurrent runs sharing the directory (a lock of its own, so the
# other tools' script is not held up by this long build).
if command -v flock >/dev/null; then
	exec 9>"$bin/.lock-cosign"
	flock 9
fi

stamp_want=$(cat "$repo/scripts/tools-cosign.sh" <(go version) | sha256sum | cut -d' ' -f1)
stamp_have=$(cat "$bin/.stamp-cosign" 2>/dev/null || true)
if [ "$stamp_want" = "$stamp_have" ] && [ -x "$bin/cosign" ]; then
	say "cosign $version is up to date in $bin"
	exit 0
fi

say "building cosign $version into $bin (large: several minutes)"
start=$(date +%s)
rm -f "$bin/.stamp-cosign"
tmp=$(mktemp -d "$bin/.build-cosign.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# GOWORK=off and a neutral directory: keyward's own go.mod must not take
# part; go install pkg@version resolves cosign's own module graph.
if ! (cd "$tmp" && GOWORK=off GOFLAGS=-trimpath CGO_ENABLED=0 GOBIN="$tmp" \
	go install "$pkg@$version") 2>"$tmp/build.log"; then
	grep -v '^go: downloading ' "$tmp/build.log" >&2 || true
	die "building cosign $version failed (see above)"
fi
[ -x "$tmp/cosign" ] || die "the build did not produce cosign"
mv -f "$tmp/cosign" "$bin/cosign"
printf '%s\n' "$stamp_want" >"$bin/.stamp-cosign"
say "built in $(($(date +%s) - start)) s: $("$bin/cosign" version 2>/dev/null | awk '/^GitVersion:/ {print "cosign " $2}')"
