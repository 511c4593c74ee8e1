package oci

import (
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
