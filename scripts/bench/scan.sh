#!/usr/bin/env bash
# keyward scan (issue 13, "Benchmarks"): ARTIFACTS (default 1000) artifacts
# across REPOSITORIES (default 20) repositories of a registry process on
# 127.0.0.1 (a few signed by the notation CLI, copied with their signatures
# into every repository), scanned with a trust policy in alternating rounds
# by the built `keyward scan --policy ... --output json`, a sequential walk
# of the same requests (SigScan's design: one request at a time) and the
# floor (the same requests by a bare client at keyward scan's per-registry
# concurrency); then keyward scan's peak RSS at a quarter, half and all of
# the artifacts. Prints times, ratios and the goals met or missed.
#   ARTIFACTS=n REPOSITORIES=n UNSIGNED=n (per repository) ROUNDS=n
#   LATENCIES=0,10ms (delay added per request by a proxy: a remote registry)
#   REGISTRY_CONCURRENCY=n,... (0: keyward scan's default) MEM_RUNS=n (0: no memory runs)
#   REGISTRY=distribution|olareg
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/scanbench.test" ./bench/scan/
# The test binary finds the module root from its working directory.
cd bench/scan
"$tmp/scanbench.test" -test.run '^$' -test.bench '^BenchmarkScan$' -test.benchtime 1x -test.timeout 20m \
	-artifacts "${ARTIFACTS:-1000}" -repositories "${REPOSITORIES:-20}" -unsigned "${UNSIGNED:-10}" \
	-rounds "${ROUNDS:-3}" -registry "${REGISTRY:-distribution}" -latencies "${LATENCIES:-0,10ms}" -registry-concurrency "${REGISTRY_CONCURRENCY:-0}" -mem-runs "${MEM_RUNS:-1}"
