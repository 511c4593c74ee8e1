#!/usr/bin/env bash
# Signature verification (package verify) beside notation-go v1.3.2's
# verifier, in process, on the same envelopes, statement and trust store:
#   one:   a single signature, keyward with a fresh Verifier (nothing cached);
#   run:   32 different signatures by one signer in one run (one keyward
#          Verifier; one notation-go verifier);
#   again: the same signature again with a warm keyward Verifier.
# "plain" leaves carry no revocation URL; "ocsp" leaves name an OCSP
# responder on 127.0.0.1 that notation-go asks for every signature.
# Prints median times and ratios notation-go / keyward (above 1: keyward is
# faster). COUNT=n sets the repetitions (default 5), BENCHTIME the go test
# -benchtime (default 1s).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench '^BenchmarkVerify$' -benchmem -count "${COUNT:-5}" -benchtime "${BENCHTIME:-1s}" ./verify/)
echo "$out" | grep -E '^(goos|goarch|cpu|Benchmark)' || true
echo
echo "$out" | awk '
/^BenchmarkVerify\// {
	split($1, p, "/"); impl = p[4]; sub("-[0-9]+$", "", impl)
	key = p[2] SUBSEP p[3] SUBSEP impl; c = ++count[key]; t[key, c] = $3
}
function median(key,   m, i, j, v, a) {
	m = count[key]; if (m == 0) return 0
	for (i = 1; i <= m; i++) a[i] = t[key, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { v = a[i]; a[i] = a[j]; a[j] = v }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	printf "%-6s %-6s %14s %14s %8s\n", "leaf", "case", "keyward", "notation-go", "ratio"
	split("plain ocsp", leaves, " "); split("one run again", cases, " ")
	for (i = 1; i <= 2; i++) for (j = 1; j <= 3; j++) {
		k = median(leaves[i] SUBSEP cases[j] SUBSEP "keyward"); g = median(leaves[i] SUBSEP cases[j] SUBSEP "notation-go")
		if (k == 0) continue
		if (g > 0) printf "%-6s %-6s %11.3f ms %11.3f ms %7.2fx\n", leaves[i], cases[j], k / 1e6, g / 1e6, g / k
		else printf "%-6s %-6s %11.3f ms %14s %8s\n", leaves[i], cases[j], k / 1e6, "-", "-"
		if (g > 0 && g < k) slower = 1
	}
	print "\nratio = notation-go / keyward (above 1: keyward is faster); run = 32 signatures"
	if (slower) print "keyward is slower than notation-go in some case"
}'
