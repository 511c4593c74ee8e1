//go:build cgo

package pkcs11e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testpki"
)

// TestKeywardIdentitiesTokenKey signs with a SoftHSM key whose certificate
// carries a URI SAN, with verification_plugin=true (JWS and COSE), and
// checks that notation verify, through keyward as verification plugin,
// passes for a keyward: identity pinning the token key or naming the SAN
// and fails for another SAN.
func TestKeywardIdentitiesTokenKey(t *testing.T) {
	r := newRig(t)
	r.tok.StoreCertificate(t, r.root.Cert, "root", nil)
	const san = "spiffe://acme.example/ns/ci/sa/release"
	pub := r.tok.GenerateKey(t, "EC-256", "ident", []byte{42})
	leaf := r.root.Leaf(t, "hsm ident", testpki.WithPublicKey(pub), testpki.WithSAN(testpki.SANURI, san))
	r.tok.StoreCertificate(t, leaf.Cert, "ident", []byte{42})
	keyID := r.keyID("ident")
	pin := "keyward: spki.sha256=" + spkiPin(leaf)

	policyFor := func(id string) []byte {
		b, _ := json.Marshal(map[string]any{
			"version": "1.0",
			"trustPolicies": []map[string]any{{
				"name": "pkcs11-identity", "registryScopes": []string{"local/layout"},
				"signatureVerification": map[string]string{"level": "strict"},
				"trustStores":           []string{"ca:e2e"}, "trustedIdentities": []string{id},
			}},
		})
		return b
	}
	for _, format := range []string{"jws", "cose"} {
		t.Run(format, func(t *testing.T) {
			signArgs, verifyArgs := target{name: "oci-layout"}.artifact(t, repo)
			r.n.MustRun(t, append([]string{"sign", "--plugin", "keyward", "--id", keyID, "--signature-format", format,
				"--plugin-config", "signing_mode=envelope", "--plugin-config", "verification_plugin=true"}, signArgs...)...)
			for _, tc := range []struct {
				id string
				ok bool
			}{
				{pin, true},
				{"keyward: san.uri=" + san, true},
				{"keyward: san.uri=spiffe://acme.example/ns/ci/sa/other", false},
			} {
				r.n.SetTrustPolicy(t, policyFor(tc.id))
				stdout, stderr, err := r.n.Run(t, append([]string{"verify", "-v"}, verifyArgs...)...)
				if ok := err == nil && strings.Contains(stdout, "Successfully verified"); ok != tc.ok {
					t.Errorf("%s: notation verify ok=%v, want %v\n%s%s", tc.id, ok, tc.ok, stdout, stderr)
				}
				if !tc.ok && !strings.Contains(stdout+stderr, `trusted identify verification by plugin "keyward" failed`) {
					t.Errorf("%s: failure is not keyward's:\n%s%s", tc.id, stdout, stderr)
				}
			}
		})
	}

}

func spkiPin(c *testpki.Cert) string {
	sum := sha256.Sum256(c.Cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
