// Package oci finds the Notary Project signatures of an artifact and fetches
// their envelopes, from a remote registry or from an OCI image layout on
// disk, the way notation v1.3.2 does (spec-digest §3).
//
// A signature is an OCI image manifest whose subject is the signed artifact
// and whose single layer is the envelope (application/jose+json or
// application/cose). Two manifest forms exist and both are read: form A with
// artifactType application/vnd.cncf.notary.signature and the empty config,
// written by notation-go after v1.3; form B without artifactType and with
// config media type application/vnd.cncf.notary.signature, written by
// notation v1.1–v1.3.2.
//
// Discovery on a registry uses the OCI 1.1 referrers API filtered by
// artifactType, and falls back to the referrers tag schema (the tag
// sha256-<hex> naming an index) when the registry does not serve the API.
// Everything read is size-bounded: a signature manifest to 4 MiB, an
// envelope to 32 MiB, the number of signatures by the caller.
//
// A [Remote] is meant to be shared by every reference of a run: it reuses
// connections, keeps one repository client (and its referrers capability
// and auth tokens) per repository, and caches resolved tags and fetched
// signatures so that no request is made twice.
package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/reference"
)

// Media types of the Notary Project signature specification.
const (
	// ArtifactTypeSignature marks signature manifests (form A) and is the
	// config media type of form B.
	ArtifactTypeSignature = "application/vnd.cncf.notary.signature"
	// MediaTypeJWS is the media type of JWS envelopes.
	MediaTypeJWS = "application/jose+json"
	// MediaTypeCOSE is the media type of COSE envelopes.
	MediaTypeCOSE = "application/cose"
	// mediaTypeArtifactManifest is the withdrawn OCI artifact manifest that
	// notation-go still reads.
	mediaTypeArtifactManifest = "application/vnd.oci.artifact.manifest.v1+json"
)

// Size limits, as notation-go's registry package.
const (
	// MaxManifestSize bounds a signature manifest.
	MaxManifestSize = 4 << 20
	// MaxEnvelopeSize bounds a signature envelope.
	MaxEnvelopeSize = 32 << 20
)

// Artifact is a resolved reference.
type Artifact struct {
	// Reference is the parsed reference; its Tag, if any, was resolved to
	// Descriptor.
	Reference reference.Reference
	// Descriptor describes the artifact's manifest.
	Descriptor ocispec.Descriptor
}

// Signature is one signature of an artifact.
type Signature struct {
	// Manifest describes the signature manifest.
	Manifest ocispec.Descriptor
	// MediaType is the envelope media type, from the manifest's layer.
	MediaType string
	// Envelope is the envelope, fetched and digest-checked.
	Envelope []byte
	// Annotations are the signature manifest's annotations.
	Annotations map[string]string

	release func()
}

// Release tells the source that the envelope has been judged, so that the
// bytes it holds count no more against its bound on envelopes in flight.
// It may be called more than once; the Signature must not be used after.
func (s *Signature) Release() {
	if s != nil && s.release != nil {
		s.release()
	}
}

// Source is where artifacts and their signatures live.
type Source interface {
	// Resolve resolves a reference to the artifact's descriptor.
	Resolve(ctx context.Context, ref reference.Reference) (Artifact, error)
	// Signatures calls fn with the descriptor of each signature manifest of
	// the artifact, in the order the registry lists them, until fn returns
	// an error (ErrStop ends the listing without error).
	Signatures(ctx context.Context, a Artifact, fn func(ocispec.Descriptor) error) error
	// Fetch fetches and checks a signature manifest and its envelope. The
	// caller calls Release on the Signature once it has judged it.
	Fetch(ctx context.Context, a Artifact, manifest ocispec.Descriptor) (*Signature, error)
}

// ErrStop is returned by a Signatures callback to end the listing early.
var ErrStop = errors.New("stop listing signatures")

// isSignatureManifest reports whether a referrer descriptor announces a
// Notary Project signature; registries set artifactType from the manifest's
// artifactType or, for form B, from its config media type.
func isSignatureManifest(d ocispec.Descriptor) bool {
	return d.ArtifactType == ArtifactTypeSignature
}

// readManifest decodes a signature manifest and returns its envelope layer,
// enforcing the rules of notation-go's getSignatureBlobDesc and the
// signature specification: an image manifest (or the legacy artifact
// manifest) of one of the two forms, whose subject is the artifact, with
// exactly one JWS or COSE layer.
func readManifest(raw []byte, desc ocispec.Descriptor, subject ocispec.Descriptor) (ocispec.Descriptor, map[string]string, error) {
	var m struct {
		MediaType    string               `json:"mediaType"`
		ArtifactType string               `json:"artifactType"`
		Config       ocispec.Descriptor   `json:"config"`
		Layers       []ocispec.Descriptor `json:"layers"`
		Blobs        []ocispec.Descriptor `json:"blobs"`
		Subject      *ocispec.Descriptor  `json:"subject"`
		Annotations  map[string]string    `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("signature manifest %s is not JSON: %w", desc.Digest, err)
	}
	mediaType := m.MediaType
	if mediaType == "" {
		mediaType = desc.MediaType
	}
	var blobs []ocispec.Descriptor
	switch mediaType {
	case ocispec.MediaTypeImageManifest:
		formA := m.ArtifactType == ArtifactTypeSignature && m.Config.MediaType == ocispec.MediaTypeEmptyJSON
		formB := m.ArtifactType == "" && m.Config.MediaType == ArtifactTypeSignature
		if !formA && !formB {
			return ocispec.Descriptor{}, nil, fmt.Errorf("signature manifest %s is neither form of a Notary Project signature (artifactType %q, config media type %q)",
				desc.Digest, m.ArtifactType, m.Config.MediaType)
		}
		blobs = m.Layers
	case mediaTypeArtifactManifest:
		if m.ArtifactType != ArtifactTypeSignature {
			return ocispec.Descriptor{}, nil, fmt.Errorf("artifact manifest %s has artifactType %q, not %q", desc.Digest, m.ArtifactType, ArtifactTypeSignature)
		}
		blobs = m.Blobs
	default:
		return ocispec.Descriptor{}, nil, fmt.Errorf("signature manifest %s has media type %q, not an OCI image manifest", desc.Digest, mediaType)
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("signature manifest %s does not name the artifact %s as its subject", desc.Digest, subject.Digest)
	}
	if len(blobs) != 1 {
		return ocispec.Descriptor{}, nil, fmt.Errorf("signature manifest %s requires exactly one signature envelope blob, got %d", desc.Digest, len(blobs))
	}
	env := blobs[0]
	if env.MediaType != MediaTypeJWS && env.MediaType != MediaTypeCOSE {
		return ocispec.Descriptor{}, nil, fmt.Errorf("signature envelope of manifest %s has media type %q, not %s or %s", desc.Digest, env.MediaType, MediaTypeJWS, MediaTypeCOSE)
	}
	if env.Size < 0 || env.Size > MaxEnvelopeSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("signature envelope of manifest %s is %d bytes, more than the %d allowed", desc.Digest, env.Size, MaxEnvelopeSize)
	}
	return env, m.Annotations, nil
}

// readVerified reads exactly desc.Size bytes (at most limit) and checks
// their digest; a declared size over the limit fails before anything is
// read.
func readVerified(r io.Reader, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size < 0 || desc.Size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", desc.Digest, desc.Size, limit)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	data, err := bounded.ReadExactly(r, desc.Size, limit, desc.Digest.String())
	if err != nil {
		var sm *bounded.SizeMismatchError
		if errors.As(err, &sm) {
			return nil, fmt.Errorf("%s: got %d bytes, the descriptor says %d", desc.Digest, sm.Got, desc.Size)
		}
		return nil, fmt.Errorf("read %s: %w", desc.Digest, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return nil, fmt.Errorf("%s: content has digest %s", desc.Digest, got)
	}
	return data, nil
}
