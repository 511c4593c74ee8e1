#!/usr/bin/env bash
# keyward verify end to end (issue: keyward verify): ARTIFACTS (default 200)
# artifacts signed by the notation CLI in a registry process on 127.0.0.1,
# verified in alternating rounds by keyward's library call in process
# (verify.Batch.VerifyAll over all references, as keyward verify runs it),
# notation verify (once per artifact), notation-go v1.3.2 in process (each
# artifact in turn) and the floor (keyward's HTTP requests replayed by a bare
# concurrent client). Prints totals, throughput and ratios; asserts none.
# REGISTRIES=distribution,olareg  ROUNDS=n  CONCURRENCY=n  ARTIFACTS=n
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^BenchmarkVerifyMany$' -benchtime 1x -timeout 60m ./bench/verify/ -args \
	-artifacts "${ARTIFACTS:-200}" -rounds "${ROUNDS:-3}" -concurrency "${CONCURRENCY:-16}" \
	-registries "${REGISTRIES:-distribution,olareg}"
