package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keywardPolicy = `{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "release",
      "registryScopes": ["registry.example.com/acme/app"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:fulcio"],
      "trustedIdentities": [
        "keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri~https://github.com/acme/app/.+",
        "keyward: san.email=bot@acme.example"
      ]
    }
  ]
}
`

// TestPolicyKeywardIdentities runs validate, lint and explain on keyward:
// identities: a bad clause is reported at its line and column with the
// fix, lint warns, explain renders the identity in words.
func TestPolicyKeywardIdentities(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "trustpolicy.json")
	if err := os.WriteFile(good, []byte(keywardPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad", "trustpolicy.json")
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(keywardPolicy, "san.email=", "san.mail=", 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	status, stdout, stderr := runPolicy(t, nil, "policy", "validate", good)
	if status != exitOK {
		t.Fatalf("validate good: status %d\n%s%s", status, stdout, stderr)
	}

	status, stdout, _ = runPolicy(t, nil, "policy", "validate", bad)
	for _, want := range []string{
		bad + `:11:19: error: trust policy statement "release" has keyward identity "keyward: san.mail=bot@acme.example" with an invalid clause at character 10: unknown key "san.mail"`,
		"at /trustPolicies/0/trustedIdentities/1",
		"fix: did you mean san.email?",
	} {
		if status != exitFailure || !strings.Contains(stdout, want) {
			t.Errorf("validate bad: status %d, stdout lacks %q:\n%s", status, want, stdout)
		}
	}

	status, stdout, _ = runPolicy(t, nil, "policy", "validate", "-o", "json", bad)
	var rep struct {
		Files []struct {
			Problems []struct {
				Rule, Pointer, Fix string
				Line, Column       int
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || status != exitFailure || len(rep.Files) != 1 || len(rep.Files[0].Problems) != 1 {
		t.Fatalf("validate json: %v, status %d\n%s", err, status, stdout)
	}
	if p := rep.Files[0].Problems[0]; p.Rule != "identity-keyward-invalid" || p.Line != 11 || p.Column != 19 || p.Pointer != "/trustPolicies/0/trustedIdentities/1" || !strings.Contains(p.Fix, "san.email") {
		t.Errorf("json problem %+v", p)
	}

	_, stdout, _ = runPolicy(t, nil, "policy", "lint", good)
	for _, want := range []string{
		":10:75: warning: keyward identity", "[lint-keyward-uri-host-pattern]",
		":11:10: warning: keyward identity", "[lint-keyward-no-issuer]",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lint lacks %q:\n%s", want, stdout)
		}
	}

	status, stdout, stderr = runPolicy(t, nil, "policy", "explain", "--policy", good, "registry.example.com/acme/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
	for _, want := range []string{
		`a signing certificate issued for the OIDC issuer "https://token.actions.githubusercontent.com"`,
		`with a URI subject alternative name matching the whole pattern "https://github.com/acme/app/.+"`,
		`with a e-mail subject alternative name equal to "bot@acme.example"`,
	} {
		if status != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("explain: status %d, lacks %q:\n%s%s", status, want, stdout, stderr)
		}
	}
}
