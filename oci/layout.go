package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/reference"
)

// Bounds on an OCI image layout (SECURITY.md). Manifests and envelopes have
// the registry bounds MaxManifestSize and MaxEnvelopeSize.
const (
	// MaxLayoutIndexSize bounds a layout's index.json.
	MaxLayoutIndexSize = 16 << 20
	// MaxLayoutManifests bounds the manifests and indexes read from one
	// layout when it is opened.
	MaxLayoutManifests = 1 << 16
	// maxLayoutFileSize bounds the oci-layout file.
	maxLayoutFileSize = 4 << 10
)

// Media types of manifests whose content the layout reader follows (the
// ones oras-go's oci store indexes, which notation reads layouts with).
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeOctetStream        = "application/octet-stream"
)

// Layouts reads artifacts from OCI image layouts on disk, named by
// references parsed with [reference.ParseLayout] (path@sha256:<digest> or
// path:tag, as notation's --oci-layout takes them).
//
// A layout is read as oras-go's oci store reads it for notation (index.json
// and every manifest reachable from it; tags from the
// org.opencontainers.image.ref.name annotation, the last entry winning),
// with bounds: index.json to MaxLayoutIndexSize, manifests to
// MaxManifestSize (checked on the declared size, before anything is
// allocated), at most MaxLayoutManifests of them; only regular files are
// read (a FIFO or device never blocks the reader), and symbolic links may
// not lead out of the layout folder.
type Layouts struct {
	mu      sync.Mutex
	layouts map[string]*layoutEntry
}

var _ Source = (*Layouts)(nil)

type layoutEntry struct {
	once   sync.Once
	layout *layout
	err    error
}

// NewLayouts returns a Source of OCI image layouts.
func NewLayouts() *Layouts {
	return &Layouts{layouts: map[string]*layoutEntry{}}
}

// layout is an opened OCI image layout.
type layout struct {
	root *os.Root
	path string
	// byName resolves tags (full descriptors) and the digests of
	// index.json's entries (plain descriptors).
	byName map[string]ocispec.Descriptor
	// referrers lists, per subject digest, the manifests naming it as
	// their subject, in the order they were found.
	referrers map[digest.Digest][]ocispec.Descriptor
}

func (l *Layouts) open(p string) (*layout, error) {
	l.mu.Lock()
	e, ok := l.layouts[p]
	if !ok {
		e = &layoutEntry{}
		l.layouts[p] = e
	}
	l.mu.Unlock()
	e.once.Do(func() { e.layout, e.err = openLayout(p) })
	return e.layout, e.err
}

// openLayout reads the layout at p: its oci-layout file, its index.json and
// every manifest reachable from it.
func openLayout(p string) (*layout, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %q: %w", p, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("OCI layout %q is not a directory", p)
	}
	root, err := os.OpenRoot(p)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %q: %w", p, err)
	}
	lay := &layout{root: root, path: p, byName: map[string]ocispec.Descriptor{}, referrers: map[digest.Digest][]ocispec.Descriptor{}}
	if err := lay.load(); err != nil {
		root.Close()
		return nil, fmt.Errorf("OCI layout %q cannot be read: %w", p, err)
	}
	return lay, nil
}

// readFile reads a regular file of the layout of at most limit bytes.
func (l *layout) readFile(name string, limit int64) ([]byte, error) {
	f, err := l.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, fi.Size(), limit)
	}
	return bounded.ReadAll(f, limit, name)
}

func (l *layout) load() error {
	raw, err := l.readFile(ocispec.ImageLayoutFile, maxLayoutFileSize)
	if err != nil {
		return fmt.Errorf("invalid OCI Image Layout: %w", err)
	}
	var marker ocispec.ImageLayout
	if err := json.Unmarshal(raw, &marker); err != nil {
		return fmt.Errorf("invalid OCI Image Layout: %s is not JSON: %w", ocispec.ImageLayoutFile, err)
	}
	if marker.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("invalid OCI Image Layout: version %q, not %q", marker.Version, ocispec.ImageLayoutVersion)
	}
	raw, err = l.readFile(ocispec.ImageIndexFile, MaxLayoutIndexSize)
	if err != nil {
		return fmt.Errorf("invalid OCI Image Index: %w", err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(raw, &index); err != nil {
		return fmt.Errorf("invalid OCI Image Index: %s is not JSON: %w", ocispec.ImageIndexFile, err)
	}
	w := &walk{l: l, seen: map[digest.Digest]bool{}}
	for _, d := range index.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return fmt.Errorf("invalid OCI Image Index: descriptor digest %q: %w", d.Digest, err)
		}
		plain := ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
		tagged := d
		if name := d.Annotations[ocispec.AnnotationRefName]; name != "" {
			l.byName[name] = tagged
		}
		l.byName[d.Digest.String()] = plain
		if err := w.visit(plain); err != nil {
			return fmt.Errorf("invalid OCI Image Index: %w", err)
		}
	}
	return nil
}

// walk reads the manifests reachable from index.json once each.
type walk struct {
	l     *layout
	seen  map[digest.Digest]bool
	count int
}

// isManifest reports media types whose content names other content.
func isManifest(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, mediaTypeArtifactManifest,
		mediaTypeDockerManifest, mediaTypeDockerManifestList:
		return true
	}
	return false
}

func (w *walk) visit(d ocispec.Descriptor) error {
	if !isManifest(d.MediaType) || w.seen[d.Digest] {
		return nil
	}
	w.seen[d.Digest] = true
	if w.count++; w.count > MaxLayoutManifests {
		return fmt.Errorf("more than %d manifests", MaxLayoutManifests)
	}
	raw, err := w.l.blob(d, MaxManifestSize)
	if err != nil {
		return err
	}
	var m struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Subject   *ocispec.Descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s is not JSON: %w", d.Digest, err)
	}
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return fmt.Errorf("manifest %s: subject digest %q: %w", d.Digest, m.Subject.Digest, err)
		}
		w.l.referrers[m.Subject.Digest] = append(w.l.referrers[m.Subject.Digest], d)
		if err := w.visit(*m.Subject); err != nil {
			return err
		}
	}
	if d.MediaType == ocispec.MediaTypeImageIndex || d.MediaType == mediaTypeDockerManifestList {
		for _, c := range m.Manifests {
			if err := c.Digest.Validate(); err != nil {
				return fmt.Errorf("index %s: descriptor digest %q: %w", d.Digest, c.Digest, err)
			}
			if err := w.visit(ocispec.Descriptor{MediaType: c.MediaType, Digest: c.Digest, Size: c.Size}); err != nil {
				return err
			}
		}
	}
	return nil
}

// blobPath is blobs/<algorithm>/<encoded> of a valid digest.
func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", d, err)
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

// blob reads the content a descriptor describes, of at most limit bytes:
// the declared size is checked first, then the file's size and type, and
// the digest of what was read.
func (l *layout) blob(d ocispec.Descriptor, limit int64) ([]byte, error) {
	if d.Size < 0 || d.Size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", d.Digest, d.Size, limit)
	}
	name, err := blobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	f, err := l.open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is missing from the layout", d.Digest)
		}
		return nil, err
	}
	defer f.Close()
	return readVerified(f, d, limit)
}

// open opens a regular file of the layout without blocking
// (internal/bounded.OpenRegularIn).
func (l *layout) open(name string) (*os.File, error) {
	f, _, err := bounded.OpenRegularIn(l.root, name)
	switch {
	case errors.Is(err, bounded.ErrNotRegular):
		return nil, fmt.Errorf("%s is not a regular file", name)
	case errors.Is(err, bounded.ErrChanged):
		return nil, fmt.Errorf("%s changed while it was opened", name)
	}
	return f, err
}

// resolve finds a tag or digest as oras-go's oci store does: a tag or an
// index.json digest gives its descriptor; another digest, the blob as
// application/octet-stream.
func (l *layout) resolve(object string) (ocispec.Descriptor, error) {
	if d, ok := l.byName[object]; ok {
		return d, nil
	}
	d, err := digest.Parse(object)
	if err != nil {
		return ocispec.Descriptor{}, fs.ErrNotExist
	}
	name, err := blobPath(d)
	if err != nil {
		return ocispec.Descriptor{}, fs.ErrNotExist
	}
	fi, err := l.root.Stat(name)
	if err != nil || !fi.Mode().IsRegular() {
		return ocispec.Descriptor{}, fs.ErrNotExist
	}
	return ocispec.Descriptor{MediaType: mediaTypeOctetStream, Digest: d, Size: fi.Size()}, nil
}

// Resolve resolves path@digest or path:tag in its layout.
func (l *Layouts) Resolve(ctx context.Context, ref reference.Reference) (Artifact, error) {
	if !ref.IsLayout() {
		return Artifact{}, fmt.Errorf("reference %q does not name an OCI layout", ref.Raw)
	}
	lay, err := l.open(ref.Path)
	if err != nil {
		return Artifact{}, err
	}
	object := ref.Object()
	desc, err := lay.resolve(object)
	if err != nil {
		return Artifact{}, fmt.Errorf("%s not found in OCI layout %q", object, ref.Path)
	}
	return Artifact{Reference: ref, Descriptor: desc}, nil
}

// Signatures lists the manifests in the layout whose subject is the
// artifact and which are Notary Project signatures (notation-go reads
// layouts the same way: an oci store has no referrers API).
func (l *Layouts) Signatures(ctx context.Context, a Artifact, fn func(ocispec.Descriptor) error) error {
	lay, err := l.open(a.Reference.Path)
	if err != nil {
		return err
	}
	for _, p := range lay.referrers[a.Descriptor.Digest] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.MediaType != ocispec.MediaTypeImageManifest && p.MediaType != mediaTypeArtifactManifest {
			continue
		}
		raw, err := lay.blob(p, MaxManifestSize)
		if err != nil {
			return fmt.Errorf("read manifest %s in OCI layout %q: %w", p.Digest, lay.path, err)
		}
		if !isLayoutSignature(raw, p, a.Descriptor) {
			continue // another kind of referrer
		}
		if _, _, err := readManifest(raw, p, a.Descriptor); err != nil {
			continue
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

// isLayoutSignature reports whether a manifest in a layout is a signature
// of subject as notation-go v1.3.2 finds them where there is no referrers
// API (registry/repository.go signatureReferrers): an image manifest counts
// by its config media type (form B, the form notation v1.3.2 writes; form A
// with artifactType and the empty config is not seen), an artifact
// manifest by its artifactType, and the subject must equal the artifact's
// descriptor (media type, digest and size).
func isLayoutSignature(raw []byte, desc, subject ocispec.Descriptor) bool {
	var m struct {
		ArtifactType string              `json:"artifactType"`
		Config       ocispec.Descriptor  `json:"config"`
		Subject      *ocispec.Descriptor `json:"subject"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Subject == nil {
		return false
	}
	s := m.Subject
	if s.MediaType != subject.MediaType || s.Digest != subject.Digest || s.Size != subject.Size {
		return false
	}
	if desc.MediaType == mediaTypeArtifactManifest {
		return m.ArtifactType == ArtifactTypeSignature
	}
	return m.Config.MediaType == ArtifactTypeSignature
}

// Fetch reads a signature manifest and its envelope from the layout.
func (l *Layouts) Fetch(ctx context.Context, a Artifact, manifest ocispec.Descriptor) (*Signature, error) {
	lay, err := l.open(a.Reference.Path)
	if err != nil {
		return nil, err
	}
	raw, err := lay.blob(manifest, MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("signature manifest: %w", err)
	}
	env, annotations, err := readManifest(raw, manifest, a.Descriptor)
	if err != nil {
		return nil, err
	}
	data, err := lay.blob(env, MaxEnvelopeSize)
	if err != nil {
		return nil, fmt.Errorf("signature envelope: %w", err)
	}
	return &Signature{Manifest: manifest, MediaType: env.MediaType, Envelope: data, Annotations: annotations}, nil
}

// Tags lists the tags of the layout a reference names (the
// org.opencontainers.image.ref.name annotations of index.json), calling fn
// once with all of them, sorted.
func (l *Layouts) Tags(ctx context.Context, ref reference.Reference, fn func([]string) error) error {
	lay, err := l.open(ref.Path)
	if err != nil {
		return err
	}
	var tags []string
	for name := range lay.byName {
		if _, err := digest.Parse(name); err != nil {
			tags = append(tags, name)
		}
	}
	slices.Sort(tags)
	return fn(tags)
}

// Referrers lists every manifest of the layout whose subject is the
// artifact, whatever its artifact type, calling fn once with all of them.
func (l *Layouts) Referrers(ctx context.Context, a Artifact, fn func([]ocispec.Descriptor) error) error {
	lay, err := l.open(a.Reference.Path)
	if err != nil {
		return err
	}
	var out []ocispec.Descriptor
	for _, p := range lay.referrers[a.Descriptor.Digest] {
		raw, err := lay.blob(p, MaxManifestSize)
		if err != nil {
			return fmt.Errorf("read manifest %s in OCI layout %q: %w", p.Digest, lay.path, err)
		}
		// A referrers list carries artifactType and annotations (OCI
		// distribution-spec, "Listing Referrers"), the layout's
		// descriptors do not: take them from the manifest.
		var m struct {
			ArtifactType string             `json:"artifactType"`
			Config       ocispec.Descriptor `json:"config"`
			Annotations  map[string]string  `json:"annotations"`
		}
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		d := p
		d.ArtifactType = m.ArtifactType
		if d.ArtifactType == "" {
			d.ArtifactType = m.Config.MediaType
		}
		d.Annotations = m.Annotations
		out = append(out, d)
	}
	return fn(out)
}

// FetchManifest reads a manifest of the layout a reference names, at most
// MaxManifestSize bytes, digest-checked.
func (l *Layouts) FetchManifest(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) ([]byte, error) {
	return l.FetchBlob(ctx, ref, desc, MaxManifestSize)
}

// FetchBlob reads a blob of the layout a reference names, at most limit
// bytes, digest-checked.
func (l *Layouts) FetchBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	lay, err := l.open(ref.Path)
	if err != nil {
		return nil, err
	}
	return lay.blob(desc, limit)
}

// Exists reports whether the layout a reference names holds the blob of
// desc's digest.
func (l *Layouts) Exists(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) (bool, error) {
	lay, err := l.open(ref.Path)
	if err != nil {
		return false, err
	}
	_, err = lay.resolve(desc.Digest.String())
	return err == nil, nil
}
