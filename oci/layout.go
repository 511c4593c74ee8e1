package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"

	"github.com/keyward/keyward/reference"
)

// Layouts reads artifacts from OCI image layouts on disk, named by
// references parsed with [reference.ParseLayout] (path@sha256:<digest> or
// path:tag, as notation's --oci-layout takes them).
type Layouts struct {
	mu     sync.Mutex
	stores map[string]*layoutStore
}

var _ Source = (*Layouts)(nil)

type layoutStore struct {
	once  sync.Once
	store *oci.ReadOnlyStore
	err   error
}

// NewLayouts returns a Source of OCI image layouts.
func NewLayouts() *Layouts {
	return &Layouts{stores: map[string]*layoutStore{}}
}

func (l *Layouts) store(ctx context.Context, path string) (*oci.ReadOnlyStore, error) {
	l.mu.Lock()
	s, ok := l.stores[path]
	if !ok {
		s = &layoutStore{}
		l.stores[path] = s
	}
	l.mu.Unlock()
	s.once.Do(func() {
		fi, err := os.Stat(path)
		if err != nil {
			s.err = fmt.Errorf("OCI layout %q: %w", path, err)
			return
		}
		if !fi.IsDir() {
			s.err = fmt.Errorf("OCI layout %q is not a directory", path)
			return
		}
		s.store, s.err = oci.NewFromFS(ctx, os.DirFS(path))
		if s.err != nil {
			s.err = fmt.Errorf("OCI layout %q cannot be read: %w", path, s.err)
		}
	})
	return s.store, s.err
}

// Resolve resolves path@digest or path:tag in its layout.
func (l *Layouts) Resolve(ctx context.Context, ref reference.Reference) (Artifact, error) {
	if !ref.IsLayout() {
		return Artifact{}, fmt.Errorf("reference %q does not name an OCI layout", ref.Raw)
	}
	path := ref.Path
	store, err := l.store(ctx, path)
	if err != nil {
		return Artifact{}, err
	}
	object := ref.Object()
	desc, err := store.Resolve(ctx, object)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return Artifact{}, fmt.Errorf("%s not found in OCI layout %q", object, path)
		}
		return Artifact{}, fmt.Errorf("resolve %s in OCI layout %q: %w", object, path, err)
	}
	return Artifact{Reference: ref, Descriptor: desc}, nil
}

// Signatures lists the manifests in the layout whose subject is the
// artifact and which are Notary Project signatures (notation-go reads
// layouts the same way: oci.Store has no referrers API).
func (l *Layouts) Signatures(ctx context.Context, a Artifact, fn func(ocispec.Descriptor) error) error {
	path := a.Reference.Path
	store, err := l.store(ctx, path)
	if err != nil {
		return err
	}
	preds, err := store.Predecessors(ctx, a.Descriptor)
	if err != nil {
		return fmt.Errorf("list the signatures of %s in OCI layout %q: %w", a.Descriptor.Digest, path, err)
	}
	for _, p := range preds {
		if p.MediaType != ocispec.MediaTypeImageManifest && p.MediaType != mediaTypeArtifactManifest {
			continue
		}
		if p.Size > MaxManifestSize {
			continue
		}
		raw, err := fetchAll(ctx, store, p, MaxManifestSize)
		if err != nil {
			return fmt.Errorf("read manifest %s in OCI layout %q: %w", p.Digest, path, err)
		}
		if _, _, err := readManifest(raw, p, a.Descriptor); err != nil {
			continue // another kind of referrer
		}
		if err := fn(p); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Fetch reads a signature manifest and its envelope from the layout.
func (l *Layouts) Fetch(ctx context.Context, a Artifact, manifest ocispec.Descriptor) (*Signature, error) {
	path := a.Reference.Path
	store, err := l.store(ctx, path)
	if err != nil {
		return nil, err
	}
	raw, err := fetchAll(ctx, store, manifest, MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("signature manifest: %w", err)
	}
	env, annotations, err := readManifest(raw, manifest, a.Descriptor)
	if err != nil {
		return nil, err
	}
	data, err := fetchAll(ctx, store, env, MaxEnvelopeSize)
	if err != nil {
		return nil, fmt.Errorf("signature envelope: %w", err)
	}
	return &Signature{Manifest: manifest, MediaType: env.MediaType, Envelope: data, Annotations: annotations}, nil
}

func fetchAll(ctx context.Context, store *oci.ReadOnlyStore, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	rc, err := store.Fetch(ctx, desc)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is missing from the layout", desc.Digest)
		}
		return nil, err
	}
	defer rc.Close()
	return readVerified(rc, desc, limit)
}
