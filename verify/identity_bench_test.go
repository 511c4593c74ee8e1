package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

// identityRun is the number of artifacts of the identity benchmark, as in
// issue 11's goal (200 artifacts).
const identityRun = 200

// BenchmarkIdentities verifies identityRun signatures by one signer in one
// run (one Verifier), judged three ways (make bench reports the ratios):
//
//   - x509.subject: signatures that name no plugin, notation's own
//     x509.subject identity;
//   - keyward-x509.subject: signatures that name keyward, the same
//     x509.subject identity judged by keyward's in-process plugin;
//   - keyward: the same signatures, keyward: identities (an exact URI SAN,
//     an anchored pattern, a Fulcio field, the issuer) judged by the matcher.
//
// The leaf names an OCSP responder, so revocation is part of each run.
func BenchmarkIdentities(b *testing.B) {
	f := newFixture(b)
	ocsp := testpki.StartOCSP(b, f.inter)
	const workflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	leaf := f.inter.Leaf(b, "bench identity leaf", testpki.WithOCSP(ocsp.URL()), testpki.WithSAN(testpki.SANURI, workflow),
		testpki.WithFulcio(8, "https://token.actions.githubusercontent.com"), testpki.WithFulcio(20, "push"))
	subject := "x509.subject: C=US, ST=WA, O=keyward-test, CN=bench identity leaf"
	keywardIDs := []string{
		"keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri=https://github.com/acme/app/.github/workflows/other.yml@refs/heads/main",
		`keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri~https://github\.com/acme/app/\.github/workflows/release\.yml@refs/(heads/main|tags/v[0-9.]+) fulcio.build-trigger=push`,
	}
	sign := func(ext []signature.Attribute) []verify.Envelope {
		envs := make([]verify.Envelope, identityRun)
		for i := range envs {
			envs[i] = verify.Envelope{MediaType: mtJWS, Bytes: f.sign(b, signSpec{leaf: leaf, ext: ext, signingTime: f.now.Add(-time.Duration(i) * time.Second)})}
		}
		return envs
	}
	native := sign(nil)
	named := sign([]signature.Attribute{attr(verify.HeaderVerificationPlugin, "keyward")})
	ctx := context.Background()
	for _, c := range []struct {
		name string
		envs []verify.Envelope
		ids  []string
	}{
		{"x509.subject", native, []string{subject}},
		{"keyward-x509.subject", named, []string{subject}},
		{"keyward", named, keywardIDs},
	} {
		req := verify.Request{Statement: f.keywardStatement(b, policyDocument(variant{level: "strict"}, []string{"ca:main"}, c.ids, "")),
			Artifact: f.artifact, Reference: f.reference()}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				v := f.keywardVerifier(b)
				for _, env := range c.envs {
					if res := v.Verify(ctx, req, env); !res.Passed {
						b.Fatal(res.Err)
					}
				}
			}
		})
	}
}
