#!/usr/bin/env bash
# keyward serve (issue 12, "Benchmarks"): admission latency p50/p99,
# client-side and server-side (keyward's Server-Timing header), cold (fresh
# server process, every image new) and warm (cached), at concurrency 1, 16
# and 64, for IMAGES (default 200) images signed by notation in a registry
# process on 127.0.0.1; keyward serve beside `ratify serve` v1.4.0
# (scripts/tools-ratify.sh) on the same images and registry, alternately in
# one run, and the HTTP floor (HEAD manifest, GET referrers, GET signature
# manifest, GET envelope blob by a bare Go client). Then the RSS of a
# process holding CACHE (default 100,000) verdicts in serve.Cache, in a
# process of its own. Prints quantiles, ratios and the goals met or missed.
#   IMAGES=n CONCURRENCY=1,16,64 WARM_PASSES=n ROUNDS=n REGISTRY=olareg|distribution
#   KEYWARD_API=verify|gatekeeper|admission CACHE=n
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/servebench.test" ./bench/serve/
# The test binary finds the module root from its working directory.
cd bench/serve
"$tmp/servebench.test" -test.run '^$' -test.bench '^BenchmarkServe$' -test.benchtime 1x -test.timeout 30m \
	-images "${IMAGES:-200}" -concurrency "${CONCURRENCY:-1,16,64}" -warm-passes "${WARM_PASSES:-3}" \
	-rounds "${ROUNDS:-3}" -registry "${REGISTRY:-olareg}" -keyward-api "${KEYWARD_API:-admission}"
"$tmp/servebench.test" -test.run '^$' -test.bench '^BenchmarkCacheMemory$' -test.benchtime 1x -test.timeout 10m \
	-cache-entries "${CACHE:-100000}" -registry "${REGISTRY:-olareg}"
