package verify_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// FuzzVerify evaluates arbitrary bytes as JWS and COSE envelopes under a
// strict statement that trusts the seeds' root. The seeds are valid
// signatures of another artifact, so they get as far as the target artifact
// check; no input may pass (nothing can sign for the fixture's artifact
// without the key) and no input may make a library panic (the evaluator
// reports a panic as an "internal error").
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	day := 24 * time.Hour
	leaf := fx.inter.Leaf(f, "fuzz-leaf")
	expired := fx.inter.Leaf(f, "fuzz-expired-leaf", testpki.WithValidity(fx.now.Add(-10*day), fx.now.Add(-day)))
	other := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("fuzz"), Size: 3}
	specs := []signSpec{
		{leaf: leaf, desc: &other},
		{leaf: leaf, desc: &other, annotations: map[string]string{"a": "b"}, expiry: fx.now.Add(day)},
		{leaf: leaf, desc: &other, scheme: signature.SigningSchemeX509SigningAuthority},
		{leaf: leaf, desc: &other, ext: []signature.Attribute{attr(verify.HeaderVerificationPlugin, pluginName), attr("com.example.x", "y")}},
		{leaf: expired, desc: &other, signingTime: fx.now.Add(-5 * day), tsa: fx.tsa, tsaTime: fx.now.Add(-5 * day)},
	}
	for _, s := range specs {
		for _, cose := range []bool{false, true} {
			if cose {
				s.mediaType = mtCOSE
			} else {
				s.mediaType = mtJWS
			}
			f.Add(fx.sign(f, s), cose)
		}
	}
	f.Add([]byte(`{"payload":"","protected":"","header":{},"signature":""}`), false)
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40}, true)

	v, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(filepath.Join(fx.configDir, "truststore"))})
	if err != nil {
		f.Fatal(err)
	}
	st := fx.keywardStatement(f, policyDocument(variant{level: "strict"}, []string{"ca:main", "tsa:tsa"}, []string{"*"}, "afterCertExpiry"))
	req := verify.Request{Statement: st, Artifact: fx.artifact, Reference: fx.reference(), UserMetadata: map[string]string{"a": "b"}}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, env []byte, cose bool) {
		mt := mtJWS
		if cose {
			mt = mtCOSE
		}
		res := v.Verify(ctx, req, verify.Envelope{MediaType: mt, Bytes: env})
		if res.Passed || res.Err == nil {
			t.Fatalf("arbitrary bytes passed verification: %+v", res)
		}
		for _, c := range res.Checks {
			if strings.HasPrefix(c.Message, "internal error") {
				t.Fatalf("%s: %s\n%s", c.Check, c.Message, c.Detail)
			}
		}
	})
}
