package scan

import (
	"context"
	"errors"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// knownSource is the oci.Source verify.Batch reads one artifact through
// during a scan: the artifact is already resolved (its manifest fetched
// and digest-checked) and its referrers already listed, so resolving it
// and listing its Notary Project signatures cost no request; fetching a
// signature goes to the Store, which keeps what the scan fetched. The
// signatures are those the Store's listing would give, in the same order:
// the referrers whose artifactType is the Notary Project signature's
// (oci.Remote.Signatures keeps the same).
type knownSource struct {
	Store
	artifact   oci.Artifact
	signatures []ocispec.Descriptor
	// complete: signatures is the whole listing; else the Store lists.
	complete bool
	// f fetches the artifact's signatures within its byte cap.
	f *fetcher
}

// Fetch fetches a signature of the artifact within the scan's byte cap.
func (k *knownSource) Fetch(ctx context.Context, a oci.Artifact, manifest ocispec.Descriptor) (*oci.Signature, error) {
	if a.Descriptor.Digest != k.artifact.Descriptor.Digest {
		return k.Store.Fetch(ctx, a, manifest)
	}
	return k.f.signature(ctx, a, manifest)
}

func (k *knownSource) Resolve(ctx context.Context, ref reference.Reference) (oci.Artifact, error) {
	if ref.Digest == k.artifact.Descriptor.Digest && ref.Scope == k.artifact.Reference.Scope {
		return oci.Artifact{Reference: ref, Descriptor: k.artifact.Descriptor}, nil
	}
	return k.Store.Resolve(ctx, ref)
}

func (k *knownSource) Signatures(ctx context.Context, a oci.Artifact, fn func(ocispec.Descriptor) error) error {
	if a.Descriptor.Digest != k.artifact.Descriptor.Digest || !k.complete {
		return k.Store.Signatures(ctx, a, fn)
	}
	for _, d := range k.signatures {
		if err := fn(d); err != nil {
			if errors.Is(err, oci.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// batchFor returns the scan's verification bound to an artifact: its
// signatures are fetched within the artifact's byte cap, and when its
// referrers list is complete they are those of the list; otherwise the
// Store lists them.
func (s *Scanner) batchFor(f *fetcher, a oci.Artifact, referrers []ocispec.Descriptor, complete bool) *verify.Batch {
	if a.Reference.IsLayout() {
		// A layout's signatures are found by notation's own rule
		// (oci.Layouts.Signatures), which the Store keeps.
		return s.o.Batch
	}
	var sigs []ocispec.Descriptor
	for _, d := range referrers {
		if d.ArtifactType == mtNotation {
			sigs = append(sigs, d)
		}
	}
	b := *s.o.Batch
	b.Source = &knownSource{Store: s.o.Store, artifact: a, signatures: sigs, complete: complete, f: f}
	return &b
}
