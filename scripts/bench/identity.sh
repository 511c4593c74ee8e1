#!/usr/bin/env bash
# Trusted identities (issue 11): keyward verify's engine on 200 signatures
# by one signer in one run (package verify, in process), judged three ways:
#   x509.subject:          signatures naming no plugin, notation's identity;
#   keyward-x509.subject:  signatures naming keyward, the same identity
#                          judged by keyward's in-process plugin;
#   keyward:               the same signatures, keyward: identities.
# Goal: keyward at most 1.05x x509.subject (the matcher must not cost).
# COUNT=n sets the repetitions (default 5), BENCHTIME the go test
# -benchtime (default 5x).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench '^BenchmarkIdentities$' -count "${COUNT:-5}" -benchtime "${BENCHTIME:-5x}" ./verify/)
echo "$out" | grep -E '^(goos|goarch|cpu|Benchmark)' || true
echo
echo "$out" | awk '
/^BenchmarkIdentities\// {
	split($1, p, "/"); v = p[2]; sub("-[0-9]+$", "", v); c = ++count[v]; t[v, c] = $3
}
function median(v,   m, i, j, x, a) {
	m = count[v]; if (m == 0) return 0
	for (i = 1; i <= m; i++) a[i] = t[v, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	base = median("x509.subject")
	split("x509.subject keyward-x509.subject keyward", vs, " ")
	printf "%-22s %12s %8s\n", "identities", "200 sigs", "ratio"
	for (i = 1; i <= 3; i++) { m = median(vs[i]); if (m > 0 && base > 0) printf "%-22s %9.2f ms %7.2fx\n", vs[i], m / 1e6, m / base }
	print "\nratio = variant / x509.subject (goal for keyward: at most 1.05x)"
}'
