#!/usr/bin/env bash
# PKCS#11 signing (issue: PKCS#11 keys): notation sign with a SoftHSM2 EC-256
# key against the same with a file key, alternately, and the plugin's
# per-command latency beside the floor of opening the token once.
# ROUNDS=n sets the alternating rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^(BenchmarkNotationSignPKCS11|BenchmarkPluginCommandsPKCS11)$' -benchtime 1x \
	./bench/pkcs11/ -args -rounds "${ROUNDS:-30}"
