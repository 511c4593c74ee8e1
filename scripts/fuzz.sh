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
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" and no failing input (golang/go#75804, fixed in
# Go 1.27): a race at the -fuzztime boundary, not a finding. Such a run is
# reported as a flake; a run that wrote a failing input, or failed any other
# way, fails.
flakes=0
while read -r pkg name; do
	echo "fuzz: $name in $pkg"
	dir=$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name
	before=$(ls "$dir" 2>/dev/null | sort || true)
	log=$(mktemp)
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" </dev/null 2>&1 | tee "$log"; then
		rm -f "$log"
		continue
	fi
	after=$(ls "$dir" 2>/dev/null | sort || true)
	if [ "$before" = "$after" ] && grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
		echo "fuzz: $name stopped with Go's fuzztime race (golang/go#75804), no failing input: counted as a flake" >&2
		flakes=$((flakes + 1))
		rm -f "$log"
		continue
	fi
	rm -f "$log"
	echo "fuzz: $name in $pkg failed" >&2
	exit 1
done <<<"$targets"
[ "$flakes" -eq 0 ] || echo "fuzz: $flakes run(s) ended by Go's fuzztime race"
echo "fuzz: all $n target(s) passed"
