#!/usr/bin/env bash
# make bench: run every benchmark script in scripts/bench/, in name order.
# Each compares keyward with its reference (notation, notation-go, a minimal
# plugin) side by side in one run and prints times and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for s in scripts/bench/*.sh; do
	echo "### $s"
	bash "$s" || status=1
done
exit $status
