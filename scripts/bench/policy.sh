#!/usr/bin/env bash
# Trust policy validation (issue: trust-policy documents): keyward's
# policy.Parse (JSON with positions, every rule, and the JSON Schema
# validator when the rules or the structure check find something) beside
# notation-go v1.3.2's json.Decoder + trustpolicy.Document.Validate, on the
# same valid documents of 10, 1,000 and 10,000 statements, in one run; and
# keyward with the schema validator forced on ("+schema", the cost on a
# document with problems). Prints the median times, the time per statement
# (flat means linear growth) and the ratios notation-go / keyward (above 1:
# keyward is faster). COUNT=n sets the repetitions (default 5), BENCHTIME
# the go test -benchtime (default 1s).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench '^BenchmarkValidate$' -benchmem -count "${COUNT:-5}" -benchtime "${BENCHTIME:-1s}" ./policy/)
echo "$out" | grep -E '^(goos|goarch|cpu|Benchmark)' || true
echo
echo "$out" | awk '
/^BenchmarkValidate\/statements=/ {
	split($1, parts, "/"); sub("statements=", "", parts[2]); n = parts[2]
	impl = parts[3]; sub("impl=", "", impl); sub("-[0-9]+$", "", impl)
	key = n SUBSEP impl; c = ++count[key]; t[key, c] = $3; sizes[n] = 1
}
function median(key,   m, i, j, v, a) {
	m = count[key]
	for (i = 1; i <= m; i++) a[i] = t[key, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { v = a[i]; a[i] = a[j]; a[j] = v }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	printf "%-10s %12s %12s %12s %13s %13s %8s %8s\n", "statements", "keyward", "+schema", "notation-go", "keyward/stmt", "notation/stmt", "ratio", "+schema"
	split("10 1000 10000", order, " ")
	for (i = 1; i <= 3; i++) {
		n = order[i]; if (!(n in sizes)) continue
		k = median(n SUBSEP "keyward"); s = median(n SUBSEP "keyward-always-schema"); g = median(n SUBSEP "notation-go")
		printf "%-10s %9.3f ms %9.3f ms %9.3f ms %10.2f us %10.2f us %7.2fx %7.2fx\n", n, k / 1e6, s / 1e6, g / 1e6, k / n / 1e3, g / n / 1e3, g / k, g / s
		if (g < k) slower = 1
	}
	print "\nratio = notation-go / keyward (above 1: keyward is faster); +schema: keyward running the JSON Schema validator too, as it does on documents with problems"
	if (slower) print "keyward is slower than notation-go at some size"
}'
