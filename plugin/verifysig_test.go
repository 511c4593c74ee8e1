package plugin_test

import (
	"crypto/x509"

	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/plugin"
)

const (
	capIdentity   = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY"
	capRevocation = "SIGNATURE_VERIFIER.REVOCATION_CHECK"
	ghIssuer      = "https://token.actions.githubusercontent.com"
	ghWorkflow    = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

type verifyResponse struct {
	VerificationResults map[string]struct {
		Success bool
		Reason  string
	}
	ProcessedAttributes []any
}

func verifyRequest(chain []*x509.Certificate, ids []string, caps ...string) map[string]any {
	ders := make([][]byte, len(chain))
	for i, c := range chain {
		ders[i] = c.Raw
	}
	return map[string]any{
		"contractVersion": "1.0",
		"signature": map[string]any{
			"criticalAttributes": map[string]any{
				"contentType": plugin.PayloadType, "signingScheme": "notary.x509", "expiry": "0001-01-01T00:00:00Z",
			},
			"unprocessedAttributes": nil,
			"certificateChain":      ders,
		},
		"trustPolicy": map[string]any{"trustedIdentities": ids, "signatureVerification": caps},
	}
}

func verify(t *testing.T, req map[string]any) verifyResponse {
	t.Helper()
	var resp verifyResponse
	mustRun(t, "verify-signature", req, &resp)
	return resp
}

// TestVerifySignatureIdentities judges trustedIdentities lists on the leaf:
// keyward: identities with the matcher, x509.subject with notation's DN
// subset rule, "*" as notation does, other plugins' identities ignored,
// and no applicable identity a failure.
func TestVerifySignatureIdentities(t *testing.T) {
	root := testpki.Root(t, "verify root")
	inter := root.Intermediate(t, "verify intermediate")
	leaf := inter.Leaf(t, "verify leaf", testpki.WithSAN(testpki.SANURI, ghWorkflow),
		testpki.WithFulcio(8, ghIssuer), testpki.WithFulcio(20, "push"))
	chain := testpki.Chain(leaf, inter, root)
	kw := "keyward: oidc.issuer=" + ghIssuer + " san.uri=" + ghWorkflow
	for _, tc := range []struct {
		name string
		ids  []string
		ok   bool
		why  string
	}{
		{"keyward matches", []string{kw}, true, "matches"},
		{"keyward pattern matches", []string{`keyward: oidc.issuer=` + ghIssuer + ` san.uri~https://github\.com/acme/app/\.github/workflows/release\.yml@refs/heads/main fulcio.build-trigger=push`}, true, "matches"},
		{"keyward suffix attack", []string{`keyward: oidc.issuer=` + ghIssuer + ` san.uri~https://github\.com/acme/app/\.github/workflows/release\.yml`}, false, "does not match"},
		{"keyward other issuer", []string{"keyward: oidc.issuer=https://accounts.google.com san.uri=" + ghWorkflow}, false, "issued for"},
		{"x509.subject matches", []string{"x509.subject: C=US, ST=WA, O=keyward-test, CN=verify leaf"}, true, "matches"},
		{"x509.subject other CN", []string{"x509.subject: C=US, ST=WA, O=keyward-test, CN=other"}, false, "does not match"},
		{"wildcard", []string{"*"}, true, "any signer"},
		{"only other plugins' identities", []string{"arn:aws:signer:us-east-1:1:/signing-profiles/x"}, false, "no trusted identity applies"},
		{"no identities", []string{}, false, "no trusted identity applies"},
		{"ORed with a bad keyward identity", []string{"keyward: bogus=1", kw}, true, "matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := verify(t, verifyRequest(chain, tc.ids, capIdentity))
			r, ok := resp.VerificationResults[capIdentity]
			if !ok || len(resp.VerificationResults) != 1 {
				t.Fatalf("results %+v", resp.VerificationResults)
			}
			if r.Success != tc.ok || !strings.Contains(r.Reason, tc.why) {
				t.Errorf("result %+v, want success %v and reason with %q", r, tc.ok, tc.why)
			}
			if resp.ProcessedAttributes == nil {
				t.Error("processedAttributes is null")
			}
		})
	}
}

// TestVerifySignatureAttributes: the verification plugin pair is
// processed; anything else is refused.
func TestVerifySignatureAttributes(t *testing.T) {
	root := testpki.Root(t, "attr root")
	chain := testpki.Chain(root.Leaf(t, "attr leaf"), root)
	req := verifyRequest(chain, []string{"*"}, capIdentity)
	sig := req["signature"].(map[string]any)
	sig["criticalAttributes"].(map[string]any)["extendedAttributes"] = map[string]any{plugin.AttrVerificationPlugin: "keyward"}
	sig["unprocessedAttributes"] = []string{plugin.AttrVerificationPlugin}
	resp := verify(t, req)
	if len(resp.ProcessedAttributes) != 1 || resp.ProcessedAttributes[0] != plugin.AttrVerificationPlugin {
		t.Errorf("processedAttributes = %v", resp.ProcessedAttributes)
	}

	sig["criticalAttributes"].(map[string]any)["extendedAttributes"] = map[string]any{"com.example.unknown": "x"}
	sig["unprocessedAttributes"] = []string{"com.example.unknown"}
	_, perr := run(t, "verify-signature", req)
	wantError(t, perr, plugin.CodeValidation, `critical attributes keyward`, `"com.example.unknown"`)

	sig["criticalAttributes"].(map[string]any)["extendedAttributes"] = map[string]any{plugin.AttrVerificationPlugin: "other"}
	sig["unprocessedAttributes"] = nil
	_, perr = run(t, "verify-signature", req)
	wantError(t, perr, plugin.CodeValidation, "names verification plugin other")
}

// TestVerifySignatureHostile: requests keyward must refuse, with the code.
func TestVerifySignatureHostile(t *testing.T) {
	root := testpki.Root(t, "hostile root")
	chain := testpki.Chain(root.Leaf(t, "hostile leaf"), root)
	mutate := func(f func(r map[string]any)) map[string]any {
		r := verifyRequest(chain, []string{"*"}, capIdentity)
		f(r)
		return r
	}
	sig := func(r map[string]any) map[string]any { return r["signature"].(map[string]any) }
	for _, tc := range []struct {
		name string
		req  any
		code plugin.ErrorCode
		want string
	}{
		{"bad JSON", `{"contractVersion":`, plugin.CodeValidation, "Input is not a valid JSON"},
		{"oversize", `{"contractVersion":"1.0","pad":"` + strings.Repeat("a", plugin.MaxRequestSize) + `"}`, plugin.CodeValidation, "larger than"},
		{"no contract", mutate(func(r map[string]any) { delete(r, "contractVersion") }), plugin.CodeValidation, "contractVersion cannot be empty"},
		{"other contract", mutate(func(r map[string]any) { r["contractVersion"] = "2.0" }), plugin.CodeUnsupportedContractVersion, `"2.0" is not a supported`},
		{"no chain", mutate(func(r map[string]any) { delete(sig(r), "certificateChain") }), plugin.CodeValidation, "certificateChain cannot be empty"},
		{"bad certificate", mutate(func(r map[string]any) { sig(r)["certificateChain"] = [][]byte{[]byte("nope")} }), plugin.CodeValidation, "certificateChain[0] is not a DER certificate"},
		{"no content type", mutate(func(r map[string]any) { delete(sig(r)["criticalAttributes"].(map[string]any), "contentType") }), plugin.CodeValidation, "contentType cannot be empty"},
		{"other content type", mutate(func(r map[string]any) { sig(r)["criticalAttributes"].(map[string]any)["contentType"] = "text/plain" }), plugin.CodeValidation, `content type "text/plain" is not supported`},
		{"no scheme", mutate(func(r map[string]any) { delete(sig(r)["criticalAttributes"].(map[string]any), "signingScheme") }), plugin.CodeValidation, "signingScheme cannot be empty"},
		{"no capabilities", mutate(func(r map[string]any) { r["trustPolicy"] = map[string]any{"trustedIdentities": []string{"*"}} }), plugin.CodeValidation, "signatureVerification cannot be empty"},
		{"unknown capability", mutate(func(r map[string]any) {
			r["trustPolicy"] = map[string]any{"trustedIdentities": []string{"*"}, "signatureVerification": []string{"SIGNATURE_VERIFIER.OTHER"}}
		}), plugin.CodeValidation, `"SIGNATURE_VERIFIER.OTHER", which keyward does not offer`},
		{"unknown critical attribute", mutate(func(r map[string]any) { sig(r)["unprocessedAttributes"] = []string{"x"} }), plugin.CodeValidation, `does not understand: ["x"]`},
		{"bad revocation timeout", mutate(func(r map[string]any) {
			r["pluginConfig"] = map[string]string{plugin.ConfigOCSPTimeout: "forever"}
			r["trustPolicy"] = map[string]any{"trustedIdentities": []string{"*"}, "signatureVerification": []string{capRevocation}}
		}), plugin.CodeValidation, `revocation_ocsp_timeout="forever"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, perr := run(t, "verify-signature", tc.req)
			wantError(t, perr, tc.code, tc.want)
		})
	}
}

// TestVerifySignatureRevocation checks the chain through OCSP and CRL
// responders on 127.0.0.1, a responder that is down, and the offline CRL
// bundle with no responder at all.
func TestVerifySignatureRevocation(t *testing.T) {
	root := testpki.Root(t, "rev root")
	inter := root.Intermediate(t, "rev intermediate")
	ocspSrv := testpki.StartOCSP(t, inter)
	crlSrv := testpki.StartCRL(t, inter)
	ocspLeaf := inter.Leaf(t, "rev ocsp leaf", testpki.WithOCSP(ocspSrv.URL()))
	crlLeaf := inter.Leaf(t, "rev crl leaf", testpki.WithCRL(crlSrv.URL()))
	revoked := inter.Leaf(t, "rev revoked leaf", testpki.WithOCSP(ocspSrv.URL()), testpki.WithCRL(crlSrv.URL()))
	ocspSrv.Revoke(revoked.Cert.SerialNumber, time.Now().Add(-time.Minute))
	crlSrv.Revoke(revoked.Cert.SerialNumber, time.Now().Add(-time.Minute))
	crlRevoked := inter.Leaf(t, "rev crl revoked leaf", testpki.WithCRL(crlSrv.URL()))
	crlSrv.Revoke(crlRevoked.Cert.SerialNumber, time.Now().Add(-time.Minute))

	dir := t.TempDir()
	crlDER, err := crlSrv.CRL(false)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle.crl")
	if err := os.WriteFile(bundle, crlDER, 0o644); err != nil {
		t.Fatal(err)
	}
	// A leaf whose responders do not exist: only the bundle can answer.
	offline := inter.Leaf(t, "rev offline leaf", testpki.WithOCSP("http://127.0.0.1:1/ocsp"), testpki.WithCRL("http://127.0.0.1:1/ca.crl"))
	offlineRevoked := inter.Leaf(t, "rev offline revoked", testpki.WithOCSP("http://127.0.0.1:1/ocsp"))
	crlSrv.Revoke(offlineRevoked.Cert.SerialNumber, time.Now().Add(-time.Minute))
	crlDER2, err := crlSrv.CRL(false)
	if err != nil {
		t.Fatal(err)
	}
	bundle2 := filepath.Join(dir, "bundle2.crl")
	if err := os.WriteFile(bundle2, crlDER2, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		leaf *testpki.Cert
		cfg  map[string]string
		down bool
		ok   bool
		why  string
	}{
		{"OCSP good", ocspLeaf, nil, false, true, ""},
		{"CRL good", crlLeaf, nil, false, true, ""},
		{"OCSP revoked", revoked, nil, false, false, "is revoked"},
		{"CRL revoked", crlRevoked, nil, false, false, "is revoked"},
		{"responders down", ocspLeaf, map[string]string{plugin.ConfigOCSPTimeout: "500ms"}, true, false, "revocation status is unknown"},
		{"offline bundle, good", offline, map[string]string{plugin.ConfigCRLBundle: bundle, plugin.ConfigOCSPTimeout: "200ms", plugin.ConfigCRLTimeout: "200ms"}, false, true, ""},
		{"offline bundle, revoked", offlineRevoked, map[string]string{plugin.ConfigCRLBundle: bundle2, plugin.ConfigOCSPTimeout: "200ms"}, false, false, "is revoked"},
		{"offline leaf without bundle", offline, map[string]string{plugin.ConfigOCSPTimeout: "200ms", plugin.ConfigCRLTimeout: "200ms"}, false, false, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ocspSrv.SetDown(tc.down)
			crlSrv.SetDown(tc.down)
			defer ocspSrv.SetDown(false)
			defer crlSrv.SetDown(false)
			req := verifyRequest(testpki.Chain(tc.leaf, inter, root), []string{"*"}, capIdentity, capRevocation)
			req["pluginConfig"] = tc.cfg
			resp := verify(t, req)
			r := resp.VerificationResults[capRevocation]
			if r.Success != tc.ok || !strings.Contains(r.Reason, tc.why) {
				t.Errorf("revocation %+v, want success %v, reason with %q", r, tc.ok, tc.why)
			}
			if !resp.VerificationResults[capIdentity].Success {
				t.Errorf("identity %+v", resp.VerificationResults[capIdentity])
			}
		})
	}
	_, perr := run(t, "verify-signature", func() map[string]any {
		r := verifyRequest(testpki.Chain(offline, inter, root), []string{"*"}, capRevocation)
		r["pluginConfig"] = map[string]string{plugin.ConfigCRLBundle: filepath.Join(dir, "missing.crl")}
		return r
	}())
	wantError(t, perr, plugin.CodeValidation, "revocation_crl_bundle=")
}

// TestVerificationPluginAttributes: verification_plugin=true in envelope
// mode signs the critical attributes naming keyward; raw mode refuses it.
func TestVerificationPluginAttributes(t *testing.T) {
	f := newFixture(t, "EC-256")
	for _, mediaType := range []string{"application/jose+json", "application/cose"} {
		t.Run(mediaType, func(t *testing.T) {
			var resp struct{ SignatureEnvelope []byte }
			mustRun(t, "generate-envelope", map[string]any{
				"contractVersion": "1.0", "keyId": f.keyID, "payloadType": plugin.PayloadType,
				"signatureEnvelopeType": mediaType, "payload": targetPayload,
				"pluginConfig": map[string]string{"cert_chain": f.chain, "signing_mode": "envelope", "verification_plugin": "true"},
			}, &resp)
			env, err := signature.ParseEnvelope(mediaType, resp.SignatureEnvelope)
			if err != nil {
				t.Fatal(err)
			}
			content, err := env.Verify()
			if err != nil {
				t.Fatal(err)
			}
			got := map[any]signature.Attribute{}
			for _, a := range content.SignerInfo.SignedAttributes.ExtendedAttributes {
				got[a.Key] = a
			}
			if a := got[plugin.AttrVerificationPlugin]; !a.Critical || a.Value != "keyward" {
				t.Errorf("%s = %+v", plugin.AttrVerificationPlugin, a)
			}
			if a := got[plugin.AttrVerificationPluginMinVersion]; !a.Critical || a.Value == "" {
				t.Errorf("%s = %+v", plugin.AttrVerificationPluginMinVersion, a)
			}
			if len(got) != 2 {
				t.Errorf("extended attributes %v", got)
			}
		})
	}
	var resp struct{ SignatureEnvelope []byte }
	mustRun(t, "generate-envelope", map[string]any{
		"contractVersion": "1.0", "keyId": f.keyID, "payloadType": plugin.PayloadType,
		"signatureEnvelopeType": "application/jose+json", "payload": targetPayload,
		"pluginConfig": map[string]string{"cert_chain": f.chain, "signing_mode": "envelope", "verification_plugin": "false"},
	}, &resp)
	env, _ := signature.ParseEnvelope("application/jose+json", resp.SignatureEnvelope)
	if content, err := env.Verify(); err != nil || len(content.SignerInfo.SignedAttributes.ExtendedAttributes) != 0 {
		t.Errorf("verification_plugin=false: %v, %v", content, err)
	}

	for _, tc := range []struct{ cmd, cfg, want string }{
		{"get-plugin-metadata", `{"pluginConfig":{"verification_plugin":"true"}}`, "in raw mode notation builds the envelope"},
		{"get-plugin-metadata", `{"pluginConfig":{"verification_plugin":"yes","signing_mode":"envelope"}}`, `verification_plugin="yes" is not supported`},
	} {
		_, perr := run(t, tc.cmd, tc.cfg)
		wantError(t, perr, plugin.CodeValidation, tc.want)
	}
	_, perr := run(t, "generate-signature", map[string]any{
		"contractVersion": "1.0", "keyId": f.keyID, "keySpec": "EC-256", "hashAlgorithm": "SHA-256", "payload": []byte("x"),
		"pluginConfig": map[string]string{"cert_chain": f.chain, "verification_plugin": "true"},
	})
	wantError(t, perr, plugin.CodeValidation, "verification_plugin=true needs signing_mode=envelope")

}

// TestVerifySignatureDeltaCRL: a certificate revoked only in the delta CRL
// that its issuer's base CRL names (RFC 5280 5.2.6 Freshest CRL) is
// revoked, as notation-core-go's own CRL fetcher finds it.
func TestVerifySignatureDeltaCRL(t *testing.T) {
	root := testpki.Root(t, "delta root")
	inter := root.Intermediate(t, "delta intermediate")
	crlSrv := testpki.StartCRL(t, inter, testpki.CRLWithDelta())
	good := inter.Leaf(t, "delta good leaf", testpki.WithCRL(crlSrv.URL()))
	revoked := inter.Leaf(t, "delta revoked leaf", testpki.WithCRL(crlSrv.URL()))
	crlSrv.RevokeInDelta(revoked.Cert.SerialNumber, time.Now().Add(-time.Minute))
	for _, tc := range []struct {
		leaf *testpki.Cert
		ok   bool
		why  string
	}{{good, true, ""}, {revoked, false, "is revoked"}} {
		resp := verify(t, verifyRequest(testpki.Chain(tc.leaf, inter, root), []string{"*"}, capRevocation))
		if r := resp.VerificationResults[capRevocation]; r.Success != tc.ok || !strings.Contains(r.Reason, tc.why) {
			t.Errorf("%s: revocation %+v, want success %v, reason with %q", tc.leaf.Cert.Subject.CommonName, r, tc.ok, tc.why)
		}
	}
}
