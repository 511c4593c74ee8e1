#!/usr/bin/env bash
# keyward verify against a registry with token authentication (issue 14):
# ARTIFACTS (default 200) artifacts signed by the notation CLI in
# distribution v3.1.2 without authentication and in distribution v3.1.2
# with auth.token and the test token issuer, verified alternately by one
# keyward verify process each. Prints times, requests and token requests
# per artifact, and the ratio (goal: at most 1.1x); asserts none.
# ROUNDS=n  CONCURRENCY=n  ARTIFACTS=n  X5C=true (tokens carry the certificate)
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^BenchmarkVerifyTokenAuth$' -benchtime 1x -timeout 60m ./bench/verifyauth/ -args \
	-artifacts "${ARTIFACTS:-200}" -rounds "${ROUNDS:-5}" -concurrency "${CONCURRENCY:-16}" -x5c="${X5C:-false}"
