package main

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testpki"
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
		`with an e-mail subject alternative name equal to "bot@acme.example"`,
	} {
		if status != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("explain: status %d, lacks %q:\n%s%s", status, want, stdout, stderr)
		}
	}
}

// TestPolicyIdentities prints the identities of a certificate (PEM, DER,
// JSON) and checks that a policy listing them all validates.
func TestPolicyIdentities(t *testing.T) {
	dir := t.TempDir()
	root := testpki.Root(t, "identities root")
	leaf := root.Leaf(t, "identities leaf", testpki.WithSAN(testpki.SANURI, "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"),
		testpki.WithFulcio(8, "https://token.actions.githubusercontent.com"), testpki.WithFulcio(12, "https://github.com/acme/app"),
		testpki.WithPolicies("1.3.6.1.4.1.99999.1.2"))
	pemFile := testpki.WriteFile(t, dir, "leaf.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644)
	derFile := testpki.WriteFile(t, dir, "leaf.der", leaf.Cert.Raw, 0o644)

	status, stdout, stderr := runPolicy(t, nil, "policy", "identities", pemFile)
	for _, want := range []string{
		`certificate with subject "CN=identities leaf,O=keyward-test,L=Seattle,ST=WA,C=US"`,
		"  x509.subject: CN=identities leaf, O=keyward-test, L=Seattle, ST=WA, C=US\n",
		"  keyward: oidc.issuer=https://token.actions.githubusercontent.com spki.sha256=",
		"  keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri=https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main\n",
		"  keyward: oidc.issuer=https://token.actions.githubusercontent.com fulcio.source-repository-uri=https://github.com/acme/app\n",
		"  keyward: oidc.issuer=https://token.actions.githubusercontent.com policy=1.3.6.1.4.1.99999.1.2\n",
	} {
		if status != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("status %d, stdout lacks %q:\n%s%s", status, want, stdout, stderr)
		}
	}

	status, stdout, _ = runPolicy(t, nil, "policy", "identities", "-o", "json", derFile)
	var rep identitiesReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || status != exitOK || rep.From != "certificate" || len(rep.Identities) != 6 {
		t.Fatalf("json: %v, status %d\n%s", err, status, stdout)
	}
	ids, _ := json.Marshal(func() []string {
		var out []string
		for _, s := range rep.Identities {
			out = append(out, s.Identity)
		}
		return out
	}())
	doc := strings.Replace(keywardPolicy, `"trustedIdentities": [
        "keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri~https://github.com/acme/app/.+",
        "keyward: san.email=bot@acme.example"
      ]`, `"trustedIdentities": `+string(ids), 1)
	policyFile := filepath.Join(dir, "trustpolicy.json")
	if err := os.WriteFile(policyFile, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if status, stdout, _ := runPolicy(t, nil, "policy", "validate", policyFile); status != exitOK {
		t.Errorf("a policy of the printed identities does not validate:\n%s", stdout)
	}

	// A signature envelope: its leaf is used.
	key := testpki.Key(t, "EC-256", "identities envelope")
	sigLeaf := root.Leaf(t, "identities envelope leaf", testpki.WithKey(key), testpki.WithSAN(testpki.SANEmail, "bot@acme.example"))
	for _, mt := range []string{"application/jose+json", "application/cose"} {
		signer, err := signature.NewLocalSigner([]*x509.Certificate{sigLeaf.Cert, root.Cert}, key)
		if err != nil {
			t.Fatal(err)
		}
		env, err := signature.NewEnvelope(mt)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := env.Sign(&signature.SignRequest{Payload: signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: []byte(`{"targetArtifact":{}}`)},
			Signer: signer, SigningTime: time.Now(), SigningScheme: signature.SigningSchemeX509, SigningAgent: "test"})
		if err != nil {
			t.Fatal(err)
		}
		f := testpki.WriteFile(t, dir, "sig", raw, 0o644)
		status, stdout, stderr := runPolicy(t, nil, "policy", "identities", f)
		if status != exitOK || !strings.Contains(stdout, "signature with subject") || !strings.Contains(stdout, "  keyward: san.email=bot@acme.example\n") {
			t.Errorf("%s: status %d\n%s%s", mt, status, stdout, stderr)
		}
	}

	bad := testpki.WriteFile(t, dir, "bad.txt", []byte("hello"), 0o644)
	if status, _, stderr := runPolicy(t, nil, "policy", "identities", bad); status != exitFailure || !strings.Contains(stderr, "neither a certificate") {
		t.Errorf("bad file: status %d, %s", status, stderr)
	}
}
