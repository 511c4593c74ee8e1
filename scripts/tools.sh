#!/usr/bin/env bash
# scripts/tools.sh (make tools): install what keyward's tests, demo and
# benchmarks run, idempotently.
#
#   - notation v1.3.2, olareg v0.1.2, distribution v3.1.2 (as `registry`) and
#     staticcheck, built with -trimpath from the versions pinned in
#     tools/go.mod + tools/go.sum into $KEYWARD_TOOLS_BIN (default
#     .cache/tools/bin). A stamp file (hash of tools/go.mod, tools/go.sum,
#     this script and `go version`) makes a second run skip the build.
#   - SoftHSM2 (softhsm2-util, /usr/lib/softhsm/libsofthsm2.so) and OpenSC
#     (pkcs11-tool), from the Debian packages softhsm2 and opensc via apt-get
#     when missing (as root, or through sudo). If they cannot be installed,
#     this fails when CI=true and only warns otherwise.
#
# Needs Go (tools/go.mod says which version) and network access to the Go
# module proxy on the first run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEYWARD_TOOLS_BIN:-$repo/.cache/tools/bin}
tools=(notation olareg registry staticcheck)
pkgs=(
	github.com/notaryproject/notation/cmd/notation
	github.com/olareg/olareg/cmd/olareg
	github.com/distribution/distribution/v3/cmd/registry
	honnef.co/go/tools/cmd/staticcheck
)
# notation's release builds leave BuildMetadata empty, so `notation version`
# prints plain v1.3.2 rather than v1.3.2+unreleased.
ldflags="-X github.com/notaryproject/notation/internal/version.BuildMetadata="

say() { printf 'tools: %s\n' "$*"; }
die() { printf 'tools: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# --- Go tools --------------------------------------------------------------

command -v go >/dev/null || die "go is not on PATH; install Go (see tools/go.mod for the version) and rerun"
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

# Serialise concurrent runs (several make targets or checkouts may share
# the directory); flock is in util-linux, present on Debian.
if command -v flock >/dev/null; then
	exec 9>"$bin/.lock"
	flock 9
fi

stamp_want=$(cat "$repo/tools/go.mod" "$repo/tools/go.sum" "$repo/scripts/tools.sh" <(go version) | sha256sum | cut -d' ' -f1)
stamp_have=$(cat "$bin/.stamp" 2>/dev/null || true)
all_there=true
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || all_there=false; done

if [ "$stamp_want" = "$stamp_have" ] && $all_there; then
	say "notation, olareg, registry, staticcheck are up to date in $bin"
else
	versions=$(awk '$1 ~ /^(github.com\/notaryproject\/notation|github.com\/olareg\/olareg|github.com\/distribution\/distribution\/v3|honnef.co\/go\/tools)$/ {printf "%s%s %s", sep, $1, $2; sep=", "}' "$repo/tools/go.mod")
	say "building $versions"
	say "into $bin (the first build downloads and compiles about 300 modules: several minutes)"
	start=$(date +%s)
	rm -f "$bin/.stamp"
	# Build into a fresh directory and move the binaries in only when every
	# one of them built, so a failed build never leaves a mix of versions.
	tmp=$(mktemp -d "$bin/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# GOWORK=off: a go.work around the checkout must not change the pins;
	# -mod=readonly: go.sum is the source of truth, never rewritten here.
	# The "go: downloading" lines are dropped; errors are shown.
	if ! (cd "$repo/tools" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 \
		go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}") 2>"$tmp/build.log"; then
		grep -v '^go: downloading ' "$tmp/build.log" >&2 || true
		die "building the tools failed (see above)"
	fi
	for t in "${tools[@]}"; do
		[ -x "$tmp/$t" ] || die "the build did not produce $t"
		mv -f "$tmp/$t" "$bin/$t"
	done
	printf '%s\n' "$stamp_want" >"$bin/.stamp"
	say "built in $(($(date +%s) - start)) s: $("$bin/notation" version | awk '/^Version:/ {print "notation " $2}'), $("$bin/staticcheck" -version)"
fi

# --- SoftHSM2 and OpenSC ---------------------------------------------------

softhsm_module=/usr/lib/softhsm/libsofthsm2.so
missing=()
if ! command -v softhsm2-util >/dev/null || [ ! -e "$softhsm_module" ]; then missing+=(softhsm2); fi
command -v pkcs11-tool >/dev/null || missing+=(opensc)

if [ ${#missing[@]} -eq 0 ]; then
	say "softhsm2-util, $softhsm_module and pkcs11-tool are present"
	exit 0
fi

say "installing Debian packages: ${missing[*]}"
if apt_install "${missing[@]}"; then
	if command -v softhsm2-util >/dev/null && [ -e "$softhsm_module" ] && command -v pkcs11-tool >/dev/null; then
		say "installed ${missing[*]}"
		exit 0
	fi
	why="apt-get installed them, but softhsm2-util, pkcs11-tool or $softhsm_module is still missing"
else
	why=$apt_why
fi

msg="cannot install ${missing[*]}: $why; install SoftHSM2 and OpenSC yourself (Debian/Ubuntu: apt-get install softhsm2 opensc) so that softhsm2-util, pkcs11-tool and $softhsm_module exist"
if is_ci; then
	die "$msg"
fi
say "warning: $msg; the PKCS#11 tests will be skipped"
