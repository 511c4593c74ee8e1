package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"

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

// TestScanNotationLegacyManifest: a Notary Project signature in the
// manifest form before spec v1.1.0 (no artifactType, config.mediaType
// application/vnd.cncf.notary.signature; shared/formats.md A6: verifiers
// SHOULD accept both forms) is found and classified through the referrers
// API (olareg) and through the referrers tag schema (distribution), with
// keyward verify's verdict.
func TestScanNotationLegacyManifest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *testenv.Registry
	}{{"olareg", testenv.StartOlareg}, {"distribution", testenv.StartDistribution}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newScanWorld(t)
			reg := tc.start(t)
			_, target := testenv.PushTagged(t, reg, "legacy/app", "v1")
			otherRef, other := testenv.PushTagged(t, reg, "legacy/app", "v2")
			w.notationSign(t, reg, otherRef, w.plugin()...)
			sig := w.findSignature(t, reg, "legacy/app", other)
			raw, mt := testenv.GetManifest(t, reg, "legacy/app", sig.Digest.String())
			// The same envelope, in the legacy form, signing target: not
			// verifiable (the envelope signs other), but found as a
			// Notary Project signature. Then a real legacy-form signature
			// of another artifact, which verifies.
			legacy := func(m map[string]any, subject ocispec.Descriptor) ocispec.Descriptor {
				const notary = "application/vnd.cncf.notary.signature"
				cfg := testenv.PutBlob(t, reg, "legacy/app", notary, []byte("{}"))
				delete(m, "artifactType")
				m["config"] = map[string]any{"mediaType": notary, "digest": cfg.Digest.String(), "size": cfg.Size}
				m["subject"] = map[string]any{"mediaType": subject.MediaType, "digest": subject.Digest.String(), "size": subject.Size}
				data, _ := json.Marshal(m)
				d := ocispec.Descriptor{MediaType: mt, Digest: godigest.FromBytes(data), Size: int64(len(data)), ArtifactType: notary}
				testenv.PutManifest(t, reg, "legacy/app", d.Digest.String(), mt, data)
				if !reg.Referrers {
					// The tag schema's descriptor carries the config's media
					// type as artifactType (distribution-spec, "Referrers
					// Tag Schema").
					idx, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}, Versioned: specs.Versioned{SchemaVersion: 2}})
					testenv.PutManifest(t, reg, "legacy/app", "sha256-"+subject.Digest.Encoded(), ocispec.MediaTypeImageIndex, idx)
				}
				return d
			}
			var m map[string]any
			json.Unmarshal(raw, &m)
			legacy(m, target)
			json.Unmarshal(raw, &m)
			legacy(m, other)
			// Only the legacy form is left to other.
			testenv.DeleteManifest(t, reg, "legacy/app", sig.Digest.String())
			policyFile := w.policy(t, "all", "*", "strict", "*")
			env := map[string]string{"HOME": t.TempDir()}
			_, out, errOut := runScanCmd(t, env, "--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json", reg.Host+"/legacy/app")
			recs := decodeRecords(t, out)
			got := map[string]*scan.Record{}
			for i := range recs {
				got[recs[i].Digest] = &recs[i]
			}
			for d, verdict := range map[string]string{target.Digest.String(): scan.VerdictFailed, other.Digest.String(): scan.VerdictVerified} {
				r := got[d]
				if r == nil {
					t.Fatalf("no record of %s\n%s\n%s", d, out, errOut)
				}
				n := 0
				for _, s := range r.Signatures {
					if s.Format == scan.FormatNotation && s.Role == scan.RoleSignature {
						n++
					}
				}
				if n == 0 || r.Status != scan.StatusSigned || r.Verification == nil || r.Verification.Verdict != verdict {
					t.Errorf("%s: status %s, %d notation signatures, verification %+v, want verdict %s; signatures %+v", d, r.Status, n, r.Verification, verdict, r.Signatures)
				}
			}
			compareWithVerify(t, env, policyFile, w.store, recs)
		})
	}
}

// TestScanCosignCopiedSignature: a cosign signature copied from one
// artifact's sha256-<hex>.sig tag to another's (anyone who can push can)
// verifies with the signing key, but over a payload naming the first
// artifact: for the second it is not verified, and a finding says what it
// signs.
func TestScanCosignCopiedSignature(t *testing.T) {
	w := newScanWorld(t)
	if w.cosign == "" {
		testenv.Missing(t, "cosign is not in KEYWARD_TOOLS_BIN: run scripts/tools-cosign.sh (make tools)")
	}
	reg := testenv.StartDistribution(t)
	refA, a := testenv.PushTagged(t, reg, "copy/app", "a")
	_, b := testenv.PushTagged(t, reg, "copy/app", "b")
	w.cosignSign(t, refA)
	raw, mt := testenv.GetManifest(t, reg, "copy/app", "sha256-"+a.Digest.Encoded()+".sig")
	testenv.PutManifest(t, reg, "copy/app", "sha256-"+b.Digest.Encoded()+".sig", mt, raw)
	env := map[string]string{"HOME": t.TempDir()}
	_, out, errOut := runScanCmd(t, env, "--plain-http", "-o", "json", "--cosign-key", filepath.Join(w.cosignDir, "cosign.pub"), reg.Host+"/copy/app")
	recs := decodeRecords(t, out)
	if len(recs) != 2 {
		t.Fatalf("%d records\n%s", len(recs), errOut)
	}
	for _, r := range recs {
		if len(r.Signatures) != 1 {
			t.Fatalf("%s: signatures %+v", r.Digest, r.Signatures)
		}
		s := r.Signatures[0]
		own := r.Digest == a.Digest.String()
		verified := s.Verified
		for _, id := range s.Identities {
			verified = verified || id.Verified
		}
		if verified != own {
			t.Errorf("%s (own signature %v): verified %v, identities %+v", r.Digest, own, verified, s.Identities)
		}
		if !own && (s.SignedDigest != a.Digest.String() || !strings.Contains(strings.Join(s.Findings, " "), "not the artifact")) {
			t.Errorf("the copied signature: signed digest %s, findings %v", s.SignedDigest, s.Findings)
		}
	}
}

// TestScanByteCapCosignTag: with a cap smaller than a cosign signature
// manifest, the scan resolves the sha256-<hex>.sig tag and stops at its
// declared size: the manifest is never downloaded, and the record says
// the cap was reached.
func TestScanByteCapCosignTag(t *testing.T) {
	reg := testenv.StartDistribution(t)
	_, a := testenv.PushTagged(t, reg, "cap/app", "v1")
	// A signature manifest of many layers (about 12 KiB).
	layer := testenv.PutBlob(t, reg, "cap/app", "application/vnd.dev.cosign.simplesigning.v1+json", []byte(`{"critical":{}}`))
	cfg := testenv.PutBlob(t, reg, "cap/app", ocispec.MediaTypeImageConfig, []byte("{}"))
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg}
	for range 64 {
		m.Layers = append(m.Layers, layer)
	}
	data, _ := json.Marshal(m)
	tag := "sha256-" + a.Digest.Encoded() + ".sig"
	testenv.PutManifest(t, reg, "cap/app", tag, ocispec.MediaTypeImageManifest, data)
	p := newProxy(t, reg)
	env := map[string]string{"HOME": t.TempDir()}
	limit := a.Size + int64(len(data))/2
	status, out, errOut := runScanCmd(t, env, "--plain-http", "-o", "json", "--max-bytes", fmt.Sprint(limit), p.host+"/cap/app")
	for _, req := range p.take() {
		if strings.HasPrefix(req, "GET ") && strings.HasSuffix(req, "/manifests/"+tag) {
			t.Errorf("the %d-byte manifest was downloaded with a cap of %d: %s", len(data), limit, req)
		}
	}
	recs := decodeRecords(t, out)
	if status != exitFailure || len(recs) != 1 || !strings.Contains(strings.Join(recs[0].Errors, " "), "--max-bytes") {
		t.Errorf("status %d, records %+v\n%s", status, recs, errOut)
	}
}
