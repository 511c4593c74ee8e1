package main

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
)

var (
	update         = flag.Bool("update", false, "rewrite the golden files of the policy commands")
	updateExamples = flag.Bool("update-examples", false, "regenerate the example trust store certificates (then run with -update)")
)

const examplesDir = "../../examples"

// exampleCase is one example of examples/ and the artifact its explain
// golden is about.
type exampleCase struct {
	dir, policy, arg string
}

var exampleCases = []exampleCase{
	{"one-team-per-repository", "trustpolicy.json", "registry.example.com/team-a/api@sha256:4a6c2d8e0f0b3e1c5a7d9b2f4e6a8c0d2b4f6e8a0c2e4a6b8d0f2c4e6a8b0d2f"},
	{"global-audit", "trustpolicy.json", "registry.example.com/experiments/tool:v2"},
	{"timestamped-signatures", "trustpolicy.json", "registry.example.com/base/debian@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
	{"signing-authority", "trustpolicy.json", "registry.example.com/vendor/agent@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
	{"blob", "trustpolicy.blob.json", "release-binaries"},
	{"blob", "trustpolicy.blob.json", ""},
}

func runPolicy(t *testing.T, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := run(args, strings.NewReader(""), &out, &errb, func(k string) string { return environ[k] })
	return status, out.String(), errb.String()
}

// TestPolicyExamplesAreValid validates every example policy with its own
// trust store, as users would with notation.
func TestPolicyExamplesAreValid(t *testing.T) {
	if *updateExamples {
		writeExampleStores(t)
	}
	dirs, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(examplesDir, d.Name(), "trustpolicy*.json"))
		if len(files) == 0 {
			t.Errorf("example %s has no trust policy", d.Name())
		}
		if _, err := os.Stat(filepath.Join(examplesDir, d.Name(), "README.md")); err != nil {
			t.Errorf("example %s has no README.md", d.Name())
		}
		for _, f := range files {
			n++
			status, stdout, stderr := runPolicy(t, nil, "policy", "validate", "--trust-store", filepath.Join(examplesDir, d.Name(), "truststore"), f)
			if status != exitOK || !strings.Contains(stdout, ": valid ") {
				t.Errorf("%s: status %d\n%s%s", f, status, stdout, stderr)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d example policies", n)
	}
}

// TestPolicyGoldens compares explain and lint, in text and JSON, on the
// examples with testdata/golden. Run with -update to rewrite them.
func TestPolicyGoldens(t *testing.T) {
	for _, ex := range exampleCases {
		file := filepath.Join(examplesDir, ex.dir, ex.policy)
		store := filepath.Join(examplesDir, ex.dir, "truststore")
		name := ex.dir
		if ex.arg == "" {
			name += "-global"
		}
		for _, output := range []string{"text", "json"} {
			ext := map[string]string{"text": ".txt", "json": ".json"}[output]
			args := []string{"policy", "explain", "--policy", file, "--trust-store", store, "--output", output}
			if ex.arg != "" {
				args = append(args, ex.arg)
			}
			status, stdout, stderr := runPolicy(t, nil, args...)
			if status != exitOK {
				t.Fatalf("explain %s: status %d: %s", name, status, stderr)
			}
			golden(t, "explain-"+name+ext, stdout)

			if ex.arg == "" {
				continue // one lint per example
			}
			status, stdout, stderr = runPolicy(t, nil, "policy", "lint", "--fail-on", "never", "--trust-store", store, "--output", output, file)
			if status != exitOK {
				t.Fatalf("lint %s: status %d: %s", name, status, stderr)
			}
			golden(t, "lint-"+name+ext, stdout)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestPolicyGoldens -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// writeExampleStores generates the example trust stores: long-lived roots
// (2025 to 2075) so that goldens stay stable.
func writeExampleStores(t *testing.T) {
	notBefore := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2075, 1, 1, 0, 0, 0, 0, time.UTC)
	root := func(cn string, name pkix.Name) []byte {
		c := testpki.Root(t, cn, testpki.WithValidity(notBefore, notAfter), testpki.WithSubject(name))
		return testpki.CertsPEM(c.Cert)
	}
	corp := func(ou, cn string) pkix.Name {
		return pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Locality: []string{"Seattle"},
			Organization: []string{"Example Corp"}, OrganizationalUnit: []string{ou}, CommonName: cn}
	}
	exampleCorp := root("example-corp", corp("Security", "Example Corp Root CA"))
	stores := map[string][]byte{
		"one-team-per-repository/truststore/x509/ca/team-a/team-a-root.crt":            root("team-a", corp("Team A", "Team A Root CA")),
		"one-team-per-repository/truststore/x509/ca/team-b/team-b-root.crt":            root("team-b", corp("Team B", "Team B Root CA")),
		"global-audit/truststore/x509/ca/example-corp/example-corp-root.crt":           exampleCorp,
		"timestamped-signatures/truststore/x509/ca/example-corp/example-corp-root.crt": exampleCorp,
		"timestamped-signatures/truststore/x509/tsa/example-tsa/example-tsa-root.crt":  root("example-tsa", corp("Timestamping", "Example Corp TSA Root")),
		"signing-authority/truststore/x509/signingAuthority/vendor/vendor-root.crt": root("vendor", pkix.Name{Country: []string{"DE"}, Province: []string{"Berlin"},
			Organization: []string{"Vendor GmbH"}, OrganizationalUnit: []string{"Product Security"}, CommonName: "Vendor Root CA"}),
		"blob/truststore/x509/ca/example-corp/example-corp-root.crt": exampleCorp,
	}
	for rel, data := range stores {
		p := filepath.Join(examplesDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPolicyValidateExitStatus(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(examplesDir, "signing-authority", "trustpolicy.json")
	bad := filepath.Join(dir, "trustpolicy.json")
	if err := os.WriteFile(bad, []byte(`{"version":"1.0","trustPolicies":[{"name":"a","registryScopes":["Registry.example.com/App"],"signatureVerification":{"level":"strict","override":{"integrity":"log"}},"trustStores":["ca:x"],"trustedIdentities":["*"],"comment":"x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		stdout []string
		stderr []string
	}{
		{"valid", []string{"policy", "validate", good}, exitOK, []string{"valid OCI trust policy, 1 statement"}, nil},
		{"invalid reports every problem", []string{"policy", "validate", good, bad}, exitFailure, []string{
			"invalid OCI trust policy, 3 problems",
			bad + ":1:65: error: registry scope \"Registry.example.com/App\" is not valid",
			`"integrity" verification can not be overridden`,
			`unknown property "comment" in statement #1`,
			"at /trustPolicies/0/registryScopes/0, statement \"a\", value \"Registry.example.com/App\"",
			`fix: write the repository only, without scheme, tag or digest, in lowercase: "Registry.example.com/app"`,
		}, nil},
		{"missing file", []string{"policy", "validate", filepath.Join(dir, "none.json")}, exitFailure, []string{"trust policy is not present"}, nil},
		{"no file", []string{"policy", "validate"}, exitUsage, nil, []string{"requires at least 1 arg"}},
		{"bad type", []string{"policy", "validate", "--type", "image", good}, exitUsage, nil, []string{`--type "image" is not supported`}},
		{"bad output", []string{"policy", "validate", "-o", "yaml", good}, exitUsage, nil, []string{`--output "yaml" is not supported`}},
		{"missing store", []string{"policy", "validate", "--trust-store", dir, good}, exitFailure, []string{
			`the trust store "vendor" of type "signingAuthority" does not exist`, "[trust-store-unusable]"}, nil},
		{"lint bad fail-on", []string{"policy", "lint", "--fail-on", "sometimes", good}, exitUsage, nil, []string{`--fail-on "sometimes"`}},
		{"explain needs a reference", []string{"policy", "explain", "--policy", good}, exitUsage, nil, []string{"needs the artifact reference"}},
		{"explain no statement", []string{"policy", "explain", "--policy", good, "other.example/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}, exitFailure, nil, []string{`artifact "other.example/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" has no applicable trust policy statement`}},
		{"explain invalid policy", []string{"policy", "explain", "--policy", bad, "registry.example.com/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}, exitFailure, nil, []string{"invalid OCI trust policy, 3 problems"}},
		{"explain bad reference", []string{"policy", "explain", "--policy", good, "https://registry.example.com/app"}, exitFailure, nil, []string{`reference "https://registry.example.com/app" is not host[:port]/repository:tag`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := runPolicy(t, nil, tt.args...)
			if status != tt.status {
				t.Errorf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", status, tt.status, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}

func TestPolicyValidateJSON(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "policy.blob.json")
	if err := os.WriteFile(bad, []byte("{\n  \"version\": \"1.0\",\n  \"trustPolicies\": [\n    {\"name\": \"g\", \"globalPolicy\": true, \"signatureVerification\": {\"level\": \"skip\"}}\n  ]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	status, stdout, _ := runPolicy(t, nil, "policy", "validate", "--output", "json", bad)
	if status != exitFailure {
		t.Fatalf("status %d", status)
	}
	var out struct {
		Valid bool
		Files []struct {
			File, Type, DetectedBy string
			Valid                  bool
			Problems               []struct {
				Rule, Severity, Pointer, Statement, Value, Message, Fix string
				Line, Column                                            int
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if out.Valid || len(out.Files) != 1 || out.Files[0].Type != "blob" || out.Files[0].DetectedBy != "file name policy.blob.json" {
		t.Fatalf("unexpected report: %s", stdout)
	}
	ps := out.Files[0].Problems
	if len(ps) != 1 {
		t.Fatalf("problems: %+v", ps)
	}
	p := ps[0]
	if p.Rule != "global-policy-skip" || p.Line != 4 || p.Column != 76 || p.Pointer != "/trustPolicies/0/signatureVerification/level" ||
		p.Statement != "g" || p.Value != `"skip"` || p.Severity != "error" ||
		p.Message != "global blob trust policy statement cannot have verification level set to skip" || p.Fix == "" {
		t.Errorf("problem: %+v", p)
	}
}

func TestPolicySchemaCommand(t *testing.T) {
	status, stdout, _ := runPolicy(t, nil, "policy", "schema")
	if status != exitOK {
		t.Fatalf("status %d", status)
	}
	want, err := os.ReadFile("../../trustpolicy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Error("policy schema does not print trustpolicy.schema.json")
	}
}

// TestPolicyDefaultsToNotationConfig checks that explain and lint read
// notation's own folder when no flag says otherwise.
func TestPolicyDefaultsToNotationConfig(t *testing.T) {
	xdg := t.TempDir()
	cfg := filepath.Join(xdg, "notation")
	src := filepath.Join(examplesDir, "signing-authority")
	copyTree(t, filepath.Join(src, "truststore"), filepath.Join(cfg, "truststore"))
	data, err := os.ReadFile(filepath.Join(src, "trustpolicy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "trustpolicy.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": t.TempDir(), "XDG_CONFIG_HOME": xdg}
	status, stdout, stderr := runPolicy(t, env, "policy", "explain", "registry.example.com/vendor/agent@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
	if status != exitOK || !strings.Contains(stdout, "vendor-root.crt: CN=Vendor Root CA") || !strings.Contains(stdout, filepath.Join(cfg, "truststore", "x509", "signingAuthority", "vendor")) {
		t.Errorf("status %d\n%s%s", status, stdout, stderr)
	}
	env = map[string]string{"HOME": t.TempDir(), "NOTATION_CONFIG": cfg}
	status, stdout, stderr = runPolicy(t, env, "policy", "lint", filepath.Join(cfg, "trustpolicy.json"))
	if status != exitOK || !strings.Contains(stdout, "no findings") {
		t.Errorf("status %d\n%s%s", status, stdout, stderr)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
