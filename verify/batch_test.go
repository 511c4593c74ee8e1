package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	keyward "github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// resultSchema compiles verify-result.schema.json, which every
// ReferenceResult must satisfy once encoded.
func resultSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("verify-result.schema.json", bytes.NewReader(keyward.VerifyResultSchema())); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("verify-result.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSchema encodes r as keyward verify --output json does and validates
// it against the published schema.
func checkSchema(t *testing.T, s *jsonschema.Schema, r *verify.ReferenceResult) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(v); err != nil {
		t.Fatalf("result does not match verify-result.schema.json: %v\n%s", err, b)
	}
}

// pushSignature stores an envelope as a signature manifest whose subject
// is the artifact, in the form notation v1.3.2 writes (config media type
// application/vnd.cncf.notary.signature).
func pushSignature(t testing.TB, ctx context.Context, target oras.Target, artifact ocispec.Descriptor, mediaType string, envelope []byte) ocispec.Descriptor {
	t.Helper()
	push := func(mediaType string, data []byte) ocispec.Descriptor {
		d := content.NewDescriptorFromBytes(mediaType, data)
		if exists, err := target.Exists(ctx, d); err != nil || !exists {
			if err := target.Push(ctx, d, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	layer := push(mediaType, envelope)
	config := push(oci.ArtifactTypeSignature, []byte("{}"))
	d, err := oras.PackManifest(ctx, target, oras.PackManifestVersion1_1, "",
		oras.PackManifestOptions{Subject: &artifact, Layers: []ocispec.Descriptor{layer}, ConfigDescriptor: &config})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// collect runs VerifyAll and returns the results by reference, each checked
// against the schema.
func collect(t *testing.T, b *verify.Batch, refs []string, parse verify.Parser, concurrency int) (map[string]*verify.ReferenceResult, int) {
	t.Helper()
	s := resultSchema(t)
	got := map[string]*verify.ReferenceResult{}
	var mu sync.Mutex
	failed := b.VerifyAll(context.Background(), refs, parse, concurrency, func(r *verify.ReferenceResult) {
		mu.Lock()
		defer mu.Unlock()
		checkSchema(t, s, r)
		got[r.Reference] = r
	})
	if len(got) != len(refs) {
		t.Fatalf("%d results for %d references", len(got), len(refs))
	}
	return got, failed
}

// TestBatchLayout verifies references in an OCI image layout through the
// library call: by digest and by tag (reported), a broken signature before
// a good one, a malformed reference, an unknown tag, and a statement that
// does not apply; every result matches the published schema.
func TestBatchLayout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	layout, dgst := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	store, err := orasoci.New(layout)
	if err != nil {
		t.Fatal(err)
	}
	artifact, err := store.Resolve(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	good := f.sign(t, signSpec{leaf: f.inter.Leaf(t, "batch-leaf"), desc: &artifact})
	pushSignature(t, ctx, store, artifact, mtJWS, flipSignature(t, mtJWS, good))
	pushSignature(t, ctx, store, artifact, mtJWS, good)
	if err := store.SaveIndex(); err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Parse(policyDocument(variant{level: "strict"}, []string{"ca:main"}, []string{"*"}, ""), "p.json", policy.TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	b := &verify.Batch{Policy: doc, Verifier: f.keywardVerifier(t), Source: oci.NewLayouts()}
	byDigest, byTag := layout+"@"+dgst, layout+":"+testenv.LayoutTag
	refs := []string{byDigest, byTag, layout, layout + ":nosuchtag"}
	got, failed := collect(t, b, refs, func(s string) (reference.Reference, error) { return reference.ParseLayout(s, scope) }, 4)
	if failed != 2 {
		t.Errorf("failed = %d, want 2", failed)
	}
	for _, ref := range []string{byDigest, byTag} {
		r := got[ref]
		// The layout lists the two signatures in either order (oras-go
		// writes index.json from a map); evaluation stops at the good one.
		n := len(r.Signatures)
		if !r.Verified || r.Error != nil || r.Scope != scope || r.Statement != "test-statement" || r.Artifact == nil || r.Artifact.Digest.String() != dgst ||
			n < 1 || n > 2 || !r.Signatures[n-1].Passed || n == 2 && r.Signatures[0].Passed {
			t.Errorf("%s: %+v", ref, r)
		}
	}
	if got[byTag].Tag != testenv.LayoutTag || got[byDigest].Tag != "" {
		t.Errorf("tags: %q %q", got[byTag].Tag, got[byDigest].Tag)
	}
	if r := got[layout]; r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorResolve || !strings.Contains(r.Error.Message, "names no tag or digest") {
		t.Errorf("malformed: %+v", r.Error)
	}
	if r := got[layout+":nosuchtag"]; r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorResolve || !strings.Contains(r.Error.Message, "not found") {
		t.Errorf("unknown tag: %+v", r.Error)
	}

	// A scope no statement lists fails before anything is read.
	other, err := reference.ParseLayout("/nonexistent@"+dgst, "local/other")
	if err != nil {
		t.Fatal(err)
	}
	if r := b.Verify(ctx, other); r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorPolicy || !strings.Contains(r.Error.Message, "has no applicable trust policy statement") {
		t.Errorf("no statement: %+v", r.Error)
	}
}

// TestBatchRegistries verifies through the library call against registry
// processes, with the referrers API (olareg) and with the referrers tag
// schema (distribution): signed, unsigned, a skip statement that reads
// nothing, and a repository that does not exist.
func TestBatchRegistries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var signed []string
	regs := []*testenv.Registry{testenv.StartOlareg(t), testenv.StartDistribution(t)}
	for _, reg := range regs {
		ref, artifact := testenv.PushArtifact(t, reg, "team/app")
		repo, err := remote.NewRepository(reg.Host + "/team/app")
		if err != nil {
			t.Fatal(err)
		}
		repo.PlainHTTP = true
		pushSignature(t, ctx, repo, artifact, mtCOSE, f.sign(t, signSpec{mediaType: mtCOSE, leaf: f.inter.Leaf(t, "batch-registry-leaf"), desc: &artifact}))
		signed = append(signed, ref)
	}
	unsigned, _ := testenv.PushArtifact(t, regs[1], "team/app")
	skipped := regs[0].Host + "/team/skipped@" + digest.FromString("never fetched").String()
	missing := regs[1].Host + "/team/nothing:v1"
	doc, err := policy.Parse([]byte(`{"version":"1.0","trustPolicies":[
		{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:main"],"trustedIdentities":["*"]},
		{"name":"skipped","registryScopes":["`+regs[0].Host+`/team/skipped"],"signatureVerification":{"level":"skip"}}]}`), "p.json", policy.TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	b := &verify.Batch{Policy: doc, Verifier: f.keywardVerifier(t), MaxSignatures: 10,
		Source: oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})}
	refs := append(append([]string{}, signed...), unsigned, skipped, missing, "not a reference")
	got, failed := collect(t, b, refs, reference.Parse, 3)
	if failed != 3 {
		t.Errorf("failed = %d, want 3", failed)
	}
	for _, ref := range signed {
		if r := got[ref]; !r.Verified || len(r.Signatures) != 1 || !r.Signatures[0].Passed || r.Signatures[0].MediaType != mtCOSE {
			t.Errorf("%s: %+v", ref, r)
		}
	}
	if r := got[unsigned]; r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorNoSignature {
		t.Errorf("unsigned: %+v", r.Error)
	}
	if r := got[skipped]; !r.Verified || !r.Skipped || r.Artifact != nil || r.Statement != "skipped" {
		t.Errorf("skipped: %+v", r)
	}
	if r := got[missing]; r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorResolve || !strings.Contains(r.Error.Message, "not found") {
		t.Errorf("missing: %+v", r.Error)
	}
	if r := got["not a reference"]; r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorResolve || r.Scope != "" {
		t.Errorf("malformed: %+v", r)
	}
}
