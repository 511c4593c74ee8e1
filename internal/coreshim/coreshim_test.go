package coreshim_test

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"

	"github.com/keyward/keyward/internal/coreshim"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/upstream"
)

// TestPinnedVersion fails when keyward builds with another notation-core-go
// than the one whose signature/internal/base/envelope.go the shim copies:
// re-read that file at the new version, update coreshim.Verify, then
// coreshim.Version.
func TestPinnedVersion(t *testing.T) {
	required, err := upstream.Required(".", coreshim.Module)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{"go.mod requires": required}
	// Test binaries carry no dependency list today; a build that has one
	// must link the same version.
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == coreshim.Module {
				versions["the test binary links"] = d.Version
				if d.Replace != nil {
					versions["the test binary links"] = d.Replace.Path + " " + d.Replace.Version
				}
			}
		}
	}
	for what, v := range versions {
		if v != coreshim.Version {
			t.Errorf("%s %s %s, but internal/coreshim copies %s: re-read notation-core-go %s "+
				"signature/internal/base/envelope.go, bring coreshim.Verify and Unwrap in line, then set coreshim.Version",
				what, coreshim.Module, v, coreshim.Version, v)
		}
	}
}

func signed(t *testing.T, mediaType string, leaf *testpki.Cert, chain []*x509.Certificate) []byte {
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
		"mediaType": "application/vnd.oci.image.manifest.v1+json",
		"digest":    "sha256:" + strings.Repeat("ab", 32),
		"size":      1,
	}})
	b, err := env.Sign(&signature.SignRequest{
		Payload:       signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: payload},
		Signer:        signer,
		SigningTime:   time.Now(),
		Expiry:        time.Now().Add(time.Hour),
		SigningAgent:  "coreshim-test/1.0",
		SigningScheme: signature.SigningSchemeX509,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShape checks that the envelopes notation-core-go parses are the
// wrapper Unwrap opens, and that Verify with ValidateChain returns exactly
// what the wrapper's own Verify returns. The differential comparison over
// tampered envelopes is verify's TestVerifyEnvelopeIsNotationCores.
func TestShape(t *testing.T) {
	root := testpki.Root(t, "coreshim root")
	inter := root.Intermediate(t, "coreshim inter")
	leaf := inter.Leaf(t, "coreshim leaf")
	chain := testpki.Chain(leaf, inter, root)
	for _, mt := range []string{jws.MediaTypeEnvelope, cose.MediaTypeEnvelope} {
		t.Run(mt, func(t *testing.T) {
			env, err := signature.ParseEnvelope(mt, signed(t, mt, leaf, chain))
			if err != nil {
				t.Fatal(err)
			}
			typ := reflect.TypeOf(env)
			if typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			if got := typ.PkgPath() + "." + typ.Name(); got != coreshim.WrapperType {
				t.Fatalf("signature.ParseEnvelope returns a %s, not the %s coreshim copies: re-read notation-core-go", got, coreshim.WrapperType)
			}
			raw := coreshim.Unwrap(env)
			if raw == nil {
				t.Fatalf("Unwrap cannot open the %s wrapper (fields Envelope and Raw): re-read notation-core-go signature/internal/base/envelope.go", coreshim.WrapperType)
			}
			var calls [][]*x509.Certificate
			ours, oursErr := coreshim.Verify(raw, func(c []*x509.Certificate) error {
				calls = append(calls, c)
				return coreshim.ValidateChain(c)
			})
			theirs, theirsErr := env.Verify()
			if oursErr != nil || theirsErr != nil {
				t.Fatalf("a valid envelope fails: coreshim %v, notation-core-go %v", oursErr, theirsErr)
			}
			if !reflect.DeepEqual(ours, theirs) {
				t.Fatalf("content differs\ncoreshim:         %+v\nnotation-core-go: %+v", ours, theirs)
			}
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], chain) {
				t.Errorf("validateChain called %d times, want once with the envelope's chain", len(calls))
			}

			refused := errors.New("chain refused")
			if _, err := coreshim.Verify(raw, func([]*x509.Certificate) error { return refused }); err != refused {
				t.Errorf("Verify returned %v, want validateChain's error as is", err)
			}

			calls = nil
			oursContent, oursErr := coreshim.Content(raw, func(c []*x509.Certificate) error {
				calls = append(calls, c)
				return coreshim.ValidateChain(c)
			})
			theirsContent, theirsErr := env.Content()
			if oursErr != nil || theirsErr != nil {
				t.Fatalf("the content of a valid envelope fails: coreshim %v, notation-core-go %v", oursErr, theirsErr)
			}
			if !reflect.DeepEqual(oursContent, theirsContent) {
				t.Fatalf("Content differs\ncoreshim:         %+v\nnotation-core-go: %+v", oursContent, theirsContent)
			}
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], chain) {
				t.Errorf("Content called validateChain %d times, want once with the envelope's chain", len(calls))
			}
			if _, err := coreshim.Content(raw, func([]*x509.Certificate) error { return refused }); err != refused {
				t.Errorf("Content returned %v, want validateChain's error as is", err)
			}
		})
	}
}

type notWrapper struct{ signature.Envelope }

func TestUnwrapRefusesOtherEnvelopes(t *testing.T) {
	for name, env := range map[string]signature.Envelope{
		"nil":                  nil,
		"another type":         &notWrapper{},
		"another type's value": notWrapper{},
	} {
		if coreshim.Unwrap(env) != nil {
			t.Errorf("Unwrap(%s) is not nil", name)
		}
	}
}

func TestValidateChain(t *testing.T) {
	root := testpki.Root(t, "coreshim chain root")
	inter := root.Intermediate(t, "coreshim chain inter")
	leaf := inter.Leaf(t, "coreshim chain leaf")
	if err := coreshim.ValidateChain(testpki.Chain(leaf, inter, root)); err != nil {
		t.Fatalf("a valid chain: %v", err)
	}
	err := coreshim.ValidateChain(testpki.Chain(leaf, root, inter))
	var ise *signature.InvalidSignatureError
	if !errors.As(err, &ise) || !strings.HasPrefix(ise.Msg, "certificate-chain is invalid, ") {
		t.Fatalf("a chain out of order: %v, want notation-core-go's InvalidSignatureError", err)
	}
}
