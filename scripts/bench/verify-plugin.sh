#!/usr/bin/env bash
# notation verify of one signature through keyward as the verification
# plugin (verification_plugin=true) beside notation's native path, alternately
# (issue 11: goal at most 1.35x). ROUNDS=n sets the alternating rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^BenchmarkNotationVerifyPlugin$' -benchtime 1x ./bench/ -args -rounds "${ROUNDS:-30}"
