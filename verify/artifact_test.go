package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/notaryproject/notation-go"
	nverifier "github.com/notaryproject/notation-go/verifier"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// memRepo holds an artifact's signatures in memory and serves them both
// to notation-go (registry.Repository) and to keyward
// (verify.SignatureSource), in the same order, counting what each reads.
type memRepo struct {
	artifact ocispec.Descriptor
	sigs     []memSig
	pageSize int

	listed, fetched int
}

type memSig struct {
	manifest  ocispec.Descriptor
	mediaType string
	env       []byte
	fetchErr  error
}

func newMemRepo(artifact ocispec.Descriptor, pageSize int, envs ...[]byte) *memRepo {
	r := &memRepo{artifact: artifact, pageSize: pageSize}
	for i, env := range envs {
		r.sigs = append(r.sigs, memSig{
			manifest: ocispec.Descriptor{
				MediaType:    ocispec.MediaTypeImageManifest,
				ArtifactType: "application/vnd.cncf.notary.signature",
				Digest:       digest.FromString(fmt.Sprintf("signature manifest %d", i)),
				Size:         int64(500 + i),
			},
			mediaType: mtJWS,
			env:       env,
		})
	}
	return r
}

func (r *memRepo) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	return r.artifact, nil
}

func (r *memRepo) ListSignatures(ctx context.Context, desc ocispec.Descriptor, fn func([]ocispec.Descriptor) error) error {
	for i := 0; i < len(r.sigs); i += r.pageSize {
		var page []ocispec.Descriptor
		for _, s := range r.sigs[i:min(i+r.pageSize, len(r.sigs))] {
			page = append(page, s.manifest)
		}
		r.listed += len(page)
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

func (r *memRepo) find(d ocispec.Descriptor) *memSig {
	for i := range r.sigs {
		if r.sigs[i].manifest.Digest == d.Digest {
			return &r.sigs[i]
		}
	}
	return nil
}

func (r *memRepo) FetchSignatureBlob(ctx context.Context, d ocispec.Descriptor) ([]byte, ocispec.Descriptor, error) {
	r.fetched++
	s := r.find(d)
	if s.fetchErr != nil {
		return nil, ocispec.Descriptor{}, s.fetchErr
	}
	return s.env, ocispec.Descriptor{MediaType: s.mediaType, Digest: digest.FromBytes(s.env), Size: int64(len(s.env))}, nil
}

func (r *memRepo) PushSignature(context.Context, string, []byte, ocispec.Descriptor, map[string]string) (ocispec.Descriptor, ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, ocispec.Descriptor{}, errors.New("read-only")
}

func (r *memRepo) Signatures(ctx context.Context, fn func(ocispec.Descriptor) error) error {
	for _, s := range r.sigs {
		r.listed++
		if err := fn(s.manifest); err != nil {
			if errors.Is(err, verify.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (r *memRepo) Fetch(ctx context.Context, d ocispec.Descriptor) (verify.Envelope, error) {
	r.fetched++
	s := r.find(d)
	if s.fetchErr != nil {
		return verify.Envelope{}, s.fetchErr
	}
	return verify.Envelope{MediaType: s.mediaType, Bytes: s.env}, nil
}

// TestArtifactDifferential compares notation.Verify (notation-go's loop
// over an artifact's signatures) with VerifyArtifact.
func TestArtifactDifferential(t *testing.T) {
	f := newFixture(t)
	leaf := f.inter.Leaf(t, "artifact-leaf")
	good := f.sign(t, signSpec{leaf: leaf})
	bad := flipSignature(t, mtJWS, good)
	other := f.sign(t, signSpec{leaf: leaf, desc: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("x"), Size: 1}})
	ctx := context.Background()

	tests := []struct {
		name     string
		level    string
		max      int
		envs     [][]byte
		fetchErr int // index of a signature whose fetch fails (-1 none)
		pass     bool
		fetched  int
	}{
		{name: "no-signature", max: 100, fetchErr: -1},
		{name: "one-good", max: 100, envs: [][]byte{good}, fetchErr: -1, pass: true, fetched: 1},
		{name: "one-bad", max: 100, envs: [][]byte{bad}, fetchErr: -1, fetched: 1},
		{name: "bad-then-good", max: 100, envs: [][]byte{bad, other, good}, fetchErr: -1, pass: true, fetched: 3},
		{name: "good-then-bad-stops-at-first", max: 100, envs: [][]byte{good, bad}, fetchErr: -1, pass: true, fetched: 1},
		{name: "limit-reached-before-good", max: 2, envs: [][]byte{bad, other, good}, fetchErr: -1, fetched: 2},
		{name: "good-at-the-limit", max: 2, envs: [][]byte{bad, good}, fetchErr: -1, pass: true, fetched: 2},
		{name: "limit-equals-count", max: 1, envs: [][]byte{bad}, fetchErr: -1, fetched: 1},
		{name: "fetch-error", max: 100, envs: [][]byte{bad, good, good}, fetchErr: 1, fetched: 2},
		{name: "skip-level", level: "skip", max: 100, envs: [][]byte{bad}, fetchErr: -1, pass: true},
	}
	for _, tc := range tests {
		for _, pageSize := range []int{1, 2, 100} {
			t.Run(fmt.Sprintf("%s/page%d", tc.name, pageSize), func(t *testing.T) {
				level := tc.level
				if level == "" {
					level = "strict"
				}
				doc := policyDocument(variant{level: level}, []string{"ca:main"}, []string{"*"}, "")
				mk := func() *memRepo {
					r := newMemRepo(f.artifact, pageSize, tc.envs...)
					if tc.fetchErr >= 0 {
						r.sigs[tc.fetchErr].fetchErr = errors.New("connection reset")
					}
					return r
				}

				nrepo := mk()
				nv, err := nverifier.NewWithOptions(loadNotationPolicy(t, doc), f.notationStores(), f.notationPlugins(), nverifier.VerifierOptions{})
				if err != nil {
					t.Fatal(err)
				}
				_, _, nerr := notation.Verify(ctx, nv, nrepo, notation.VerifyOptions{ArtifactReference: f.reference(), MaxSignatureAttempts: tc.max})

				krepo := mk()
				res, kerr := f.keywardVerifier(t).VerifyArtifact(ctx, verify.ArtifactRequest{
					Request:       verify.Request{Statement: f.keywardStatement(t, doc), Artifact: f.artifact, Reference: f.reference()},
					MaxSignatures: tc.max,
				}, krepo)

				if (nerr == nil) != tc.pass || (kerr == nil) != tc.pass || res.Passed != tc.pass {
					t.Fatalf("pass: want %v, notation %v, keyward %v (%v)", tc.pass, nerr, kerr, res.Passed)
				}
				if nerr != nil && nerr.Error() != kerr.Error() {
					t.Errorf("messages differ\nnotation: %s\nkeyward:  %s", nerr, kerr)
				}
				if nrepo.fetched != tc.fetched || krepo.fetched != tc.fetched {
					t.Errorf("fetched: want %d, notation %d, keyward %d", tc.fetched, nrepo.fetched, krepo.fetched)
				}
				if tc.level == "skip" {
					if krepo.listed != 0 || !res.Skipped {
						t.Errorf("skip level listed %d signatures (skipped %v)", krepo.listed, res.Skipped)
					}
					return
				}
				if n := len(res.Signatures); n != krepo.fetched-btoi(tc.fetchErr >= 0) {
					t.Errorf("%d results for %d signatures fetched", n, krepo.fetched)
				}
				if tc.pass != (res.Verified != nil) {
					t.Errorf("verified signature %v with pass %v", res.Verified, tc.pass)
				}
				var ae *verify.ArtifactError
				if kerr != nil && !errors.As(kerr, &ae) {
					t.Errorf("error %T is not an *ArtifactError", kerr)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFromOCILayout verifies an artifact in an OCI image layout through
// package oci, with a broken signature beside a good one (the layout lists
// them in either order).
func TestFromOCILayout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	layout, dgst := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	ref, err := reference.ParseLayout(layout+"@"+dgst, scope)
	if err != nil {
		t.Fatal(err)
	}
	src := oci.NewLayouts()
	a, err := src.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	leaf := f.inter.Leaf(t, "layout-leaf")
	good := f.sign(t, signSpec{leaf: leaf, desc: &a.Descriptor})
	store, err := orasoci.New(layout)
	if err != nil {
		t.Fatal(err)
	}
	push := func(mediaType string, data []byte) ocispec.Descriptor {
		t.Helper()
		d := content.NewDescriptorFromBytes(mediaType, data)
		if err := store.Push(ctx, d, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	config := push("application/vnd.cncf.notary.signature", []byte("{}"))
	for _, env := range [][]byte{flipSignature(t, mtJWS, good), good} {
		layer := push(mtJWS, env)
		manifest, err := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    config,
			Layers:    []ocispec.Descriptor{layer},
			Subject:   &a.Descriptor,
		})
		if err != nil {
			t.Fatal(err)
		}
		push(ocispec.MediaTypeImageManifest, manifest)
	}

	// A fresh source: a layout is read once per source.
	src = oci.NewLayouts()
	if a, err = src.Resolve(ctx, ref); err != nil {
		t.Fatal(err)
	}
	st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main"}, []string{"*"}, ""))
	res, err := f.keywardVerifier(t).VerifyArtifact(ctx, verify.ArtifactRequest{
		Request:       verify.Request{Statement: st, Artifact: a.Descriptor, Reference: a.Reference.Pinned(a.Descriptor.Digest)},
		MaxSignatures: verify.DefaultMaxSignatures,
	}, verify.FromOCI(src, a))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed || len(res.Signatures) == 0 || res.Verified == nil || res.Verified.Signature == "" {
		t.Fatalf("result %+v", res)
	}
	for _, r := range res.Signatures[:len(res.Signatures)-1] {
		if r.Passed || r.FailedCheck != verify.CheckIntegrity {
			t.Errorf("signature %s: passed %v, failed %q", r.Signature, r.Passed, r.FailedCheck)
		}
	}
}
