package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
)

// TestVerifyGoldens holds the text and JSON output of keyward verify, byte
// for byte, to testdata/golden/verify-*.txt: layouts and registries (with
// and without the referrers API), pass, identity mismatch, audit warnings,
// skip, no statement, unsigned, missing and malformed references. What
// changes from run to run (digests, certificate fingerprints and serials,
// times, temporary paths, registry ports, elapsed milliseconds) is replaced
// by placeholders numbered in order of appearance; everything else must not
// change. Run with -update to rewrite the files.
func TestVerifyGoldens(t *testing.T) {
	w := newSignedWorld(t)
	layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	w.sign(t, "--oci-layout", layout+"@"+digest)
	olareg, dist := testenv.StartOlareg(t), testenv.StartDistribution(t)
	signed := []string{w.pushSigned(t, olareg, "team/app"), w.pushSigned(t, dist, "team/app")}
	unsigned, _ := testenv.PushArtifact(t, dist, "team/app")
	good := w.policy(t, "good", "local/app", "strict", cmdIdentity)
	other := w.policy(t, "other", "local/app", "strict", "x509.subject: C=US, ST=WA, O=keyward-test, CN=someone else")
	audit := w.policy(t, "audit", "local/app", "audit", "x509.subject: C=US, ST=WA, O=keyward-test, CN=someone else")
	skip := w.policy(t, "skip", "local/app", "skip", "")
	all, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{
		map[string]any{"name": "all", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "strict"},
			"trustStores": []string{"ca:cmd"}, "trustedIdentities": []string{cmdIdentity}},
		map[string]any{"name": "skipped", "registryScopes": []string{dist.Host + "/team/skipped"}, "signatureVerification": map[string]string{"level": "skip"}},
	}})
	allFile := testpki.WriteFile(t, w.policies, "all.json", all, 0o644)
	env := map[string]string{"HOME": w.n.Home}
	layoutArgs := func(policy string) []string {
		return []string{"--policy", policy, "--trust-store", w.store, "--oci-layout", "--scope", "local/app", "--concurrency", "1"}
	}
	registryArgs := []string{"--policy", allFile, "--trust-store", w.store, "--insecure-registry", olareg.Host, "--insecure-registry", dist.Host, "--concurrency", "1"}
	tagRef := strings.Split(signed[0], "@")[0] + ":" + "latest"
	registryRefs := []string{signed[0], signed[1], unsigned, dist.Host + "/team/nothing:v1", dist.Host + "/team/skipped:v1",
		"not a reference", dist.Host + "/Team/app:v1", dist.Host + "/team/app", tagRef}

	cases := []struct {
		name string
		args []string
	}{
		{"layout", append(layoutArgs(good), layout+"@"+digest, layout+":"+testenv.LayoutTag)},
		{"layout-verbose", append(append(layoutArgs(good), "-v"), layout+"@"+digest, layout+":"+testenv.LayoutTag)},
		{"layout-json", append(append(layoutArgs(good), "-o", "json"), layout+"@"+digest, layout+":"+testenv.LayoutTag)},
		{"layout-mismatch", append(layoutArgs(other), layout+"@"+digest)},
		{"layout-mismatch-verbose", append(append(layoutArgs(other), "-v"), layout+"@"+digest)},
		{"layout-mismatch-json", append(append(layoutArgs(other), "-o", "json"), layout+"@"+digest)},
		{"layout-audit", append(layoutArgs(audit), layout+"@"+digest)},
		{"layout-audit-json", append(append(layoutArgs(audit), "-o", "json"), layout+"@"+digest)},
		{"layout-skip", append(layoutArgs(skip), "/nonexistent/layout@"+digest, "/nonexistent/layout:v1")},
		{"layout-skip-json", append(append(layoutArgs(skip), "-o", "json"), "/nonexistent/layout@"+digest)},
		{"layout-bad", append(layoutArgs(good), layout, layout+"@sha256:abc", "/nonexistent/layout@"+digest, layout+":nosuchtag")},
		{"registry", append(append([]string{}, registryArgs...), registryRefs...)},
		{"registry-verbose", append(append([]string{"-v"}, registryArgs...), registryRefs...)},
		{"registry-json", append(append([]string{"-o", "json"}, registryArgs...), registryRefs...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out, errOut := runVerifyCmd(t, env, "", tc.args...)
			got := fmt.Sprintf("status %d\n--- stdout\n%s--- stderr\n%s", status, out, errOut)
			got = normalizeRun(got, map[string]string{
				layout: "<LAYOUT>", w.store: "<STORE>", w.policies: "<POLICIES>",
				olareg.Host: "<OLAREG>", dist.Host: "<DISTRIBUTION>",
			})
			got = sortRegistryLines(got)
			compareGolden(t, "verify-"+tc.name+".txt", got)
		})
	}
}

var (
	runDigestRE  = regexp.MustCompile(`sha256:[0-9a-f]{12,64}`)
	runHexRE     = regexp.MustCompile(`\b[0-9a-fA-F]{16,}\b`)
	runTimeRE    = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	runElapsedRE = regexp.MustCompile(`"elapsedMs":\d+`)
	runSizeRE    = regexp.MustCompile(`"size":\d+`)
	runB64RE     = regexp.MustCompile(`"[A-Za-z0-9+/]{40,}={0,2}"`)
)

// sortRegistryLines sorts the per-registry lines of -v, which come in the
// order of the hosts, whose ports differ between runs.
func sortRegistryLines(s string) string {
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "registry <") {
			j++
		}
		sort.Strings(lines[i:j])
		i = j
	}
	return strings.Join(lines, "\n")
}

// normalizeRun replaces what differs between runs by placeholders.
func normalizeRun(s string, literal map[string]string) string {
	// Longest literal first, so that a path inside another is not cut.
	keys := make([]string, 0, len(literal))
	for k := range literal {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if len(keys[j]) > len(keys[i]) {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, literal[k])
	}
	number := func(re *regexp.Regexp, name string) {
		seen := map[string]string{}
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			if p, ok := seen[m]; ok {
				return p
			}
			p := fmt.Sprintf("<%s-%d>", name, len(seen)+1)
			seen[m] = p
			return p
		})
	}
	number(runDigestRE, "DIGEST")
	number(runB64RE, "BASE64")
	number(runHexRE, "HEX")
	s = runTimeRE.ReplaceAllString(s, "<TIME>")
	s = runElapsedRE.ReplaceAllString(s, `"elapsedMs":0`)
	s = runSizeRE.ReplaceAllString(s, `"size":0`)
	return s
}

// compareGolden compares got with testdata/golden/name, or rewrites it with
// -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
