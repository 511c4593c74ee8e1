package verify

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
)

// earlyListing lists the signatures of a reference that names a digest
// while the reference is being resolved, so that the referrers request
// and the manifest request that checks the digest travel at the same time
// instead of one after the other (a round trip less for every artifact
// verified). The listing is the one that would follow the resolution:
// both name the same digest, since Resolve fails unless the registry
// serves that digest; when it fails, the listing is stopped and its
// outcome dropped. The descriptors reach the evaluation one at a time,
// each after the callback has judged the one before, as when the listing
// follows the resolution: the same pages are read, and the listing stops
// where the callback stops it.
type earlyListing struct {
	items   chan ocispec.Descriptor
	replies chan error // the callback's answer to the item last sent
	done    chan error // the listing's outcome
	cancel  context.CancelFunc
}

// listEarly starts listing the signatures of ref (which names a digest)
// in src.
func listEarly(ctx context.Context, src oci.Source, ref reference.Reference) *earlyListing {
	ctx, cancel := context.WithCancel(ctx)
	l := &earlyListing{items: make(chan ocispec.Descriptor), replies: make(chan error, 1), done: make(chan error, 1), cancel: cancel}
	a := oci.Artifact{Reference: ref, Descriptor: ocispec.Descriptor{Digest: ref.Digest}}
	go func() {
		var err error
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("list the signatures of %s: internal error: %v", ref.Raw, p)
			}
			l.done <- err
		}()
		err = src.Signatures(ctx, a, func(d ocispec.Descriptor) error {
			select {
			case l.items <- d:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case err := <-l.replies:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return l
}

// stop ends the listing if it is still running.
func (l *earlyListing) stop() { l.cancel() }

// source is src with the signatures listed early.
func (l *earlyListing) source(src SignatureSource) SignatureSource {
	return &earlySource{SignatureSource: src, l: l}
}

// earlySource is a SignatureSource whose listing is an earlyListing's;
// Signatures may be called once.
type earlySource struct {
	SignatureSource
	l *earlyListing
}

func (s *earlySource) Signatures(ctx context.Context, fn func(ocispec.Descriptor) error) error {
	for {
		select {
		case d := <-s.l.items:
			s.l.replies <- fn(d)
		case err := <-s.l.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
