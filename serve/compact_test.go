package serve

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/verify"
)

// TestCompact: the copy kept in the cache encodes exactly as the verdict,
// every field set, and the verdict itself is not changed.
func TestCompact(t *testing.T) {
	d := digest.FromString("artifact")
	exp := time.Unix(2000, 0).UTC()
	r := &verify.ReferenceResult{Version: verify.ResultVersion, Reference: "r.example/app:v1", Scope: "r.example/app", Tag: "v1",
		Artifact:  &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "a/b", Digest: d, Size: 3, Annotations: map[string]string{"k": "v"}},
		Statement: "all", Level: "strict", Verified: true, ElapsedMS: 7,
		Error: &verify.ReferenceError{Kind: verify.ErrorNoSignature, Message: "m"},
		Signatures: []*verify.Result{{Signature: "sha256:1", MediaType: "application/jose+json", Statement: "all", Level: "strict", Passed: true,
			FailedCheck: "x", Checks: []verify.CheckResult{{Check: "integrity", Action: "enforce", Outcome: "passed", Message: "ok", Detail: "d", Inconclusive: true}},
			Signer: &verify.Signer{Subject: "CN=s", Issuer: "CN=i", SigningScheme: "notary.x509", EnvelopeType: "jws", SignatureAlgorithm: "ES256",
				SigningAgent: "agent", SigningTime: exp, AuthenticSigningTime: true, Expiry: &exp,
				Timestamp:          &verify.Timestamp{Time: exp, Accuracy: time.Second, Authority: "CN=tsa"},
				VerificationPlugin: "p", VerificationPluginMinVersion: "1.0",
				Chain:          []verify.Certificate{{Subject: "CN=s", Issuer: "CN=i", SerialNumber: "01", NotBefore: exp, NotAfter: exp, SHA256: "aa", SHA1: "bb"}},
				TargetArtifact: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 3}}}}}
	before, _ := json.Marshal(r)
	c := compact(r)
	got, _ := json.Marshal(c)
	if string(got) != string(before) {
		t.Errorf("compact changed the verdict:\n got %s\nwant %s", got, before)
	}
	if after, _ := json.Marshal(r); string(after) != string(before) {
		t.Error("compact changed its argument")
	}
	if c.Signatures[0] == r.Signatures[0] || c.Signatures[0].Signer == r.Signatures[0].Signer || &c.Signatures[0].Checks[0] == &r.Signatures[0].Checks[0] {
		t.Error("compact shares what it interns with its argument")
	}
}
