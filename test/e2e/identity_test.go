package e2e

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
)

const (
	idIssuer   = "https://token.actions.githubusercontent.com"
	idWorkflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

func identityPolicy(scope string, ids ...string) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "1.0",
		"trustPolicies": []map[string]any{{
			"name":                  "e2e",
			"registryScopes":        []string{scope},
			"signatureVerification": map[string]string{"level": "strict"},
			"trustStores":           []string{"ca:e2e"},
			"trustedIdentities":     ids,
		}},
	})
	return b
}

// TestKeywardIdentities signs with verification_plugin=true (JWS and COSE,
// file key, on an OCI layout and in a registry) so that notation v1.3.2 calls keyward's verify-signature, and
// checks that notation verify passes or fails per trusted identity: keyward:
// identities judged by the matcher, x509.subject judged by keyward with
// notation's rule, and no applicable identity a failure. A signature made
// without the option is judged by notation itself, which knows no keyward:
// identity.
func TestKeywardIdentities(t *testing.T) {
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	root := testpki.Root(t, "e2e identity root")
	n.AddTrustStore(t, "ca", "e2e", root.Cert)
	dir := t.TempDir()
	key := testpki.Key(t, "EC-256", "e2e identity signer")
	leaf := root.Leaf(t, "identity signer", testpki.WithKey(key),
		testpki.WithSAN(testpki.SANURI, idWorkflow), testpki.WithSAN(testpki.SANEmail, "bot@acme.example"),
		testpki.WithFulcio(8, idIssuer), testpki.WithFulcio(20, "push"))
	keyID := "file:" + testpki.WriteFile(t, dir, "id.key", testpki.KeyPEM(t, key), 0o600)
	chain := testpki.WriteFile(t, dir, "id.chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644)

	cases := []struct {
		name string
		ids  []string
		ok   bool
		want string
	}{
		{"keyward exact", []string{"keyward: oidc.issuer=" + idIssuer + " san.uri=" + idWorkflow}, true, ""},
		{"keyward pattern and Fulcio field", []string{`keyward: oidc.issuer=` + idIssuer + ` san.uri~https://github\.com/acme/app/\.github/workflows/release\.yml@refs/heads/(main|release) fulcio.build-trigger=push`}, true, ""},
		{"keyward other workflow", []string{"keyward: oidc.issuer=" + idIssuer + " san.uri=https://github.com/acme/app/.github/workflows/other.yml@refs/heads/main"}, false, "does not match"},
		{"keyward URI pattern never matches the e-mail SAN", []string{`keyward: oidc.issuer=` + idIssuer + ` san.uri~bot@acme\.example`}, false, "does not match"},
		{"keyward other issuer", []string{"keyward: oidc.issuer=https://accounts.google.com san.email=bot@acme.example"}, false, "issued for"},
		{"x509.subject judged by keyward", []string{"x509.subject: C=US, ST=WA, O=keyward-test, CN=identity signer"}, true, ""},
		{"x509.subject mismatch", []string{"x509.subject: C=US, ST=WA, O=keyward-test, CN=someone else"}, false, "matches none"},
		{"only another plugin's identity", []string{"com.example.other:anything"}, false, "no trusted identity applies"},
	}
	kw := testenv.KeywardBinary(t)
	for _, tg := range []target{{name: "oci-layout"}, {name: "olareg", reg: testenv.StartOlareg(t)}} {
		for _, format := range []string{"jws", "cose"} {
			t.Run(tg.name+"/"+format, func(t *testing.T) {
				signRef, verifyArgs, scope := tg.artifact(t, "e2e/identity")
				n.MustRun(t, append([]string{"sign", "--plugin", "keyward", "--id", keyID, "--signature-format", format,
					"--plugin-config", "cert_chain=" + chain, "--plugin-config", "signing_mode=envelope",
					"--plugin-config", "verification_plugin=true"}, signRef...)...)
				kwArgs := []string{"verify", "--policy", filepath.Join(n.ConfigDir, "trustpolicy.json"),
					"--trust-store", filepath.Join(n.ConfigDir, "truststore"), "-o", "json"}
				if tg.reg == nil {
					kwArgs = append(kwArgs, verifyArgs...) // --oci-layout --scope local/layout <path>@<digest>
				} else {
					kwArgs = append(kwArgs, "--plain-http", verifyArgs[len(verifyArgs)-1])
				}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						n.SetTrustPolicy(t, identityPolicy(scope, tc.ids...))
						// keyward verify judges the same signature in process.
						kwOut, kwErr := runKeyward(t, kw, n, kwArgs...)
						checkKeywardVerdict(t, kwOut, kwErr, tc.ok, tc.ids[0], tc.want)
						stdout, stderr, err := n.Run(t, append([]string{"verify", "-v"}, verifyArgs...)...)
						if tc.ok {
							if err != nil || !strings.Contains(stdout, "Successfully verified") {
								t.Fatalf("notation verify: %v\n%s%s", err, stdout, stderr)
							}
							return
						}
						if err == nil {
							t.Fatalf("notation verify passed, want a failure\n%s", stdout)
						}
						if out := stdout + stderr; !strings.Contains(out, `trusted identify verification by plugin "keyward" failed`) || !strings.Contains(out, tc.want) {
							t.Errorf("notation verify failed with %q, want keyward's reason with %q", out, tc.want)
						}
					})
				}
			})
		}
	}

	t.Run("without verification_plugin notation judges", func(t *testing.T) {
		layout, digest := testenv.NewOCILayout(t, t.TempDir()+"/layout")
		n.MustRun(t, "sign", "--plugin", "keyward", "--id", keyID, "--plugin-config", "cert_chain="+chain,
			"--plugin-config", "signing_mode=envelope", "--oci-layout", layout+"@"+digest)
		n.SetTrustPolicy(t, identityPolicy("local/layout", "keyward: oidc.issuer="+idIssuer+" san.uri="+idWorkflow))
		stdout, stderr, err := n.Run(t, "verify", "-v", "--oci-layout", "--scope", "local/layout", layout+"@"+digest)
		if err == nil || !strings.Contains(stdout+stderr, "no x509 trusted identities are configured") {
			t.Errorf("notation verify: %v\n%s%s", err, stdout, stderr)
		}
	})

	t.Run("raw mode refuses verification_plugin", func(t *testing.T) {
		layout, digest := testenv.NewOCILayout(t, t.TempDir()+"/layout")
		_, stderr, err := n.Run(t, "sign", "--plugin", "keyward", "--id", keyID, "--plugin-config", "cert_chain="+chain,
			"--plugin-config", "verification_plugin=true", "--oci-layout", layout+"@"+digest)
		if err == nil || !strings.Contains(stderr, "verification_plugin=true needs signing_mode=envelope") {
			t.Errorf("notation sign: %v\n%s", err, stderr)
		}
	})
}

// checkKeywardVerdict checks keyward verify's JSON line: the same verdict as
// notation, the trustedIdentity check passed by the keyward plugin in
// process naming the identity that matched, or failed with its reason.
func checkKeywardVerdict(t *testing.T, out string, err error, ok bool, id, why string) {
	t.Helper()
	var r struct {
		Verified   bool `json:"verified"`
		Signatures []struct {
			Checks []struct{ Check, Outcome, Message string } `json:"checks"`
		} `json:"signatures"`
	}
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || len(r.Signatures) != 1 {
		t.Fatalf("keyward verify -o json (%v): %v\n%s", err, jerr, out)
	}
	if (err == nil) != ok || r.Verified != ok {
		t.Errorf("keyward verify: verified %v (%v), want %v\n%s", r.Verified, err, ok, out)
	}
	for _, c := range r.Signatures[0].Checks {
		if c.Check != "trustedIdentity" {
			continue
		}
		if ok && (c.Outcome != "passed" || !strings.Contains(c.Message, `verified by plugin "keyward"`) || (id != "*" && !strings.Contains(c.Message, strconv.Quote(id)))) {
			t.Errorf("keyward verify trustedIdentity check %+v, want a pass naming %q", c, id)
		}
		if !ok && (c.Outcome != "failed" || !strings.Contains(c.Message, why)) {
			t.Errorf("keyward verify trustedIdentity check %+v, want a failure with %q", c, why)
		}
		return
	}
	t.Errorf("keyward verify reports no trustedIdentity check:\n%s", out)
}
