#!/usr/bin/env bash
# scripts/fuzz.sh FUZZTIME (make fuzz): run every fuzz target of the module's
# packages for FUZZTIME (a go test -fuzztime value: 10s, 1m, 500x), one after
# the other, stopping at the first failure. A failing input is saved by go
# test under the package's testdata/fuzz/<FuzzXxx>/ and replays as a regular
# test case afterwards. With no fuzz targets it says so and succeeds.
set -euo pipefail

fuzztime=${1:-10s}
cd "$(dirname "$0")/.."

# <import path> <dir> for every package, then the fuzz targets declared in
# its test files (internal and external), as "<import path> <FuzzXxx>".
# go list honours build constraints, so only targets that build are listed.
targets=$(
	go list -f '{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./... |
		while IFS=$'\t' read -r pkg dir files; do
			for f in $files; do
				sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z0-9_]+ \*testing\.F\).*/\1/p' "$dir/$f"
			done | sort -u | sed "s|^|$pkg |"
		done
)

if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets (func FuzzXxx) in this module"
	exit 0
fi

n=$(printf '%s\n' "$targets" | wc -l)
echo "fuzz: $n target(s), $fuzztime each"
while read -r pkg name; do
	echo "fuzz: $name in $pkg"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" </dev/null ||
		{ echo "fuzz: $name in $pkg failed" >&2; exit 1; }
done <<<"$targets"
echo "fuzz: all $n target(s) passed"
