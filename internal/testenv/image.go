package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayoutTag is the tag NewOCILayout gives its manifest in index.json.
const LayoutTag = "v1"

// Blob is content with its descriptor.
type Blob struct {
	Desc ocispec.Descriptor
	Data []byte
}

func newBlob(mediaType string, data []byte) Blob {
	return Blob{
		Desc: ocispec.Descriptor{MediaType: mediaType, Digest: godigest.FromBytes(data), Size: int64(len(data))},
		Data: data,
	}
}

// Image is a small OCI image: its blobs (config, layer) and its manifest.
type Image struct {
	Blobs    []Blob
	Manifest Blob
}

// NewImage returns an image whose layer is a tar archive holding one file
// with random content, so that every image has its own digest.
func NewImage(t testing.TB) *Image {
	t.Helper()
	img, err := newImage()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return img
}

func newImage() (*Image, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	content := fmt.Appendf(nil, "keyward test artifact %x\n", nonce)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "artifact.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBlob := newBlob(ocispec.MediaTypeImageLayer, layer.Bytes())

	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []godigest.Digest{layerBlob.Desc.Digest}},
	})
	if err != nil {
		return nil, err
	}
	configBlob := newBlob(ocispec.MediaTypeImageConfig, config)

	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configBlob.Desc,
		Layers:    []ocispec.Descriptor{layerBlob.Desc},
	})
	if err != nil {
		return nil, err
	}
	return &Image{
		Blobs:    []Blob{configBlob, layerBlob},
		Manifest: newBlob(ocispec.MediaTypeImageManifest, manifest),
	}, nil
}

// NewOCILayout writes an OCI image layout at dir (created if needed; it must
// not hold a layout yet): the oci-layout file, blobs/sha256/ with a small
// image (config, one layer, manifest; content unique to this call), and
// index.json listing the manifest tagged "v1" through the
// org.opencontainers.image.ref.name annotation. It returns the layout's
// absolute path and the manifest digest, so that notation can name the
// artifact as layout+"@"+digest or layout+":v1".
func NewOCILayout(t testing.TB, dir string) (layout, digest string) {
	t.Helper()
	layout, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	img, err := newImage()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := writeLayout(layout, img); err != nil {
		t.Fatalf("testenv: writing an OCI layout in %s: %v", layout, err)
	}
	return layout, img.Manifest.Desc.Digest.String()
}

func writeLayout(dir string, img *Image) error {
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageIndexFile)); err == nil {
		return fmt.Errorf("%s already exists", ocispec.ImageIndexFile)
	}
	blobs := filepath.Join(dir, ocispec.ImageBlobsDir, "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	for _, b := range append(img.Blobs, img.Manifest) {
		if err := os.WriteFile(filepath.Join(blobs, b.Desc.Digest.Encoded()), b.Data, 0o644); err != nil {
			return err
		}
	}
	layoutFile, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), layoutFile, 0o644); err != nil {
		return err
	}
	tagged := img.Manifest.Desc
	tagged.Annotations = map[string]string{ocispec.AnnotationRefName: LayoutTag}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{tagged},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), index, 0o644)
}
