package oci

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzReadManifest feeds arbitrary signature manifests, as a registry or a
// layout could serve them: reading never panics, and whatever it accepts is
// one JWS or COSE layer within the size bound, of a manifest naming the
// artifact.
func FuzzReadManifest(f *testing.F) {
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("artifact"), Size: 10}
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.cncf.notary.signature","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/jose+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":100}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + subject.Digest.String() + `","size":10}}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.notary.signature"},"layers":[{"mediaType":"application/cose","size":-1}],"subject":{"digest":"` + subject.Digest.String() + `"}}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"application/vnd.cncf.notary.signature","blobs":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		env, _, err := readManifest(raw, desc, subject)
		if err != nil {
			return
		}
		if env.MediaType != MediaTypeJWS && env.MediaType != MediaTypeCOSE {
			t.Fatalf("accepted an envelope of media type %q", env.MediaType)
		}
		if env.Size < 0 || env.Size > MaxEnvelopeSize {
			t.Fatalf("accepted an envelope of %d bytes", env.Size)
		}
	})
}

// FuzzLayout opens OCI image layouts whose index.json and one manifest blob
// are arbitrary, as a hostile layout author writes them: opening never
// panics, and what it resolves comes from index.json.
func FuzzLayout(f *testing.F) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}`)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+digest.FromBytes(manifest).String()+`","size":`+strconv.Itoa(len(manifest))+`,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}`), manifest)
	f.Add([]byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:../../etc","size":549755813888}]}`), []byte(`{}`))
	f.Add([]byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"`+digest.FromBytes(manifest).String()+`","size":-1}]}`), manifest)
	f.Add([]byte(`[]`), []byte(`null`))
	f.Fuzz(func(t *testing.T, index, blob []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name string, data []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
		write("index.json", index)
		write(filepath.Join("blobs", "sha256", digest.FromBytes(blob).Encoded()), blob)
		lay, err := openLayout(dir)
		if err != nil {
			return
		}
		defer lay.root.Close()
		for name, d := range lay.byName {
			if d.Digest.Validate() != nil {
				t.Fatalf("%q resolves to an invalid digest %q", name, d.Digest)
			}
		}
		for subject, ms := range lay.referrers {
			for _, m := range ms {
				if m.Size < 0 || m.Size > MaxManifestSize {
					t.Fatalf("referrer %s of %s has size %d", m.Digest, subject, m.Size)
				}
			}
		}
	})
}

// FuzzNextPage parses Link headers as a registry sends them: never a
// panic, and a next page is always an absolute URL.
func FuzzNextPage(f *testing.F) {
	for _, s := range []string{`</v2/app/referrers/sha256:1?n=2>; rel="next"`, `<https://evil.example/x>; rel="next"`, `<>`, `<<<>>>`, `>`, ``} {
		f.Add(s)
	}
	base, _ := url.Parse("http://127.0.0.1:5000/v2/app/referrers/sha256:1")
	f.Fuzz(func(t *testing.T, link string) {
		next := nextPage(base, link)
		if next == "" {
			return
		}
		u, err := url.Parse(next)
		if err != nil || !u.IsAbs() {
			t.Fatalf("nextPage(%q) = %q", link, next)
		}
	})
}
