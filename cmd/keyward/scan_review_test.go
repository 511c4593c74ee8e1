package main

import (
	"maps"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/scan"
)

// TestScanAuditIdentityNotVerified scans, under a trust policy of level
// audit, an artifact signed by a chain the trust store does not know:
// keyward verify passes it (audit only logs authenticity), so the scan's
// verdict is verified too, but the signer is not authenticated: neither
// the signature nor its identity may say "verified": true (issue 13:
// every identity carries verified: false unless that signature was
// verified).
func TestScanAuditIdentityNotVerified(t *testing.T) {
	w := newScanWorld(t)
	reg := testenv.StartDistribution(t)
	untrusted, _ := testenv.PushTagged(t, reg, "audit/untrusted", "v1")
	w.notationSign(t, reg, untrusted, w.plugin(w.untrustedKey, w.untrustedChain)...)
	trusted, _ := testenv.PushTagged(t, reg, "audit/trusted", "v1")
	w.notationSign(t, reg, trusted, w.plugin()...)
	policyFile := w.policy(t, "audit", "*", "audit", "*")
	env := map[string]string{"HOME": t.TempDir()}

	if status, out, errOut := runVerifyCmd(t, env, "", "--plain-http", "--policy", policyFile, "--trust-store", w.store, untrusted); status != exitOK {
		t.Fatalf("keyward verify of the untrusted signature under audit: status %d, want %d\n%s%s", status, exitOK, out, errOut)
	}
	status, out, errOut := runScanCmd(t, env, "--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json",
		reg.Host+"/audit/untrusted", reg.Host+"/audit/trusted")
	if status != exitOK {
		t.Errorf("status %d, want %d (audit passes both)\n%s", status, exitOK, errOut)
	}
	recs := decodeRecords(t, out)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2\n%s", len(recs), errOut)
	}
	for _, r := range recs {
		if r.Verification == nil || r.Verification.Verdict != scan.VerdictVerified || len(r.Signatures) != 1 || len(r.Signatures[0].Identities) != 1 {
			t.Fatalf("%s: %+v", r.Repository, r)
		}
		s := r.Signatures[0]
		id := s.Identities[0]
		want := r.Repository == "audit/trusted"
		if s.Verified != want || id.Verified != want {
			t.Errorf("%s: signature verified %v, identity verified %v; want %v (authenticity %s)", r.Repository, s.Verified, id.Verified, want,
				map[bool]string{true: "passed", false: "failed, only logged"}[want])
		}
	}
}

// TestScanPlatformsVariant: --platforms linux/arm64 keeps the arm64
// manifest of an index that gives it a variant (Docker's official images
// list linux/arm64/v8), as docker pull --platform linux/arm64 picks it;
// linux/arm/v6 keeps only that variant.
func TestScanPlatformsVariant(t *testing.T) {
	reg := testenv.StartDistribution(t)
	_, index, children := testenv.PushIndex(t, reg, "p/idx", "v1",
		ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"})
	env := map[string]string{"HOME": t.TempDir()}
	for _, tc := range []struct {
		platforms string
		want      []int // indexes of children
	}{{"linux/arm64", []int{1}}, {"linux/arm/v6", []int{3}}, {"linux/arm", []int{2, 3}}, {"linux/arm64/v8,linux/amd64", []int{0, 1}}} {
		status, out, errOut := runScanCmd(t, env, "--plain-http", "-o", "json", "--platforms", tc.platforms, reg.Host+"/p/idx")
		if status != exitOK {
			t.Fatalf("--platforms %s: status %d\n%s", tc.platforms, status, errOut)
		}
		got := map[string]bool{}
		for _, r := range decodeRecords(t, out) {
			got[r.Digest] = true
		}
		want := map[string]bool{index.Digest.String(): true}
		for _, i := range tc.want {
			want[children[i].Digest.String()] = true
		}
		if !maps.Equal(got, want) {
			t.Errorf("--platforms %s: scanned %v, want %v", tc.platforms, got, want)
		}
	}
}
