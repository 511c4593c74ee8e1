#!/usr/bin/env bash
# scripts/tools-k8s.sh (part of make tools): build the Kubernetes control
# plane that the admission-webhook tests (test/k8s) run, idempotently.
#
#   - kube-apiserver v1.31.0 and etcd v3.5.15, built with -trimpath from the
#     versions pinned in test/k8stools/go.mod + go.sum (a module of its own:
#     the main module never requires k8s.io/kubernetes) into
#     $KEYWARD_TOOLS_BIN (default .cache/tools/bin). A stamp file (hash of
#     test/k8stools/go.mod, go.sum, this script and `go version`) makes a
#     second run skip the build.
#
# The version -X flags make /version report v1.31.0 rather than
# v0.0.0-master+$Format:%H$ (client version-skew logic keys off it).
# The first run downloads about 540 MB of modules and compiles for about
# three minutes on two cores; the Go module proxy must serve v1.31.0's
# staging modules (v1.31.0 was checked to be complete; do not bump it
# without checking every staging module's zip and checksum first).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEYWARD_TOOLS_BIN:-$repo/.cache/tools/bin}
mod=$repo/test/k8stools
version=v1.31.0

say() { printf 'tools-k8s: %s\n' "$*"; }
die() { printf 'tools-k8s: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go and rerun"
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

# Serialise concurrent runs of this script; a lock of its own, so that it
# does not wait for scripts/tools.sh building the other tools.
if command -v flock >/dev/null; then
	exec 9>"$bin/.lock-k8s"
	flock 9
fi

stamp_want=$(cat "$mod/go.mod" "$mod/go.sum" "$repo/scripts/tools-k8s.sh" <(go version) | sha256sum | cut -d' ' -f1)
stamp_have=$(cat "$bin/.stamp-k8s" 2>/dev/null || true)
if [ "$stamp_want" = "$stamp_have" ] && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
	say "kube-apiserver $version and etcd are up to date in $bin"
	exit 0
fi

say "building kube-apiserver $version and etcd v3.5.15 into $bin (the first build takes about three minutes)"
start=$(date +%s)
rm -f "$bin/.stamp-k8s"
# Build into a fresh directory and move both binaries in only when both
# built, so a failed build never leaves a mix of versions.
tmp=$(mktemp -d "$bin/.build-k8s.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

minor=${version#v1.}
minor=${minor%%.*}
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ld="$ld -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
# GOWORK=off: a go.work around the checkout must not change the pins;
# -mod=readonly: go.sum is the source of truth, never rewritten here.
build() {
	(cd "$mod" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 go build -trimpath "$@") 2>"$tmp/build.log" || {
		grep -v '^go: downloading ' "$tmp/build.log" >&2 || true
		die "building $* failed (see above)"
	}
}
build -ldflags "$ld" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
build -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
for t in kube-apiserver etcd; do
	[ -x "$tmp/$t" ] || die "the build did not produce $t"
	mv -f "$tmp/$t" "$bin/$t"
done
printf '%s\n' "$stamp_want" >"$bin/.stamp-k8s"
say "built in $(($(date +%s) - start)) s: $("$bin/kube-apiserver" --version), $("$bin/etcd" --version | head -1)"
