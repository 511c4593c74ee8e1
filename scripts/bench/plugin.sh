#!/usr/bin/env bash
# The plugin's per-command overhead against a trivial Go process, and
# `notation sign` through keyward against the minimal plugin and a notation
# local key (issue: signing plugin). ROUNDS=n sets the alternating rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^(BenchmarkPluginCommands|BenchmarkNotationSign)$' -benchtime 1x \
	./bench/ -args -rounds "${ROUNDS:-40}"
