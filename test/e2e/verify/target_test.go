package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/keyward/keyward/internal/testenv"
)

// layoutScope is the registry scope OCI layouts are verified under
// (notation verify --oci-layout --scope, keyward verify --scope).
const layoutScope = "local/corpus"

// Notary Project media types (signature specification).
const (
	mediaTypeJWS       = "application/jose+json"
	mediaTypeCOSE      = "application/cose"
	mediaTypeSignature = "application/vnd.cncf.notary.signature"
	mediaTypePayload   = "application/vnd.cncf.notary.payload.v1+json"
	annotationThumbs   = "io.cncf.notary.x509chain.thumbprint#S256"
)

// target is where artifacts live: an OCI image layout on disk (one layout a
// case), or a registry process on 127.0.0.1 with or without the OCI 1.1
// referrers API.
type target struct {
	name string
	reg  *testenv.Registry // nil for layouts
	dir  string            // parent folder of the layouts
}

func layoutTarget(t *testing.T) *target {
	return &target{name: "layout", dir: t.TempDir()}
}

func registryTarget(name string, reg *testenv.Registry) *target {
	return &target{name: name, reg: reg}
}

// artifact is an unsigned image in a target, and the place its signatures
// are pushed to.
type artifact struct {
	ref   string // reference notation and keyward verify: layout@digest or host/repo@digest
	desc  ocispec.Descriptor
	img   *testenv.Image
	store oras.Target
}

// push uploads img to dst.
func push(ctx context.Context, img *testenv.Image, dst oras.Target) error {
	for _, b := range append(append([]testenv.Blob(nil), img.Blobs...), img.Manifest) {
		if err := dst.Push(ctx, b.Desc, bytes.NewReader(b.Data)); err != nil {
			return fmt.Errorf("push %s: %w", b.Desc.Digest, err)
		}
	}
	return nil
}

// repository returns a client of repo in the target's registry.
func (tg *target) repository(t testing.TB, repo string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(tg.reg.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	if tg.reg.Referrers {
		// olareg indexes a manifest's subject itself: never write the
		// referrers tag there, as notation --force-referrers-tag=false
		// does not either.
		if err := r.SetReferrersCapability(true); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// newArtifact pushes a fresh image for case name: into its own layout, or
// into the repository corpus/<name>.
func (tg *target) newArtifact(t testing.TB, name string) *artifact {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img := testenv.NewImage(t)
	a := &artifact{img: img, desc: img.Manifest.Desc}
	if tg.reg == nil {
		path := filepath.Join(tg.dir, name)
		store, err := oci.NewWithContext(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		a.store, a.ref = store, path+"@"+a.desc.Digest.String()
	} else {
		repo := "corpus/" + name
		a.store, a.ref = tg.repository(t, repo), tg.reg.Host+"/"+repo+"@"+a.desc.Digest.String()
	}
	if err := push(ctx, img, a.store); err != nil {
		t.Fatalf("%s: %v", tg.name, err)
	}
	return a
}

// signArgs are the notation sign flags that reach the target.
func (tg *target) signArgs() []string {
	switch {
	case tg.reg == nil:
		return []string{"--oci-layout"}
	case tg.reg.Referrers:
		return []string{"--insecure-registry", "--force-referrers-tag=false"}
	}
	return []string{"--insecure-registry"}
}

// notationVerifyArgs are the notation verify flags that reach the target.
func (tg *target) notationVerifyArgs() []string {
	if tg.reg == nil {
		return []string{"--oci-layout", "--scope", layoutScope}
	}
	return []string{"--insecure-registry"}
}

// keywardArgs are the keyward verify flags that reach the target.
func (tg *target) keywardArgs() []string {
	if tg.reg == nil {
		return []string{"--oci-layout", "--scope", layoutScope}
	}
	return []string{"--insecure-registry", tg.reg.Host}
}

// attach pushes a signature manifest for envelope onto the artifact, as
// notation-go v1.3.2 packs one (signature specification, form B: config
// media type application/vnd.cncf.notary.signature, one envelope layer,
// the subject, and the chain thumbprints); on a registry without the
// referrers API oras-go updates the sha256-<hex> referrers tag.
func attach(t testing.TB, a *artifact, mediaType string, envelope []byte, chain [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	envDesc, err := oras.PushBytes(ctx, a.store, mediaType, envelope)
	if err != nil {
		t.Fatalf("push envelope: %v", err)
	}
	config := content.NewDescriptorFromBytes(mediaTypeSignature, []byte("{}"))
	if err := a.store.Push(ctx, config, bytes.NewReader([]byte("{}"))); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Fatalf("push config: %v", err)
	}
	var thumbs []string
	for _, der := range chain {
		sum := sha256.Sum256(der)
		thumbs = append(thumbs, hex.EncodeToString(sum[:]))
	}
	thumbJSON, _ := json.Marshal(thumbs)
	subject := a.desc
	if _, err := oras.PackManifest(ctx, a.store, oras.PackManifestVersion1_1, "", oras.PackManifestOptions{
		Subject:             &subject,
		Layers:              []ocispec.Descriptor{envDesc},
		ConfigDescriptor:    &config,
		ManifestAnnotations: map[string]string{annotationThumbs: string(thumbJSON), ocispec.AnnotationCreated: time.Now().UTC().Format(time.RFC3339)},
	}); err != nil {
		t.Fatalf("push signature manifest: %v", err)
	}
}

// readSignature returns the one signature envelope of the image in an OCI
// layout that notation signed.
func readSignature(t testing.TB, layout string, subject ocispec.Descriptor) (mediaType string, envelope []byte) {
	t.Helper()
	ctx := context.Background()
	store, err := oci.NewWithContext(ctx, layout)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := registry.Referrers(ctx, store, subject, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 {
		t.Fatalf("layout %s: %d referrers of %s, want the one notation signed", layout, len(refs), subject.Digest)
	}
	raw, err := content.FetchAll(ctx, store, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("signature manifest has %d layers", len(m.Layers))
	}
	env, err := content.FetchAll(ctx, store, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].MediaType, env
}

// ociStore opens (or creates) an OCI image layout.
func ociStore(ctx context.Context, path string) (*oci.Store, error) {
	return oci.NewWithContext(ctx, path)
}
