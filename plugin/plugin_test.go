package plugin_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose"
	_ "github.com/notaryproject/notation-core-go/signature/jws"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/keys"
	"github.com/keyward/keyward/keys/filekey"
	"github.com/keyward/keyward/plugin"
)

var specs = []string{"RSA-2048", "RSA-3072", "RSA-4096", "EC-256", "EC-384", "EC-521"}

// fixture is a file key with its chain, as a user configures one.
type fixture struct {
	spec  string
	key   crypto.Signer
	keyID string
	chain string
}

func newFixture(t testing.TB, spec string) *fixture {
	t.Helper()
	dir := t.TempDir()
	root := testpki.Root(t, "plugin root")
	inter := root.Intermediate(t, "plugin intermediate")
	key := testpki.Key(t, spec, "plugin")
	leaf := inter.Leaf(t, "plugin leaf "+spec, testpki.WithKey(key))
	return &fixture{
		spec:  spec,
		key:   key,
		keyID: "file:" + testpki.WriteFile(t, dir, "key.pem", testpki.KeyPEM(t, key), 0o600),
		chain: testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, inter.Cert, root.Cert), 0o644),
	}
}

func newPlugin() *plugin.Plugin {
	return plugin.New(keys.NewOpener(filekey.Backend{Getenv: func(string) string { return "" }}))
}

func run(t testing.TB, command string, request any) ([]byte, *plugin.Error) {
	t.Helper()
	var in string
	switch r := request.(type) {
	case string:
		in = r
	default:
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		in = string(b)
	}
	resp, perr := newPlugin().Run(context.Background(), command, strings.NewReader(in))
	if (resp == nil) == (perr == nil) {
		t.Fatalf("Run(%s) returned response %q and error %v: want exactly one", command, resp, perr)
	}
	return resp, perr
}

func mustRun(t testing.TB, command string, request any, out any) {
	t.Helper()
	resp, perr := run(t, command, request)
	if perr != nil {
		t.Fatalf("Run(%s) = %v", command, perr)
	}
	if err := json.Unmarshal(resp, out); err != nil {
		t.Fatalf("response %q: %v", resp, err)
	}
}

func wantError(t *testing.T, perr *plugin.Error, code plugin.ErrorCode, parts ...string) {
	t.Helper()
	if perr == nil {
		t.Fatalf("no error, want %s", code)
	}
	if perr.Code != code {
		t.Errorf("errorCode = %s, want %s (%s)", perr.Code, code, perr.Message)
	}
	for _, p := range parts {
		if !strings.Contains(perr.Message, p) {
			t.Errorf("errorMessage %q\nwant it to contain %q", perr.Message, p)
		}
	}
}

// TestBadInput is the matrix of malformed requests: every command answers
// VALIDATION_ERROR and no response.
func TestBadInput(t *testing.T) {
	inputs := map[string]string{
		"empty":         "",
		"newline":       "\n",
		"invalid JSON":  "invalidjson",
		"not ASCII":     "🍺 ¢ §",
		"not UTF-8":     "{\"keyId\":\"\xff\xfe\"}",
		"array":         "[]",
		"null":          "null",
		"string":        `"x"`,
		"truncated":     `{"contractVersion":"1.0"`,
		"trailing data": `{"contractVersion":"1.0"} {}`,
		"oversized":     `{"contractVersion":"1.0","payload":"` + strings.Repeat("A", plugin.MaxRequestSize) + `"}`,
		"wrong type":    `{"contractVersion":1.0,"keyId":"k"}`,
		"bad base64":    `{"contractVersion":"1.0","keyId":"k","keySpec":"EC-256","hashAlgorithm":"SHA-256","payload":"!!!"}`,
	}
	for _, cmd := range plugin.Commands {
		for name, in := range inputs {
			t.Run(cmd+"/"+name, func(t *testing.T) {
				if cmd == "get-plugin-metadata" && (name == "wrong type" || name == "bad base64") {
					t.Skip("get-plugin-metadata reads only pluginConfig; these fields are unknown to it and ignored")
				}
				_, perr := run(t, cmd, in)
				wantError(t, perr, plugin.CodeValidation)
			})
		}
	}
	t.Run("messages", func(t *testing.T) {
		_, perr := run(t, "describe-key", "")
		wantError(t, perr, plugin.CodeValidation, "Input is not a valid JSON", "empty")
		_, perr = run(t, "describe-key", `{"contractVersion":1}`)
		wantError(t, perr, plugin.CodeValidation, "field contractVersion must be a JSON string")
		_, perr = run(t, "describe-key", "\xff")
		wantError(t, perr, plugin.CodeValidation, "not UTF-8")
		_, perr = run(t, "describe-key", `{"contractVersion":"1.0","payload":"`+strings.Repeat("A", plugin.MaxRequestSize)+`"}`)
		wantError(t, perr, plugin.CodeValidation, "larger than 8388608 bytes")
	})
}

func TestUnknownCommand(t *testing.T) {
	_, perr := run(t, "sign-everything", "{}")
	wantError(t, perr, plugin.CodeValidation, `unknown command "sign-everything"`, "get-plugin-metadata")
}

// TestRequiredFields removes each required field of each command in turn.
func TestRequiredFields(t *testing.T) {
	f := newFixture(t, "EC-256")
	full := map[string]map[string]any{
		"describe-key": {"contractVersion": "1.0", "keyId": f.keyID, "pluginConfig": map[string]string{"cert_chain": f.chain}},
		"generate-signature": {"contractVersion": "1.0", "keyId": f.keyID, "keySpec": "EC-256", "hashAlgorithm": "SHA-256",
			"payload": base64.StdEncoding.EncodeToString([]byte("x")), "pluginConfig": map[string]string{"cert_chain": f.chain}},
		"generate-envelope": {"contractVersion": "1.0", "keyId": f.keyID, "payloadType": plugin.PayloadType,
			"signatureEnvelopeType": "application/jose+json", "payload": base64.StdEncoding.EncodeToString(targetPayload),
			"pluginConfig": map[string]string{"cert_chain": f.chain}},
	}
	for cmd, req := range full {
		if _, perr := run(t, cmd, req); perr != nil {
			t.Fatalf("%s with every field: %v", cmd, perr)
		}
		for field := range req {
			if field == "pluginConfig" {
				continue
			}
			t.Run(cmd+"/without "+field, func(t *testing.T) {
				r := map[string]any{}
				for k, v := range req {
					if k != field {
						r[k] = v
					}
				}
				_, perr := run(t, cmd, r)
				wantError(t, perr, plugin.CodeValidation, field, "cannot be empty")
			})
		}
	}
}

func TestContractVersion(t *testing.T) {
	for _, cmd := range []string{"describe-key", "generate-signature", "generate-envelope", "verify-signature"} {
		t.Run(cmd, func(t *testing.T) {
			_, perr := run(t, cmd, `{"contractVersion":"2.0","keyId":"k"}`)
			wantError(t, perr, plugin.CodeUnsupportedContractVersion, `"2.0" is not a supported notary plugin contract version`, `"1.0"`)
		})
	}
}

var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func TestMetadata(t *testing.T) {
	type meta struct {
		Name, Description, Version, URL string
		SupportedContractVersions       []string
		Capabilities                    []string
	}
	for _, tc := range []struct {
		name, request, capability string
	}{
		{"empty request", `{}`, "SIGNATURE_GENERATOR.RAW"},
		{"raw", `{"pluginConfig":{"signing_mode":"raw"}}`, "SIGNATURE_GENERATOR.RAW"},
		{"envelope", `{"pluginConfig":{"signing_mode":"envelope","cert_chain":"/x"}}`, "SIGNATURE_GENERATOR.ENVELOPE"},
		{"signing authority", `{"pluginConfig":{"signing_mode":"envelope","signing_scheme":"notary.x509.signingAuthority"}}`, "SIGNATURE_GENERATOR.ENVELOPE"},
		{"unknown fields", `{"pluginConfig":{},"future":{"a":1}}`, "SIGNATURE_GENERATOR.RAW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m meta
			mustRun(t, "get-plugin-metadata", tc.request, &m)
			if m.Name != "keyward" || m.Description == "" || m.URL == "" {
				t.Errorf("metadata = %+v", m)
			}
			// notation-go checks the version against the semver.org grammar.
			if !semver.MatchString(m.Version) {
				t.Errorf("version %q is not plain SemVer", m.Version)
			}
			if len(m.SupportedContractVersions) != 1 || m.SupportedContractVersions[0] != "1.0" {
				t.Errorf("supportedContractVersions = %v", m.SupportedContractVersions)
			}
			// The signing capability first and alone of its kind: notation
			// signs with RAW whenever it is declared. The verifier
			// capabilities serve signatures that name keyward.
			want := []string{tc.capability, "SIGNATURE_VERIFIER.TRUSTED_IDENTITY", "SIGNATURE_VERIFIER.REVOCATION_CHECK"}
			if strings.Join(m.Capabilities, ",") != strings.Join(want, ",") {
				t.Errorf("capabilities = %v, want %v", m.Capabilities, want)
			}
		})
	}
	for _, tc := range []struct{ name, config, want string }{
		{"bad mode", `{"signing_mode":"envlope"}`, `signing_mode="envlope" is not supported`},
		{"bad scheme", `{"signing_mode":"envelope","signing_scheme":"x509"}`, `signing_scheme="x509" is not supported`},
		{"authority in raw mode", `{"signing_scheme":"notary.x509.signingAuthority"}`, "needs signing_mode=envelope"},
		{"timestamp in raw mode", `{"timestamp_url":"http://tsa.example","timestamp_root_cert":"/r.pem"}`, "in raw mode notation timestamps the signature"},
		{"timestamp without root", `{"signing_mode":"envelope","timestamp_url":"http://tsa.example"}`, "timestamp_url and timestamp_root_cert go together"},
		{"root without timestamp", `{"signing_mode":"envelope","timestamp_root_cert":"/r.pem"}`, "timestamp_url and timestamp_root_cert go together"},
		{"timestamp with signing authority", `{"signing_mode":"envelope","signing_scheme":"notary.x509.signingAuthority","timestamp_url":"http://tsa.example","timestamp_root_cert":"/r.pem"}`,
			"timestamps are defined only for the notary.x509 signing scheme"},
		{"timestamp URL without host", `{"signing_mode":"envelope","timestamp_url":"https://","timestamp_root_cert":"/r.pem"}`, "is not an http or https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, perr := run(t, "get-plugin-metadata", `{"pluginConfig":`+tc.config+`}`)
			wantError(t, perr, plugin.CodeValidation, tc.want)
		})
	}
}

func TestDescribeKey(t *testing.T) {
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			f := newFixture(t, spec)
			var resp struct{ KeyID, KeySpec string }
			mustRun(t, "describe-key", map[string]any{
				"contractVersion": "1.0", "keyId": f.keyID,
				"pluginConfig":    map[string]string{"cert_chain": f.chain, "signing_mode": "raw"},
				"someFutureField": true,
			}, &resp)
			if resp.KeyID != f.keyID || resp.KeySpec != spec {
				t.Errorf("describe-key = %+v, want keyId %s keySpec %s", resp, f.keyID, spec)
			}
		})
	}
	t.Run("missing key", func(t *testing.T) {
		_, perr := run(t, "describe-key", `{"contractVersion":"1.0","keyId":"file:/nonexistent/key.pem","pluginConfig":{"cert_chain":"/nonexistent/c.pem"}}`)
		wantError(t, perr, plugin.CodeValidation, "/nonexistent/key.pem", "does not exist")
	})
	t.Run("chain of another key", func(t *testing.T) {
		// describe-key reads only the leaf certificate (the private key and
		// the full chain check are generate-signature's), so the mismatch
		// is refused when notation asks for the signature, before signing.
		f, other := newFixture(t, "EC-256"), newFixture(t, "EC-384")
		cfg := map[string]string{"cert_chain": other.chain}
		var resp struct{ KeySpec string }
		mustRun(t, "describe-key", map[string]any{"contractVersion": "1.0", "keyId": f.keyID, "pluginConfig": cfg}, &resp)
		if resp.KeySpec != "EC-384" {
			t.Errorf("describe-key = %s, want the leaf's EC-384", resp.KeySpec)
		}
		_, perr := run(t, "generate-signature", map[string]any{"contractVersion": "1.0", "keyId": f.keyID,
			"keySpec": "EC-384", "hashAlgorithm": "SHA-384", "payload": []byte("x"), "pluginConfig": cfg})
		wantError(t, perr, plugin.CodeValidation, other.chain, "certifies another key")
	})
	t.Run("key file readable by others", func(t *testing.T) {
		f := newFixture(t, "EC-256")
		path := strings.TrimPrefix(f.keyID, "file:")
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, perr := run(t, "describe-key", map[string]any{"contractVersion": "1.0", "keyId": f.keyID,
			"pluginConfig": map[string]string{"cert_chain": f.chain}})
		wantError(t, perr, plugin.CodeValidation, "chmod 600")
	})
}

// verifySignature checks a raw signature over payload as notation's
// envelope libraries do: ECDSA r||s, RSASSA-PSS with salt = hash length.
func verifySignature(t *testing.T, pub crypto.PublicKey, spec string, payload, sig []byte) {
	t.Helper()
	s, err := keys.SpecByName(spec)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Hash.New()
	h.Write(payload)
	digest := h.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPSS(k, s.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			t.Fatalf("PSS verification: %v", err)
		}
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			t.Fatalf("ECDSA signature has %d bytes, want r||s of %d", len(sig), 2*n)
		}
		if !ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
			t.Fatal("ECDSA verification failed")
		}
	}
}

func TestGenerateSignature(t *testing.T) {
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			f := newFixture(t, spec)
			s, _ := keys.SpecByName(spec)
			payload := []byte("eyJhbGciOiJQUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319")
			var resp struct {
				KeyID            string
				Signature        []byte
				SigningAlgorithm string
				CertificateChain [][]byte
			}
			mustRun(t, "generate-signature", map[string]any{
				"contractVersion": "1.0", "keyId": f.keyID, "keySpec": spec, "hashAlgorithm": s.HashName,
				"payload": payload, "pluginConfig": map[string]string{"cert_chain": f.chain},
			}, &resp)
			if resp.KeyID != f.keyID {
				t.Errorf("keyId = %q, want the request's %q", resp.KeyID, f.keyID)
			}
			if resp.SigningAlgorithm != s.Algorithm {
				t.Errorf("signingAlgorithm = %q, want %q", resp.SigningAlgorithm, s.Algorithm)
			}
			if len(resp.CertificateChain) != 3 {
				t.Fatalf("certificateChain has %d certificates, want leaf, intermediate, root", len(resp.CertificateChain))
			}
			verifySignature(t, f.key.Public(), spec, payload, resp.Signature)
		})
	}
	f := newFixture(t, "EC-256")
	for _, tc := range []struct{ name, keySpec, hash, want string }{
		{"key spec of another key", "EC-384", "SHA-384", `keySpec "EC-384" does not match key`},
		{"hash of another spec", "EC-256", "SHA-512", `hashAlgorithm "SHA-512" is not the hash of key spec EC-256`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, perr := run(t, "generate-signature", map[string]any{
				"contractVersion": "1.0", "keyId": f.keyID, "keySpec": tc.keySpec, "hashAlgorithm": tc.hash,
				"payload": []byte("x"), "pluginConfig": map[string]string{"cert_chain": f.chain},
			})
			wantError(t, perr, plugin.CodeValidation, tc.want)
		})
	}
}

var targetPayload = []byte(`{"targetArtifact":{"annotations":{"team":"x"},"digest":"sha256:73c803930ea3ba1e54bc25c2bdc53edd0284c62ed651fe7b00369da519a3c333","mediaType":"application/vnd.oci.image.manifest.v1+json","size":16724}}`)

func TestGenerateEnvelope(t *testing.T) {
	now := time.Now()
	for _, spec := range specs {
		for _, mediaType := range []string{"application/jose+json", "application/cose"} {
			for _, scheme := range []signature.SigningScheme{signature.SigningSchemeX509, signature.SigningSchemeX509SigningAuthority} {
				t.Run(fmt.Sprintf("%s/%s/%s", spec, mediaType, scheme), func(t *testing.T) {
					f := newFixture(t, spec)
					var resp struct {
						SignatureEnvelope     []byte
						SignatureEnvelopeType string
					}
					mustRun(t, "generate-envelope", map[string]any{
						"contractVersion": "1.0", "keyId": f.keyID, "payloadType": plugin.PayloadType,
						"signatureEnvelopeType": mediaType, "payload": targetPayload, "expiryDurationInSeconds": 3600,
						"pluginConfig": map[string]string{"cert_chain": f.chain, "signing_mode": "envelope", "signing_scheme": string(scheme)},
					}, &resp)
					if resp.SignatureEnvelopeType != mediaType {
						t.Errorf("signatureEnvelopeType = %q, want %q", resp.SignatureEnvelopeType, mediaType)
					}
					env, err := signature.ParseEnvelope(mediaType, resp.SignatureEnvelope)
					if err != nil {
						t.Fatal(err)
					}
					content, err := env.Verify()
					if err != nil {
						t.Fatalf("envelope does not verify: %v", err)
					}
					sa := content.SignerInfo.SignedAttributes
					if sa.SigningScheme != scheme {
						t.Errorf("signing scheme = %s, want %s", sa.SigningScheme, scheme)
					}
					if d := sa.Expiry.Sub(sa.SigningTime); d != time.Hour {
						t.Errorf("expiry - signing time = %v, want 1h", d)
					}
					if sa.SigningTime.Before(now.Add(-time.Minute)) || sa.SigningTime.After(time.Now().Add(time.Minute)) {
						t.Errorf("signing time %v is not now", sa.SigningTime)
					}
					if content.SignerInfo.UnsignedAttributes.SigningAgent != plugin.SigningAgent() {
						t.Errorf("signing agent = %q", content.SignerInfo.UnsignedAttributes.SigningAgent)
					}
					if !f.key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(content.SignerInfo.CertificateChain[0].PublicKey) {
						t.Error("leaf of the envelope is not the key's certificate")
					}
					var got, want any
					_ = json.Unmarshal(content.Payload.Content, &got)
					_ = json.Unmarshal(targetPayload, &want)
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("payload = %s, want %s", content.Payload.Content, targetPayload)
					}
				})
			}
		}
	}
}

func TestGenerateEnvelopeErrors(t *testing.T) {
	f := newFixture(t, "EC-256")
	base := func() map[string]any {
		return map[string]any{
			"contractVersion": "1.0", "keyId": f.keyID, "payloadType": plugin.PayloadType,
			"signatureEnvelopeType": "application/jose+json", "payload": targetPayload,
			"pluginConfig": map[string]string{"cert_chain": f.chain},
		}
	}
	for _, tc := range []struct {
		name  string
		field string
		value any
		want  string
	}{
		{"payload type", "payloadType", "application/json", `payloadType "application/json" is not supported`},
		{"envelope type", "signatureEnvelopeType", "application/pgp", `signatureEnvelopeType "application/pgp" is not supported`},
		{"payload not JSON", "payload", []byte("hello"), "payload is not a JSON"},
		{"payload without target", "payload", []byte(`{"subject":{}}`), "no targetArtifact"},
		{"payload without digest", "payload", []byte(`{"targetArtifact":{"mediaType":"a","size":1}}`), "digest"},
		{"payload without size", "payload", []byte(`{"targetArtifact":{"mediaType":"a","digest":"sha256:00"}}`), "no size"},
		{"expiry too far", "expiryDurationInSeconds", uint64(1) << 62, "more than 100 years"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			r[tc.field] = tc.value
			_, perr := run(t, "generate-envelope", r)
			wantError(t, perr, plugin.CodeValidation, tc.want)
		})
	}
}

// FuzzRun feeds arbitrary requests to every command: the plugin must never
// panic, must answer either a JSON response or an error with a protocol
// code, and must never answer both.
func FuzzRun(f *testing.F) {
	fx := newFixture(f, "EC-256")
	seeds := []string{
		"", "{}", "null", "[]", `{"contractVersion":"1.0"}`,
		`{"contractVersion":"1.0","keyId":"` + fx.keyID + `","pluginConfig":{"cert_chain":"` + fx.chain + `"}}`,
		`{"contractVersion":"1.0","keyId":"` + fx.keyID + `","keySpec":"EC-256","hashAlgorithm":"SHA-256","payload":"eA==","pluginConfig":{"cert_chain":"` + fx.chain + `"}}`,
		`{"contractVersion":"1.0","keyId":"` + fx.keyID + `","payloadType":"` + plugin.PayloadType + `","signatureEnvelopeType":"application/cose","payload":"` + base64.StdEncoding.EncodeToString(targetPayload) + `","pluginConfig":{"cert_chain":"` + fx.chain + `","signing_mode":"envelope"}}`,
		`{"pluginConfig":{"signing_mode":"envelope"}}`,
	}
	for i := range plugin.Commands {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	codes := map[plugin.ErrorCode]bool{plugin.CodeValidation: true, plugin.CodeUnsupportedContractVersion: true,
		plugin.CodeAccessDenied: true, plugin.CodeTimeout: true, plugin.CodeThrottled: true, plugin.CodeGeneric: true}
	p := newPlugin()
	f.Fuzz(func(t *testing.T, cmd uint8, in []byte) {
		command := plugin.Commands[int(cmd)%len(plugin.Commands)]
		resp, perr := p.Run(context.Background(), command, strings.NewReader(string(in)))
		switch {
		case resp != nil && perr != nil, resp == nil && perr == nil:
			t.Fatalf("response %q with error %v", resp, perr)
		case perr != nil:
			if !codes[perr.Code] || perr.Message == "" {
				t.Fatalf("error %+v is not a protocol error", perr)
			}
		case !json.Valid(resp):
			t.Fatalf("response %q is not JSON", resp)
		}
	})
}
