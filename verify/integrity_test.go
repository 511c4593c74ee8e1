package verify_test

import (
	"crypto/x509"
	"fmt"
	"reflect"
	"testing"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

// TestVerifyEnvelopeIsNotationCores checks that keyward's envelope
// verification, which remembers chain validations, reaches the format
// envelope inside notation-core-go's wrapper (else every signature pays
// for a chain validation again) and returns what notation-core-go's
// Envelope.Verify returns: the same content, or an error of the same type
// with the same message.
func TestVerifyEnvelopeIsNotationCores(t *testing.T) {
	f := newFixture(t)
	leaf := f.inter.Leaf(t, "integrity-signer")
	other := f.inter.Leaf(t, "integrity-other")
	rsaLeaf := f.inter.Leaf(t, "integrity-rsa", testpki.WithKeySpec("RSA-2048"))
	type envCase struct {
		name, mediaType string
		env             []byte
	}
	var cases []envCase
	for _, mt := range []string{mtJWS, mtCOSE} {
		valid := f.sign(t, signSpec{mediaType: mt, leaf: leaf})
		cases = append(cases,
			envCase{"valid", mt, valid},
			envCase{"valid-rsa", mt, f.sign(t, signSpec{mediaType: mt, leaf: rsaLeaf})},
			envCase{"signature-flipped", mt, flipSignature(t, mt, valid)},
			envCase{"chain-without-root", mt, replaceChain(t, mt, valid, testpki.Chain(leaf, f.inter))},
			envCase{"chain-wrong-order", mt, replaceChain(t, mt, valid, testpki.Chain(leaf, f.root, f.inter))},
			envCase{"chain-of-another-key", mt, replaceChain(t, mt, valid, f.chain(other))},
			envCase{"chain-leaf-only", mt, replaceChain(t, mt, valid, []*x509.Certificate{leaf.Cert})},
			envCase{"signing-authority", mt, f.sign(t, signSpec{mediaType: mt, leaf: leaf, scheme: signature.SigningSchemeX509SigningAuthority})},
		)
	}
	v := f.keywardVerifier(t)
	for _, c := range cases {
		t.Run(c.mediaType+"/"+c.name, func(t *testing.T) {
			ours, theirs, oursErr, theirsErr, unwrapped := verify.VerifyEnvelope(v, c.mediaType, c.env)
			if !unwrapped {
				t.Fatalf("the %s envelope notation-core-go parsed is not the wrapper keyward unwraps: chain validations are not remembered (a notation-core-go upgrade?)", c.mediaType)
			}
			if fmt.Sprintf("%T %v", oursErr, oursErr) != fmt.Sprintf("%T %v", theirsErr, theirsErr) {
				t.Fatalf("error\nkeyward:            %T %v\nnotation-core-go:   %T %v", oursErr, oursErr, theirsErr, theirsErr)
			}
			if !reflect.DeepEqual(ours, theirs) {
				t.Fatalf("content differs\nkeyward:          %+v\nnotation-core-go: %+v", ours, theirs)
			}
			if c.name == "valid" && oursErr != nil {
				t.Fatalf("a valid envelope failed: %v", oursErr)
			}
		})
	}
	// Five distinct chains are validated: the valid chain (the valid and
	// signing-authority envelopes share it), the RSA chain, and the
	// chains without root, in the wrong order and of the leaf alone. The
	// chain of another key is never validated: its leaf's key does not
	// verify the signature, which is checked first.
	if n := verify.CacheSizes(v)["chains"]; n != 5 {
		t.Errorf("the verifier remembers %d chain validations, want 5 (one per distinct chain)", n)
	}
}
