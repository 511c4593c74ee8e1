package scan

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"

	"github.com/keyward/keyward/internal/testpki"
)

// notationEnvelope signs a Notary Project payload with leaf, listing chain.
func notationEnvelope(t *testing.T, mediaType string, leaf *testpki.Cert, chain []*x509.Certificate) []byte {
	t.Helper()
	signer, err := signature.NewLocalSigner(chain, leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signature.NewEnvelope(mediaType)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"targetArtifact": map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + strings.Repeat("ab", 32), "size": 1}})
	b, err := env.Sign(&signature.SignRequest{
		Payload:       signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: payload},
		Signer:        signer,
		SigningTime:   time.Now(),
		SigningScheme: signature.SigningSchemeX509,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNotationIdentityChainOnce: envelopes of one signer cost one chain
// validation a scan (the envelopes are distinct, both formats), and a
// chain that does not validate is refused every time with the error
// notation-core-go's Envelope.Content gives.
func TestNotationIdentityChainOnce(t *testing.T) {
	root := testpki.Root(t, "scan chains root")
	leaf := root.Leaf(t, "scan chains signer")
	var c chains
	for i, mt := range []string{jws.MediaTypeEnvelope, cose.MediaTypeEnvelope, jws.MediaTypeEnvelope} {
		id, err := notationIdentity(mt, notationEnvelope(t, mt, leaf, testpki.Chain(leaf, root)), &c)
		if err != nil {
			t.Fatalf("envelope %d (%s): %v", i, mt, err)
		}
		if id.X509Subject == "" || !strings.Contains(id.Subject, "scan chains signer") {
			t.Errorf("envelope %d: identity %+v, want the leaf's subject", i, id)
		}
	}
	if len(c.m) != 1 {
		t.Errorf("%d chains remembered after three envelopes by one chain, want 1", len(c.m))
	}

	other := testpki.Root(t, "scan chains other root")
	// A JWS envelope lists its chain in the unprotected header: put
	// another root in it, which did not issue the leaf.
	var doc map[string]any
	if err := json.Unmarshal(notationEnvelope(t, jws.MediaTypeEnvelope, leaf, testpki.Chain(leaf, root)), &doc); err != nil {
		t.Fatal(err)
	}
	doc["header"].(map[string]any)["x5c"].([]any)[1] = base64.StdEncoding.EncodeToString(other.Cert.Raw)
	broken, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signature.ParseEnvelope(jws.MediaTypeEnvelope, broken)
	if err != nil {
		t.Fatal(err)
	}
	_, theirs := env.Content()
	if theirs == nil {
		t.Fatal("notation-core-go accepts a chain whose leaf the next certificate did not issue")
	}
	for i := range 2 {
		_, err := notationIdentity(jws.MediaTypeEnvelope, broken, &c)
		if err == nil || !strings.Contains(err.Error(), theirs.Error()) {
			t.Errorf("broken chain, time %d: %v, want an error with %q", i+1, err, theirs)
		}
	}
	if len(c.m) != 2 {
		t.Errorf("%d chains remembered, want 2 (the refusal too)", len(c.m))
	}
}
