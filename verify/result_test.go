package verify_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// outcomes renders each check as check=outcome/action.
func outcomes(res *verify.Result) string {
	var s []string
	for _, c := range res.Checks {
		s = append(s, string(c.Check)+"="+string(c.Outcome)+"/"+string(c.Action))
	}
	return strings.Join(s, " ")
}

// TestCheckOutcomes pins the per-check record for representative
// signatures: what passed, failed, was skipped or never ran, under which
// action.
func TestCheckOutcomes(t *testing.T) {
	f := newFixture(t)
	leaf := f.inter.Leaf(t, "outcome-leaf")
	valid := f.sign(t, signSpec{leaf: leaf})
	expiredSig := f.sign(t, signSpec{leaf: f.inter.Leaf(t, "outcome-day-leaf", testpki.WithValidity(f.now.Add(-24*time.Hour), f.now.Add(24*time.Hour))),
		signingTime: f.now.Add(-2 * time.Hour), expiry: f.now.Add(-time.Hour)})
	withPlugin := f.sign(t, signSpec{leaf: leaf, ext: []signature.Attribute{attr(verify.HeaderVerificationPlugin, pluginName)}})
	tests := []struct {
		name    string
		env     []byte
		v       variant
		stores  []string
		ids     []string
		meta    map[string]string
		pass    bool
		failed  verify.CheckName
		want    string
		warning verify.CheckName
	}{
		{name: "valid", env: valid, v: variants[0], stores: []string{"ca:main"}, ids: []string{"*"}, pass: true,
			want: "integrity=passed/enforce pluginDiscovery=skipped/enforce authenticity=passed/enforce trustedIdentity=passed/enforce expiry=passed/enforce authenticTimestamp=passed/enforce revocation=passed/enforce pluginVerification=skipped/enforce targetArtifact=passed/enforce userMetadata=skipped/enforce"},
		{name: "revocation-skipped", env: valid, v: variant{level: "strict", overrides: map[string]string{"revocation": "skip"}}, stores: []string{"ca:main"}, ids: []string{"*"}, meta: map[string]string{"a": "b"},
			failed: verify.CheckUserMetadata,
			want:   "integrity=passed/enforce pluginDiscovery=skipped/enforce authenticity=passed/enforce trustedIdentity=passed/enforce expiry=passed/enforce authenticTimestamp=passed/enforce revocation=skipped/skip pluginVerification=skipped/enforce targetArtifact=passed/enforce userMetadata=failed/enforce"},
		{name: "audit-untrusted-goes-on", env: valid, v: variant{level: "audit"}, stores: []string{"ca:other"}, ids: []string{"*"}, pass: true, warning: verify.CheckAuthenticity,
			want: "integrity=passed/enforce pluginDiscovery=skipped/enforce authenticity=failed/log trustedIdentity=passed/log expiry=passed/log authenticTimestamp=passed/log revocation=passed/log pluginVerification=skipped/enforce targetArtifact=passed/enforce userMetadata=skipped/enforce"},
		{name: "expired-stops", env: expiredSig, v: variants[0], stores: []string{"ca:main"}, ids: []string{"*"}, failed: verify.CheckExpiry,
			want: "integrity=passed/enforce pluginDiscovery=skipped/enforce authenticity=passed/enforce trustedIdentity=passed/enforce expiry=failed/enforce authenticTimestamp=not-run/enforce revocation=not-run/enforce pluginVerification=not-run/enforce targetArtifact=not-run/enforce userMetadata=not-run/enforce"},
		{name: "plugin-decides-identity-and-revocation", env: withPlugin, v: variants[0], stores: []string{"ca:main"}, ids: []string{"x509.subject: C=US, ST=WA, O=nobody"}, pass: true,
			want: "integrity=passed/enforce pluginDiscovery=passed/enforce authenticity=passed/enforce trustedIdentity=passed/enforce expiry=passed/enforce authenticTimestamp=passed/enforce revocation=passed/enforce pluginVerification=passed/enforce targetArtifact=passed/enforce userMetadata=skipped/enforce"},
		{name: "skip-level", env: []byte("not even an envelope"), v: variant{level: "skip"}, pass: true,
			want: "integrity=skipped/skip pluginDiscovery=skipped/skip authenticity=skipped/skip trustedIdentity=skipped/skip expiry=skipped/skip authenticTimestamp=skipped/skip revocation=skipped/skip pluginVerification=skipped/skip targetArtifact=skipped/skip userMetadata=skipped/skip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := f.keywardStatement(t, policyDocument(tc.v, tc.stores, tc.ids, ""))
			res := f.keywardVerifier(t).Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact, UserMetadata: tc.meta}, verify.Envelope{MediaType: mtJWS, Bytes: tc.env})
			if res.Passed != tc.pass || res.FailedCheck != tc.failed {
				t.Fatalf("passed %v failed %q (%v), want %v %q", res.Passed, res.FailedCheck, res.Err, tc.pass, tc.failed)
			}
			if got := outcomes(res); got != tc.want {
				t.Errorf("checks\n got %s\nwant %s", got, tc.want)
			}
			if w := res.Warnings(); (tc.warning == "") != (len(w) == 0) || (tc.warning != "" && w[0].Check != tc.warning) {
				t.Errorf("warnings %+v, want %q", w, tc.warning)
			}
			for _, c := range res.Checks {
				if c.Outcome != verify.OutcomeNotRun && c.Message == "" {
					t.Errorf("%s is %s without a message", c.Check, c.Outcome)
				}
			}
			var ce *verify.CheckError
			if res.Err != nil && (!errors.As(res.Err, &ce) || ce.Check != res.FailedCheck) {
				t.Errorf("error %T %v does not name the failed check", res.Err, res.Err)
			}
		})
	}
}

// TestSignerRecord checks what is recorded about the signer of a
// timestamped signature made with a since-expired certificate.
func TestSignerRecord(t *testing.T) {
	f := newFixture(t)
	day := 24 * time.Hour
	leaf := f.inter.Leaf(t, "signer-leaf", testpki.WithValidity(f.now.Add(-10*day), f.now.Add(-day)))
	signedAt := f.now.Add(-5 * day).Truncate(time.Second)
	env := f.sign(t, signSpec{leaf: leaf, signingTime: signedAt, tsa: f.tsa, tsaTime: signedAt.Add(time.Minute),
		annotations: map[string]string{"team": "blue"}})
	st := f.keywardStatement(t, policyDocument(variants[0], []string{"ca:main", "tsa:tsa"}, []string{"*"}, ""))
	res := f.keywardVerifier(t).Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact}, verify.Envelope{MediaType: mtJWS, Bytes: env})
	if !res.Passed {
		t.Fatal(res.Err)
	}
	s := res.Signer
	chain := f.chain(leaf)
	if s.Subject != leaf.Cert.Subject.String() || s.Issuer != f.inter.Cert.Subject.String() {
		t.Errorf("subject %q issuer %q", s.Subject, s.Issuer)
	}
	if s.SigningScheme != "notary.x509" || s.EnvelopeType != mtJWS || s.SignatureAlgorithm != "ECDSA-SHA-256" || s.SigningAgent != "keyward-test/1.0" {
		t.Errorf("scheme %q envelope %q algorithm %q agent %q", s.SigningScheme, s.EnvelopeType, s.SignatureAlgorithm, s.SigningAgent)
	}
	if !s.SigningTime.Equal(signedAt) || s.AuthenticSigningTime || s.Expiry != nil {
		t.Errorf("signing time %v (authentic %v), expiry %v", s.SigningTime, s.AuthenticSigningTime, s.Expiry)
	}
	if s.Timestamp == nil || !s.Timestamp.Time.Equal(signedAt.Add(time.Minute)) || s.Timestamp.Authority != f.tsa.Leaf().Cert.Subject.String() {
		t.Errorf("timestamp %+v", s.Timestamp)
	}
	if len(s.Chain) != len(chain) {
		t.Fatalf("chain of %d, want %d", len(s.Chain), len(chain))
	}
	for i, c := range chain {
		s256, s1 := sha256.Sum256(c.Raw), sha1.Sum(c.Raw)
		if s.Chain[i].SHA256 != hex.EncodeToString(s256[:]) || s.Chain[i].SHA1 != hex.EncodeToString(s1[:]) || s.Chain[i].Subject != c.Subject.String() {
			t.Errorf("chain[%d] = %+v", i, s.Chain[i])
		}
	}
	if s.TargetArtifact == nil || s.TargetArtifact.Digest != f.artifact.Digest || s.TargetArtifact.Annotations["team"] != "blue" {
		t.Errorf("target artifact %+v", s.TargetArtifact)
	}
	// The result is plain data for JSON output.
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back verify.Result
	if err := json.Unmarshal(out, &back); err != nil || back.Signer.Chain[0].SHA256 != s.Chain[0].SHA256 || len(back.Checks) != len(res.Checks) {
		t.Errorf("JSON round trip: %v\n%s", err, out)
	}
}

// TestStatementFromPolicy checks that package policy's statement and trust
// store are what the evaluator consumes, with no adapter.
func TestStatementFromPolicy(t *testing.T) {
	var _ verify.Statement = (*policy.Statement)(nil)
	var _ verify.TrustStore = (*truststore.TrustStore)(nil)
	if _, err := verify.NewVerifier(verify.Options{}); err == nil {
		t.Error("a Verifier without a trust store was made")
	}
	f := newFixture(t)
	res := f.keywardVerifier(t).Verify(context.Background(), verify.Request{}, verify.Envelope{})
	if res.Passed || res.Err == nil {
		t.Error("a request without a statement passed")
	}
}
