#!/usr/bin/env bash
# Trust policy validation (issue: trust-policy documents; issue 9: validation
# stays linear): keyward's policy.Parse (JSON with positions, every rule,
# and the JSON Schema validator when the rules or the structure check find
# something) beside notation-go v1.3.2's json.Decoder +
# trustpolicy.Document.Validate, in one run, on the same valid documents:
# 10, 1,000, 10,000 and 100,000 statements, each indented and on one line
# (as jq -c writes it), and one statement with 10,000 x509.subject
# identities. Up to 10,000 statements it also runs keyward with the schema
# validator forced on ("+schema", the cost on a document with problems).
# 100,000 statements are over policy.MaxDocumentSize: the benchmark lifts
# the limit to show the growth. Prints the median times, the time per
# statement (per identity; flat means linear growth) and keyward's time as a
# multiple of notation-go's (goal: at most 1.0x, 0.1x for the identities).
# COUNT=n sets the repetitions (default 5), BENCHTIME the go test -benchtime
# (default 1s), BENCH a regexp selecting cases (default all).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench "^BenchmarkValidate\$/${BENCH:-.}" -benchmem -count "${COUNT:-5}" -benchtime "${BENCHTIME:-1s}" -timeout 60m ./policy/)
echo "$out" | grep -E '^(goos|goarch|cpu|Benchmark)' || true
echo
echo "$out" | awk '
/^BenchmarkValidate\/(statements|identities)=/ {
	split($1, parts, "/")
	what = parts[2]; layout = parts[3]; sub("layout=", "", layout)
	impl = parts[4]; sub("impl=", "", impl); sub("-[0-9]+$", "", impl)
	c = what "/" layout
	key = c SUBSEP impl; k = ++count[key]; t[key, k] = $3
	if (!(c in seen)) { seen[c] = 1; order[++ncases] = c }
}
function median(key,   m, i, j, v, a) {
	m = count[key]
	if (m == 0) return 0
	for (i = 1; i <= m; i++) a[i] = t[key, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { v = a[i]; a[i] = a[j]; a[j] = v }
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	printf "%-28s %12s %12s %12s %11s %11s %9s %6s\n", "document", "keyward", "+schema", "notation-go", "keyward/n", "notation/n", "keyward", "goal"
	for (i = 1; i <= ncases; i++) {
		c = order[i]; split(c, w, "/"); split(w[1], nv, "="); n = nv[2]
		k = median(c SUBSEP "keyward"); s = median(c SUBSEP "keyward-always-schema"); g = median(c SUBSEP "notation-go")
		if (k == 0 || g == 0) continue
		goal = (nv[1] == "identities") ? 0.1 : 1.0
		schema = (s > 0) ? sprintf("%9.1f ms", s / 1e6) : sprintf("%12s", "-")
		printf "%-28s %9.1f ms %s %9.1f ms %8.2f us %8.2f us %8.3fx %5.1fx\n", c, k / 1e6, schema, g / 1e6, k / n / 1e3, g / n / 1e3, k / g, goal
		if (k / g > goal) { missed = missed " " c }
	}
	print "\nkeyward/n, notation/n: time per statement (per identity); keyward: keyward time / notation-go time (below 1: keyward is faster)"
	print "+schema: keyward running the JSON Schema validator too, as it does on documents with problems"
	if (missed != "") print "keyward misses its goal on:" missed
}'
