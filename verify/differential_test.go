package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-go"
	nverifier "github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

// dcase is one envelope verified for one artifact by notation-go and by
// keyward, under every variant.
type dcase struct {
	name            string
	mediaType       string
	env             []byte
	desc            *ocispec.Descriptor // the artifact verified (default the fixture's)
	stores          []string
	identities      []string
	verifyTimestamp string
	pluginConfig    map[string]string
	userMetadata    map[string]string
	// want is the result at level strict: "" passes, else the check that
	// fails as notation names it (a verification type, or pluginDiscovery,
	// pluginVerification, targetArtifact, userMetadata).
	want string
	// messageDiffers says why keyward's message differs from notation's
	// on purpose (the verdict and the failing check must still agree).
	messageDiffers string
	// record compares the verify-signature requests the plugin receives.
	record bool
}

const (
	capIdentity   = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY"
	capRevocation = "SIGNATURE_VERIFIER.REVOCATION_CHECK"
	wildcard      = "*"
)

// differentialCases is the tamper table, made at test time.
func differentialCases(t *testing.T, f *fixture) []dcase {
	now := f.now
	day := 24 * time.Hour
	leaf := f.inter.Leaf(t, "verify-leaf")
	expired := f.inter.Leaf(t, "verify-expired-leaf", testpki.WithValidity(now.Add(-10*day), now.Add(-day)))
	future := f.inter.Leaf(t, "verify-future-leaf", testpki.WithValidity(now.Add(day), now.Add(10*day)))
	dayOld := f.inter.Leaf(t, "verify-day-old-leaf", testpki.WithValidity(now.Add(-day), now.Add(day)))
	ocspGood := f.inter.Leaf(t, "verify-ocsp-good", testpki.WithOCSP(f.ocsp.URL()))
	ocspRevoked := f.inter.Leaf(t, "verify-ocsp-revoked", testpki.WithOCSP(f.ocsp.URL()))
	f.ocsp.Revoke(ocspRevoked.Cert.SerialNumber, now.Add(-time.Hour))
	crlGood := f.inter.Leaf(t, "verify-crl-good", testpki.WithCRL(f.crl.URL()))
	crlRevoked := f.inter.Leaf(t, "verify-crl-revoked", testpki.WithCRL(f.crl.URL()))
	f.crl.Revoke(crlRevoked.Cert.SerialNumber, now.Add(-time.Hour))
	down := f.inter.Leaf(t, "verify-ocsp-down", testpki.WithOCSP(f.ocspDown.URL()))
	fallback := f.inter.Leaf(t, "verify-ocsp-down-crl-good", testpki.WithOCSP(f.ocspDown.URL()), testpki.WithCRL(f.crl.URL()))

	// An intermediate revoked by its issuer's OCSP responder, with one leaf
	// whose own status is unknown and one that is revoked too: notation
	// reports a revoked certificate before an unknown one, and the one
	// nearest the leaf.
	rootOCSP := testpki.StartOCSP(t, f.root)
	revokedInter := f.root.Intermediate(t, "verify-revoked-intermediate", testpki.WithOCSP(rootOCSP.URL()))
	rootOCSP.Revoke(revokedInter.Cert.SerialNumber, now.Add(-time.Hour))
	interDown := testpki.StartOCSP(t, revokedInter)
	interDown.SetDown(true)
	interOCSP := testpki.StartOCSP(t, revokedInter)
	unknownUnderRevoked := revokedInter.Leaf(t, "verify-unknown-under-revoked", testpki.WithOCSP(interDown.URL()))
	revokedUnderRevoked := revokedInter.Leaf(t, "verify-revoked-under-revoked", testpki.WithOCSP(interOCSP.URL()))
	interOCSP.Revoke(revokedUnderRevoked.Cert.SerialNumber, now.Add(-time.Hour))
	goodUnderRevoked := revokedInter.Leaf(t, "verify-good-under-revoked", testpki.WithOCSP(interOCSP.URL()))

	other := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("another artifact"), Size: 99}
	ca := []string{"ca:main"}
	caTSA := []string{"ca:main", "tsa:tsa"}
	any := []string{wildcard}
	dn := func(cn string) []string {
		return []string{"x509.subject: C=US, ST=WA, O=keyward-test, CN=" + cn}
	}

	valid := f.sign(t, signSpec{leaf: leaf})
	validCOSE := f.sign(t, signSpec{mediaType: mtCOSE, leaf: leaf})
	withMetadata := f.sign(t, signSpec{leaf: leaf, annotations: map[string]string{"team": "blue", "build": "7"}})
	expiredTS := f.sign(t, signSpec{leaf: expired, signingTime: now.Add(-5 * day), tsa: f.tsa, tsaTime: now.Add(-5 * day)})
	untrustedTS := f.sign(t, signSpec{leaf: leaf, tsa: f.otherTSA})
	plugin := func(extra ...signature.Attribute) []signature.Attribute {
		return append([]signature.Attribute{attr(verify.HeaderVerificationPlugin, pluginName), attr("com.example.extra", "v")}, extra...)
	}
	withPlugin := f.sign(t, signSpec{leaf: leaf, ext: plugin()})

	cases := []dcase{
		{name: "valid-jws", env: valid, stores: ca, identities: any},
		{name: "valid-cose", mediaType: mtCOSE, env: validCOSE, stores: ca, identities: any},
		{name: "payload-of-another-artifact", env: f.sign(t, signSpec{leaf: leaf, desc: &other}), stores: ca, identities: any, want: "targetArtifact"},
		{name: "verified-for-another-artifact", env: valid, desc: &other, stores: ca, identities: any, want: "targetArtifact"},
		{name: "signature-flipped-jws", env: flipSignature(t, mtJWS, valid), stores: ca, identities: any, want: "integrity"},
		{name: "signature-flipped-cose", mediaType: mtCOSE, env: flipSignature(t, mtCOSE, validCOSE), stores: ca, identities: any, want: "integrity"},
		// notation-go accepts unknown critical extended attributes when
		// no verification plugin is named; the spec says they MUST fail.
		{name: "unknown-critical-attribute-jws", env: f.sign(t, signSpec{leaf: leaf, ext: []signature.Attribute{attr("com.example.unknown", "v")}}), stores: ca, identities: any},
		{name: "unknown-critical-attribute-cose", mediaType: mtCOSE, env: f.sign(t, signSpec{mediaType: mtCOSE, leaf: leaf, ext: []signature.Attribute{attr("com.example.unknown", "v")}}), stores: ca, identities: any},
		{name: "chain-without-root-jws", env: replaceChain(t, mtJWS, valid, testpki.Chain(leaf, f.inter)), stores: ca, identities: any, want: "integrity"},
		{name: "chain-without-root-cose", mediaType: mtCOSE, env: replaceChain(t, mtCOSE, validCOSE, testpki.Chain(leaf, f.inter)), stores: ca, identities: any, want: "integrity"},
		{name: "chain-wrong-order", env: replaceChain(t, mtJWS, valid, testpki.Chain(leaf, f.root, f.inter)), stores: ca, identities: any, want: "integrity"},
		{name: "chain-of-another-key", env: replaceChain(t, mtJWS, valid, f.chain(dayOld)), stores: ca, identities: any, want: "integrity"},
		{name: "not-an-envelope", env: []byte(`{"payload":"e30","protected":"e30","signature":""}`), stores: ca, identities: any, want: "integrity"},
		{name: "unsupported-media-type", mediaType: "application/octet-stream", env: valid, stores: ca, identities: any, want: "integrity"},
		{name: "untrusted-root", env: valid, stores: []string{"ca:other"}, identities: any, want: "authenticity"},
		{name: "trust-store-missing", env: valid, stores: []string{"ca:absent"}, identities: any, want: "authenticity"},
		{name: "only-signing-authority-store", env: valid, stores: []string{"signingAuthority:sa"}, identities: any, want: "authenticity"},
		{name: "identity-match", env: valid, stores: ca, identities: dn("verify-leaf")},
		{name: "identity-mismatch", env: valid, stores: ca, identities: dn("someone-else"), want: "authenticity"},
		{name: "identity-mismatch-untrusted-root", env: valid, stores: []string{"ca:other"}, identities: dn("someone-else"), want: "authenticity"},
		{name: "expired-leaf", env: f.sign(t, signSpec{leaf: expired, signingTime: now.Add(-5 * day)}), stores: ca, identities: any, want: "authenticTimestamp"},
		{name: "not-yet-valid-leaf", env: f.sign(t, signSpec{leaf: future, signingTime: now.Add(2 * day)}), stores: ca, identities: any, want: "authenticTimestamp"},
		{name: "expired-signature", env: f.sign(t, signSpec{leaf: dayOld, signingTime: now.Add(-2 * time.Hour), expiry: now.Add(-time.Hour)}), stores: ca, identities: any, want: "expiry"},
		{name: "unexpired-signature", env: f.sign(t, signSpec{leaf: dayOld, signingTime: now.Add(-2 * time.Hour), expiry: now.Add(time.Hour)}), stores: ca, identities: any},
		{name: "expired-signature-and-leaf", env: f.sign(t, signSpec{leaf: expired, signingTime: now.Add(-5 * day), expiry: now.Add(-4 * day)}), stores: ca, identities: any, want: "expiry"},
		{name: "ocsp-good", env: f.sign(t, signSpec{leaf: ocspGood}), stores: ca, identities: any},
		{name: "leaf-revoked-by-ocsp", env: f.sign(t, signSpec{leaf: ocspRevoked}), stores: ca, identities: any, want: "revocation"},
		{name: "crl-good", env: f.sign(t, signSpec{leaf: crlGood}), stores: ca, identities: any},
		{name: "leaf-revoked-by-crl", env: f.sign(t, signSpec{leaf: crlRevoked}), stores: ca, identities: any, want: "revocation"},
		{name: "leaf-revoked-by-crl-cose", mediaType: mtCOSE, env: f.sign(t, signSpec{mediaType: mtCOSE, leaf: crlRevoked}), stores: ca, identities: any, want: "revocation"},
		{name: "ocsp-responder-down", env: f.sign(t, signSpec{leaf: down}), stores: ca, identities: any, want: "revocation"},
		{name: "intermediate-revoked-leaf-unknown", env: f.sign(t, signSpec{leaf: unknownUnderRevoked, chain: testpki.Chain(unknownUnderRevoked, revokedInter, f.root)}), stores: ca, identities: any, want: "revocation"},
		{name: "intermediate-and-leaf-revoked", env: f.sign(t, signSpec{leaf: revokedUnderRevoked, chain: testpki.Chain(revokedUnderRevoked, revokedInter, f.root)}), stores: ca, identities: any, want: "revocation"},
		{name: "intermediate-revoked-leaf-good", env: f.sign(t, signSpec{leaf: goodUnderRevoked, chain: testpki.Chain(goodUnderRevoked, revokedInter, f.root)}), stores: ca, identities: any, want: "revocation"},
		{name: "ocsp-down-crl-fallback", env: f.sign(t, signSpec{leaf: fallback}), stores: ca, identities: any},
		{name: "timestamp-valid-expired-leaf", env: expiredTS, stores: caTSA, identities: any},
		{name: "timestamp-valid-expired-leaf-cose", mediaType: mtCOSE, env: f.sign(t, signSpec{mediaType: mtCOSE, leaf: expired, signingTime: now.Add(-5 * day), tsa: f.tsa, tsaTime: now.Add(-5 * day)}), stores: caTSA, identities: any},
		{name: "timestamp-valid-after-cert-expiry", env: expiredTS, stores: caTSA, identities: any, verifyTimestamp: "afterCertExpiry"},
		{name: "timestamp-valid-no-tsa-store", env: expiredTS, stores: ca, identities: any, want: "authenticTimestamp"},
		{name: "timestamp-after-leaf-expiry", env: f.sign(t, signSpec{leaf: expired, signingTime: now.Add(-5 * day), tsa: f.tsa}), stores: caTSA, identities: any, want: "authenticTimestamp"},
		{name: "timestamp-untrusted-tsa-expired-leaf", env: f.sign(t, signSpec{leaf: expired, signingTime: now.Add(-5 * day), tsa: f.otherTSA, tsaTime: now.Add(-5 * day)}), stores: caTSA, identities: any, want: "authenticTimestamp"},
		{name: "timestamp-missing-expired-leaf", env: f.sign(t, signSpec{leaf: expired, signingTime: now.Add(-5 * day)}), stores: caTSA, identities: any, want: "authenticTimestamp"},
		{name: "timestamp-tsa-revoked", env: f.sign(t, signSpec{leaf: expired, signingTime: now.Add(-5 * day), tsa: f.revTSA, tsaTime: now.Add(-5 * day)}), stores: []string{"ca:main", "tsa:revtsa"}, identities: any, want: "authenticTimestamp"},
		{name: "timestamp-untrusted-always", env: untrustedTS, stores: caTSA, identities: any, want: "authenticTimestamp"},
		{name: "timestamp-untrusted-after-cert-expiry", env: untrustedTS, stores: caTSA, identities: any, verifyTimestamp: "afterCertExpiry"},
		{name: "timestamp-not-needed-valid-leaf", env: f.sign(t, signSpec{leaf: leaf, tsa: f.tsa}), stores: caTSA, identities: any},
		{name: "signing-authority", env: f.sign(t, signSpec{leaf: leaf, scheme: signature.SigningSchemeX509SigningAuthority}), stores: []string{"signingAuthority:sa"}, identities: any},
		{name: "signing-authority-revoked-by-ocsp", env: f.sign(t, signSpec{leaf: ocspRevoked, scheme: signature.SigningSchemeX509SigningAuthority}), stores: []string{"signingAuthority:sa"}, identities: any, want: "revocation"},
		{name: "signing-authority-with-ca-store", env: f.sign(t, signSpec{leaf: leaf, scheme: signature.SigningSchemeX509SigningAuthority}), stores: ca, identities: any, want: "authenticity"},
		{name: "user-metadata-match", env: withMetadata, stores: ca, identities: any, userMetadata: map[string]string{"team": "blue"}},
		{name: "user-metadata-mismatch", env: withMetadata, stores: ca, identities: any, userMetadata: map[string]string{"team": "red"}, want: "userMetadata"},
		{name: "user-metadata-absent", env: valid, stores: ca, identities: any, userMetadata: map[string]string{"team": "blue"}, want: "userMetadata"},
		{name: "user-metadata-and-artifact-mismatch", env: withMetadata, desc: &other, stores: ca, identities: any, userMetadata: map[string]string{"team": "red"}, want: "userMetadata"},

		// Verification plugins.
		{name: "plugin-verifies", env: withPlugin, stores: ca, identities: any, record: true},
		{name: "plugin-verifies-cose", mediaType: mtCOSE, env: f.sign(t, signSpec{mediaType: mtCOSE, leaf: leaf, ext: plugin()}), stores: ca, identities: any, record: true},
		{name: "plugin-verifies-identity", env: withPlugin, stores: ca, identities: dn("someone-else"), record: true},
		{name: "plugin-signing-authority", env: f.sign(t, signSpec{leaf: dayOld, scheme: signature.SigningSchemeX509SigningAuthority, signingTime: now.Add(-time.Hour), expiry: now.Add(time.Hour), ext: plugin()}), stores: []string{"signingAuthority:sa"}, identities: any, record: true},
		{name: "plugin-untrusted-root", env: withPlugin, stores: []string{"ca:other"}, identities: any, want: "authenticity"},
		{name: "plugin-missing", env: f.sign(t, signSpec{leaf: leaf, ext: []signature.Attribute{attr(verify.HeaderVerificationPlugin, "absent")}}), stores: ca, identities: any, want: "pluginDiscovery"},
		{name: "plugin-name-escapes-plugin-dir", env: f.sign(t, signSpec{leaf: leaf, ext: []signature.Attribute{attr(verify.HeaderVerificationPlugin, "../"+pluginName)}}), stores: ca, identities: any, want: "pluginDiscovery",
			messageDiffers: "keyward refuses a plugin name that is not a single path element instead of looking for the file"},
		{name: "plugin-attribute-not-critical", env: f.sign(t, signSpec{leaf: leaf, ext: []signature.Attribute{{Key: verify.HeaderVerificationPlugin, Value: pluginName}}}), stores: ca, identities: any, want: "pluginDiscovery"},
		{name: "plugin-name-empty", env: f.sign(t, signSpec{leaf: leaf, ext: []signature.Attribute{attr(verify.HeaderVerificationPlugin, " ")}}), stores: ca, identities: any, want: "pluginDiscovery"},
		{name: "plugin-min-version-met", env: f.sign(t, signSpec{leaf: leaf, ext: plugin(attr(verify.HeaderVerificationPluginMinVersion, "1.0.0-alpha"))}), stores: ca, identities: any},
		{name: "plugin-min-version-too-high", env: f.sign(t, signSpec{leaf: leaf, ext: plugin(attr(verify.HeaderVerificationPluginMinVersion, "1.0.1"))}), stores: ca, identities: any, want: "pluginDiscovery"},
		{name: "plugin-min-version-invalid", env: f.sign(t, signSpec{leaf: leaf, ext: plugin(attr(verify.HeaderVerificationPluginMinVersion, "v1"))}), stores: ca, identities: any, want: "pluginDiscovery"},
		{name: "plugin-prerelease-below-min", env: f.sign(t, signSpec{leaf: leaf, ext: plugin(attr(verify.HeaderVerificationPluginMinVersion, "1.0.0"))}), stores: ca, identities: any,
			pluginConfig: map[string]string{"version": "1.0.0-rc.1"}, want: "pluginDiscovery"},
		{name: "plugin-without-verify-capability", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"caps": "SIGNATURE_GENERATOR.RAW"}, want: "pluginDiscovery"},
		{name: "plugin-version-not-semver", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"version": "1.0"}, want: "pluginDiscovery"},
		{name: "plugin-name-mismatch", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"name": "other"}, want: "pluginDiscovery"},
		{name: "plugin-metadata-error", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"fail": "get-plugin-metadata"}, want: "pluginDiscovery"},
		{name: "plugin-metadata-garbage", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"garbage": "get-plugin-metadata"}, want: "pluginDiscovery"},
		{name: "plugin-identity-fails", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"identity": "fail"}, want: "authenticity", record: true},
		{name: "plugin-revocation-fails", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"revocation": "fail"}, want: "revocation", record: true},
		{name: "plugin-both-fail", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"identity": "fail", "revocation": "fail"}, want: "authenticity"},
		{name: "plugin-unprocessed-attribute", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"processed": "none"}, want: "pluginVerification"},
		{name: "plugin-missing-result", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"omit": capIdentity}, want: "pluginVerification"},
		{name: "plugin-missing-revocation-result", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"omit": capRevocation}, want: "pluginVerification"},
		{name: "plugin-verify-error", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"fail": "verify-signature"}, want: "pluginVerification"},
		{name: "plugin-verify-garbage", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"garbage": "verify-signature"}, want: "pluginVerification"},
		// With revocation skipped, a revocation-only plugin is not called,
		// so its unprocessed critical attribute goes unnoticed (notation).
		{name: "plugin-revocation-only", env: withPlugin, stores: ca, identities: dn("someone-else"), pluginConfig: map[string]string{"caps": capRevocation, "processed": "none"}, want: "authenticity"},
		{name: "plugin-revocation-only-unprocessed", env: withPlugin, stores: ca, identities: any, pluginConfig: map[string]string{"caps": capRevocation, "processed": "none"}, want: "pluginVerification"},
	}
	for i := range cases {
		if cases[i].mediaType == "" {
			cases[i].mediaType = mtJWS
		}
	}
	return cases
}

// TestDifferential runs notation-go v1.3.2's verifier (in process, as the
// notation CLI configures it) and keyward's on every case under every
// variant, and requires the same verdict, the same failing check, the same
// message, the same logged failures and, for plugins, the same
// verify-signature request.
func TestDifferential(t *testing.T) {
	f := newFixture(t)
	cases := differentialCases(t, f)
	ctx := context.Background()
	var pairs, passed, failed, differs int
	byCheck := map[string]int{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range variants {
				pairs++
				d := runPair(t, ctx, f, c, v)
				if d.keyward == "" {
					passed++
				} else {
					failed++
					byCheck[d.keyward]++
				}
				if d.messageDiffers {
					differs++
				}
				if v.name == "strict" && d.keyward != c.want {
					t.Errorf("strict: failing check %q, the case expects %q", d.keyward, c.want)
				}
			}
		})
	}
	keys := make([]string, 0, len(byCheck))
	for k := range byCheck {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s=%d", k, byCheck[k])
	}
	t.Logf("differential: %d cases x %d variants = %d pairs; both pass %d, both fail %d (%s); messages differing on purpose %d",
		len(cases), len(variants), pairs, passed, failed, strings.TrimSpace(sb.String()), differs)
}

type pairResult struct {
	keyward        string
	messageDiffers bool
}

// runPair verifies c under v with both verifiers and reports differences.
func runPair(t *testing.T, ctx context.Context, f *fixture, c dcase, v variant) pairResult {
	t.Helper()
	doc := policyDocument(v, c.stores, c.identities, c.verifyTimestamp)
	desc := f.artifact
	if c.desc != nil {
		desc = *c.desc
	}
	cfg := map[string]string{}
	for k, val := range c.pluginConfig {
		cfg[k] = val
	}
	recordDir := ""
	if c.record {
		recordDir = t.TempDir()
		cfg["record"] = recordDir
	}
	if len(cfg) == 0 {
		cfg = nil
	}

	nv, err := nverifier.NewWithOptions(loadNotationPolicy(t, doc), f.notationStores(), f.notationPlugins(), nverifier.VerifierOptions{})
	if err != nil {
		t.Fatalf("%s: notation verifier: %v", v.name, err)
	}
	outcome, nerr := nv.Verify(ctx, desc, c.env, notation.VerifierVerifyOptions{
		ArtifactReference:  f.reference(),
		SignatureMediaType: c.mediaType,
		PluginConfig:       cfg,
		UserMetadata:       c.userMetadata,
	})
	nreq := takeRequest(t, recordDir)

	res := f.keywardVerifier(t).Verify(ctx, verify.Request{
		Statement:    f.keywardStatement(t, doc),
		Artifact:     desc,
		Reference:    f.reference(),
		PluginConfig: cfg,
		UserMetadata: c.userMetadata,
	}, verify.Envelope{MediaType: c.mediaType, Bytes: c.env})
	kreq := takeRequest(t, recordDir)

	ncat, kcat := notationCheck(outcome, nerr), keywardCheck(res)
	if ncat != kcat {
		t.Errorf("%s: notation fails %q (%v), keyward fails %q (%v)", v.name, ncat, nerr, kcat, res.Err)
	}
	if res.Passed != (nerr == nil) {
		t.Errorf("%s: notation passes %v, keyward %v", v.name, nerr == nil, res.Passed)
	}
	if (res.Err == nil) != res.Passed || (res.FailedCheck == "") != res.Passed {
		t.Errorf("%s: inconsistent result: passed %v, failed check %q, err %v", v.name, res.Passed, res.FailedCheck, res.Err)
	}
	var pr pairResult
	pr.keyward = kcat
	if nerr != nil && res.Err != nil && nerr.Error() != res.Err.Error() {
		if c.messageDiffers == "" {
			t.Errorf("%s: messages differ\nnotation: %s\nkeyward:  %s", v.name, nerr, res.Err)
		} else {
			pr.messageDiffers = true
		}
	}
	if n, k := notationLogged(outcome), keywardLogged(res); n != k {
		t.Errorf("%s: logged failures differ: notation [%s], keyward [%s]", v.name, n, k)
	}
	if c.record && !bytes.Equal(nreq, kreq) {
		t.Errorf("%s: verify-signature requests differ\nnotation: %s\nkeyward:  %s", v.name, nreq, kreq)
	}
	checkConsistent(t, v.name, res)
	return pr
}

// checkConsistent checks invariants of a keyward result: every check is
// reported once in order, an enforced failure is the last check run, and
// nothing is reported passed that did not run.
func checkConsistent(t *testing.T, variant string, res *verify.Result) {
	t.Helper()
	names := verify.Checks()
	if len(res.Checks) != len(names) {
		t.Fatalf("%s: %d checks reported, want %d", variant, len(res.Checks), len(names))
	}
	for i, c := range res.Checks {
		if c.Check != names[i] {
			t.Errorf("%s: check %d is %q, want %q", variant, i, c.Check, names[i])
		}
		if c.Outcome == verify.OutcomeFailed && c.Message == "" {
			t.Errorf("%s: %s failed without a message", variant, c.Check)
		}
	}
	if res.Passed {
		for _, c := range res.Checks {
			if c.Outcome == verify.OutcomeNotRun && res.Level != "skip" {
				t.Errorf("%s: passed with %s not run", variant, c.Check)
			}
			if c.Outcome == verify.OutcomeFailed && c.Action == "enforce" {
				t.Errorf("%s: passed with enforced %s failed", variant, c.Check)
			}
		}
	}
}

// notationCheck names the check a notation-go outcome failed: the
// verification type of the enforced result holding the error, else the
// step that returns errors without a result.
func notationCheck(outcome *notation.VerificationOutcome, err error) string {
	if err == nil {
		return ""
	}
	var um notation.UserMetadataVerificationFailedError
	if errors.As(err, &um) {
		return "userMetadata"
	}
	if err.Error() == "content descriptor mismatch" {
		return "targetArtifact"
	}
	switch err.(type) { // notation-go returns the payload's decoding error as is
	case *json.SyntaxError, *json.UnmarshalTypeError:
		return "targetArtifact"
	}
	if outcome == nil {
		return "no-outcome"
	}
	for _, r := range outcome.VerificationResults {
		if r.Error != nil && r.Action == trustpolicy.ActionEnforce && r.Error.Error() == err.Error() {
			return string(r.Type)
		}
	}
	if len(outcome.VerificationResults) <= 1 {
		return "pluginDiscovery" // returned between integrity and authenticity
	}
	return "pluginVerification"
}

func keywardCheck(res *verify.Result) string {
	if res.Passed {
		return ""
	}
	if pc := res.FailedCheck.PolicyCheck(); pc != "" {
		return string(pc)
	}
	return string(res.FailedCheck)
}

// notationLogged lists the verification types that failed with action log.
func notationLogged(outcome *notation.VerificationOutcome) string {
	set := map[string]bool{}
	if outcome != nil {
		for _, r := range outcome.VerificationResults {
			if r.Error != nil && r.Action == trustpolicy.ActionLog {
				set[string(r.Type)] = true
			}
		}
	}
	return setString(set)
}

func keywardLogged(res *verify.Result) string {
	set := map[string]bool{}
	for _, c := range res.Warnings() {
		set[string(c.Check.PolicyCheck())] = true
	}
	return setString(set)
}

func setString(set map[string]bool) string {
	var s []string
	for k := range set {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// takeRequest returns the verify-signature request the test plugin
// recorded in dir (nil if none) and empties dir.
func takeRequest(t *testing.T, dir string) []byte {
	t.Helper()
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var req []byte
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), "verify-signature-") {
			if req, err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	return req
}
