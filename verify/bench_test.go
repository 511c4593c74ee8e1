package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/notaryproject/notation-go"
	nverifier "github.com/notaryproject/notation-go/verifier"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

// runSize is the number of artifacts of a benchmarked run, each with its
// own signature by the same signer.
const runSize = 32

// BenchmarkVerify verifies signatures with keyward and with notation-go
// v1.3.2 side by side (make bench reports the ratios):
//
//   - one: a single signature, with a new keyward Verifier (nothing cached);
//   - run: runSize different signatures by one signer, as keyward verify
//     meets them in one run (one Verifier) and notation-go in one process;
//   - again: the same signature verified again by a warm Verifier.
//
// The "ocsp" signer's leaf names an OCSP responder: notation-go asks it for
// every signature, keyward once per chain and run.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	ocsp := testpki.StartOCSP(b, f.inter)
	leaves := map[string]*testpki.Cert{
		"plain": f.inter.Leaf(b, "bench-leaf"),
		"ocsp":  f.inter.Leaf(b, "bench-ocsp-leaf", testpki.WithOCSP(ocsp.URL())),
	}
	doc := policyDocument(variant{level: "strict"}, []string{"ca:main"}, []string{"*"}, "")
	ctx := context.Background()
	req := verify.Request{Statement: f.keywardStatement(b, doc), Artifact: f.artifact, Reference: f.reference()}
	nopts := notation.VerifierVerifyOptions{ArtifactReference: f.reference(), SignatureMediaType: mtJWS}
	newNotation := func(b *testing.B) notation.Verifier {
		nv, err := nverifier.NewWithOptions(loadNotationPolicy(b, doc), f.notationStores(), f.notationPlugins(), nverifier.VerifierOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return nv
	}
	for _, name := range []string{"plain", "ocsp"} {
		var envs []verify.Envelope
		for i := 0; i < runSize; i++ {
			envs = append(envs, verify.Envelope{MediaType: mtJWS, Bytes: f.sign(b, signSpec{leaf: leaves[name], signingTime: f.now.Add(-time.Duration(i) * time.Second)})})
		}
		b.Run(name+"/one/keyward", func(b *testing.B) {
			for b.Loop() {
				if res := f.keywardVerifier(b).Verify(ctx, req, envs[0]); !res.Passed {
					b.Fatal(res.Err)
				}
			}
		})
		b.Run(name+"/one/notation-go", func(b *testing.B) {
			nv := newNotation(b)
			for b.Loop() {
				if _, err := nv.Verify(ctx, f.artifact, envs[0].Bytes, nopts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/run/keyward", func(b *testing.B) {
			for b.Loop() {
				v := f.keywardVerifier(b)
				for _, env := range envs {
					if res := v.Verify(ctx, req, env); !res.Passed {
						b.Fatal(res.Err)
					}
				}
			}
		})
		b.Run(name+"/run/notation-go", func(b *testing.B) {
			nv := newNotation(b)
			for b.Loop() {
				for _, env := range envs {
					if _, err := nv.Verify(ctx, f.artifact, env.Bytes, nopts); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(name+"/again/keyward", func(b *testing.B) {
			v := f.keywardVerifier(b)
			for b.Loop() {
				if res := v.Verify(ctx, req, envs[0]); !res.Passed {
					b.Fatal(res.Err)
				}
			}
		})
	}
}
