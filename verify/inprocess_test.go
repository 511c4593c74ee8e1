package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// TestKeywardInProcess verifies signatures that name keyward as their
// verification plugin with no plugin directory at all: keyward's own
// verify-signature runs in process, judges keyward: identities (naming the
// one that matched) and revocation, and another minimum version than the
// running one fails plugin discovery as with a binary.
func TestKeywardInProcess(t *testing.T) {
	f := newFixture(t)
	const workflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	leaf := f.inter.Leaf(t, "inprocess-leaf", testpki.WithOCSP(f.ocsp.URL()),
		testpki.WithSAN(testpki.SANURI, workflow), testpki.WithFulcio(8, "https://token.actions.githubusercontent.com"))
	revoked := f.inter.Leaf(t, "inprocess-revoked", testpki.WithOCSP(f.ocsp.URL()),
		testpki.WithSAN(testpki.SANURI, workflow), testpki.WithFulcio(8, "https://token.actions.githubusercontent.com"))
	f.ocsp.Revoke(revoked.Cert.SerialNumber, f.now.Add(-60e9))
	names := func(minVersion string) []signature.Attribute {
		return []signature.Attribute{attr(verify.HeaderVerificationPlugin, "keyward"), attr(verify.HeaderVerificationPluginMinVersion, minVersion)}
	}
	good := "keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri=" + workflow
	v, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(f.configDir + "/truststore")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		leaf      *testpki.Cert
		ext       []signature.Attribute
		ids       []string
		pass      bool
		failCheck verify.CheckName
		msg       string
	}{
		{"identity matches", leaf, names(version.Version), []string{good}, true, "", `the certificate matches "` + good + `"`},
		{"identity does not match", leaf, names(version.Version), []string{"keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri=https://github.com/acme/app/x"}, false, verify.CheckTrustedIdentity, "does not match"},
		{"no applicable identity", leaf, names(version.Version), []string{"com.example:x"}, false, verify.CheckTrustedIdentity, "no trusted identity applies"},
		{"revoked", revoked, names(version.Version), []string{good}, false, verify.CheckRevocation, "is revoked"},
		{"newer keyward required", leaf, names("99.0.0"), []string{good}, false, verify.CheckPluginDiscovery, "needs plugin version greater than or equal to 99.0.0"},
		{"unknown critical attribute", leaf, append(names(version.Version), attr("com.example.extra", "v")), []string{good}, false, verify.CheckPluginVerification, "does not understand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main"}, tc.ids, ""))
			env := f.sign(t, signSpec{leaf: tc.leaf, ext: tc.ext})
			res := v.Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact, Reference: f.reference()},
				verify.Envelope{MediaType: mtJWS, Bytes: env})
			if res.Passed != tc.pass {
				t.Fatalf("passed %v, want %v: %v", res.Passed, tc.pass, res.Err)
			}
			check := verify.CheckTrustedIdentity
			if !tc.pass {
				check = tc.failCheck
			}
			if c := res.Check(check); c == nil || !strings.Contains(c.Message+" "+c.Detail, tc.msg) {
				t.Errorf("check %s = %+v, want a message with %q", check, c, tc.msg)
			}
		})
	}
}

// TestKeywardInProcessRevocation: the in-process plugin's revocation check
// is the Verifier's, cached per chain (one OCSP request for many
// signatures by one certificate), unless the plugin config names an
// offline CRL bundle, which the plugin reads without any request.
func TestKeywardInProcessRevocation(t *testing.T) {
	f := newFixture(t)
	ocsp := testpki.StartOCSP(t, f.inter)
	crl := testpki.StartCRL(t, f.inter)
	leaf := f.inter.Leaf(t, "inprocess-rev-leaf", testpki.WithOCSP(ocsp.URL()), testpki.WithCRL(crl.URL()), testpki.WithSAN(testpki.SANDNS, "signer.acme.example"))
	ext := []signature.Attribute{attr(verify.HeaderVerificationPlugin, "keyward")}
	st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main"}, []string{"keyward: san.dns=signer.acme.example"}, ""))
	v, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(f.configDir + "/truststore")})
	if err != nil {
		t.Fatal(err)
	}
	run := func(cfg map[string]string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			env := f.sign(t, signSpec{leaf: leaf, ext: ext, signingTime: f.now.Add(-time.Duration(i) * time.Minute)})
			res := v.Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact, Reference: f.reference(), PluginConfig: cfg},
				verify.Envelope{MediaType: mtJWS, Bytes: env})
			if !res.Passed {
				t.Fatalf("signature %d failed: %v", i, res.Err)
			}
			if c := res.Check(verify.CheckRevocation); c.Outcome != verify.OutcomePassed {
				t.Fatalf("revocation %+v", c)
			}
		}
	}
	run(nil, 5)
	if get, post := ocsp.Requests(); get+post != 1 {
		t.Errorf("%d OCSP requests for 5 signatures by one certificate, want 1", get+post)
	}

	der, err := crl.CRL(false)
	if err != nil {
		t.Fatal(err)
	}
	bundle := testpki.WriteFile(t, t.TempDir(), "bundle.crl", der, 0o644)
	ocsp.SetDown(true)
	crl.SetDown(true)
	run(map[string]string{"revocation_crl_bundle": bundle}, 2)
	if base, _ := crl.Requests(); base != 0 {
		t.Errorf("%d CRL downloads with an offline bundle, want 0", base)
	}
}

// TestKeywardInProcessOfflineBundle: the Verifier's offline CRL bundle
// (keyward verify --crl-bundle) also judges revocation for signatures that
// name keyward as their verification plugin, with no request.
func TestKeywardInProcessOfflineBundle(t *testing.T) {
	f := newFixture(t)
	ocsp := testpki.StartOCSP(t, f.inter)
	crl := testpki.StartCRL(t, f.inter)
	opts := []testpki.Option{testpki.WithOCSP(ocsp.URL()), testpki.WithCRL(crl.URL()), testpki.WithSAN(testpki.SANDNS, "signer.acme.example")}
	good := f.inter.Leaf(t, "inprocess-bundle-good", opts...)
	revoked := f.inter.Leaf(t, "inprocess-bundle-revoked", opts...)
	crl.Revoke(revoked.Cert.SerialNumber, f.now.Add(-time.Hour))
	der, err := crl.CRL(false)
	if err != nil {
		t.Fatal(err)
	}
	bundle := testpki.WriteFile(t, t.TempDir(), "bundle.crl", der, 0o644)
	ocsp.SetDown(true)
	crl.SetDown(true)
	ext := []signature.Attribute{attr(verify.HeaderVerificationPlugin, "keyward")}
	st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main"}, []string{"keyward: san.dns=signer.acme.example"}, ""))
	v, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(f.configDir + "/truststore"), CRLBundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		leaf *testpki.Cert
		pass bool
	}{{good, true}, {revoked, false}} {
		env := f.sign(t, signSpec{leaf: tc.leaf, ext: ext})
		res := v.Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact, Reference: f.reference()}, verify.Envelope{MediaType: mtJWS, Bytes: env})
		if res.Passed != tc.pass {
			t.Errorf("%s: passed %v, want %v: %v", tc.leaf.Cert.Subject.CommonName, res.Passed, tc.pass, res.Err)
			continue
		}
		if !tc.pass && (res.FailedCheck != verify.CheckRevocation || !strings.Contains(res.Err.Error(), "is revoked")) {
			t.Errorf("%s: failed check %q: %v, want revocation: is revoked", tc.leaf.Cert.Subject.CommonName, res.FailedCheck, res.Err)
		}
	}
	if get, post := ocsp.Requests(); get+post != 0 {
		t.Errorf("%d OCSP requests with an offline bundle, want 0", get+post)
	}
	if base, _ := crl.Requests(); base != 0 {
		t.Errorf("%d CRL downloads with an offline bundle, want 0", base)
	}
}
