package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/keyward/keyward/reference"
)

// Bounds on the listings a registry-wide reader makes (keyward scan).
const (
	// MaxCatalogPages bounds the pages of one catalog or tag listing.
	MaxCatalogPages = 4096
	// ListPageSize is the page size asked of the catalog and tag lists
	// (the n parameter; a registry may answer with fewer).
	ListPageSize = 1000
	// MaxListPageSize bounds the bytes of one catalog or tag list page.
	MaxListPageSize = 8 << 20
)

// CatalogRefusedError is returned by [Remote.Repositories] when a registry
// does not list its repositories: it answered the catalog with 401, 403,
// 404, 405 or the error code UNSUPPORTED (Docker Hub, GHCR, Harbor for
// non-admins do). It does not mean the registry is empty.
type CatalogRefusedError struct {
	// Host is the registry.
	Host string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Err is the registry's error.
	Err error
}

func (e *CatalogRefusedError) Error() string {
	return fmt.Sprintf("registry %s does not list its repositories (GET /v2/_catalog answered %d): %v", e.Host, e.StatusCode, e.Err)
}

// Unwrap returns the registry's error.
func (e *CatalogRefusedError) Unwrap() error { return e.Err }

// Repositories lists the repositories of registry host through the catalog
// API (/v2/_catalog, paginated by the Link header), calling fn with each
// page. The listing is bounded: MaxCatalogPages pages of at most
// MaxListPageSize bytes, no page read twice. A registry that refuses the
// catalog yields a *CatalogRefusedError.
func (r *Remote) Repositories(ctx context.Context, host string, fn func([]string) error) error {
	reg := &remote.Registry{
		RepositoryOptions: remote.RepositoryOptions{
			Client:           r.client,
			Reference:        registry.Reference{Registry: host},
			PlainHTTP:        r.plainHTTP(host),
			MaxMetadataBytes: MaxListPageSize,
		},
		RepositoryListPageSize: ListPageSize,
	}
	ctx = withListingMax(listingBudget(ctx), MaxCatalogPages)
	err := reg.Repositories(ctx, "", func(page []string) error {
		if err := fn(page); err != nil {
			return &callbackError{err}
		}
		return nil
	})
	var callbackErr *callbackError
	if errors.As(err, &callbackErr) {
		return callbackErr.err
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		refused := false
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
			refused = true
		}
		for _, e := range resp.Errors {
			if e.Code == errcode.ErrorCodeUnsupported {
				refused = true
			}
		}
		if refused {
			return &CatalogRefusedError{Host: host, StatusCode: resp.StatusCode, Err: err}
		}
	}
	if err != nil {
		return r.describe(host, "list the repositories", err)
	}
	return nil
}

// Tags lists the tags of a reference's repository (tags/list, paginated by
// the Link header, bounded as Repositories), calling fn with each page.
func (r *Remote) Tags(ctx context.Context, ref reference.Reference, fn func([]string) error) error {
	ctx = withListingMax(listingBudget(ctx), MaxCatalogPages)
	// A client of its own with the list's bounds: the shared one keeps the
	// manifest bound.
	lister := &remote.Repository{
		Client:           r.client,
		Reference:        registry.Reference{Registry: ref.Registry, Repository: ref.Repository},
		PlainHTTP:        r.plainHTTP(ref.Registry),
		MaxMetadataBytes: MaxListPageSize,
		TagListPageSize:  ListPageSize,
	}
	err := lister.Tags(ctx, "", func(page []string) error {
		if err := fn(page); err != nil {
			return &callbackError{err}
		}
		return nil
	})
	var callbackErr *callbackError
	if errors.As(err, &callbackErr) {
		return callbackErr.err
	}
	if err != nil {
		return r.describe(ref.Registry, "list the tags of "+ref.Scope, err)
	}
	return nil
}

// listingBudget gives a catalog or tag listing a budget of requests fitting
// its bound on pages, unless ctx has one.
func listingBudget(ctx context.Context) context.Context {
	if _, ok := budgetOf(ctx); ok {
		return ctx
	}
	return WithRequestBudget(ctx, 2*MaxCatalogPages+64)
}

// Referrers lists every referrer of an artifact, whatever its artifact
// type, through the referrers API or the referrers tag schema, calling fn
// with each page (bounded as the signature listing: MaxListingPages pages).
func (r *Remote) Referrers(ctx context.Context, a Artifact, fn func([]ocispec.Descriptor) error) error {
	ref := a.Reference
	repo := r.repository(ref)
	ctx = withListing(ensureBudget(ctx))
	err := repo.referrers(ctx, a.Descriptor, "", func(page []ocispec.Descriptor) error {
		if err := fn(page); err != nil {
			return &callbackError{err}
		}
		return nil
	})
	var callbackErr *callbackError
	if errors.As(err, &callbackErr) {
		return callbackErr.err
	}
	if err != nil {
		return r.describe(ref.Registry, "list the referrers of "+a.Descriptor.Digest.String(), err)
	}
	return nil
}

// FetchManifest fetches a manifest of a reference's repository by
// descriptor, at most MaxManifestSize bytes, and checks its digest.
func (r *Remote) FetchManifest(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) ([]byte, error) {
	ctx = ensureBudget(ctx)
	rc, err := r.repository(ref).Manifests().Fetch(ctx, desc)
	if err != nil {
		return nil, r.describe(ref.Registry, "fetch manifest "+desc.Digest.String(), err)
	}
	defer rc.Close()
	data, err := readVerified(rc, desc, MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return data, nil
}

// FetchBlob fetches a blob of a reference's repository by descriptor, at
// most limit bytes (a larger declared size fails before any request), and
// checks its digest.
func (r *Remote) FetchBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size < 0 || desc.Size > limit {
		return nil, fmt.Errorf("blob %s is %d bytes, more than the %d allowed", desc.Digest, desc.Size, limit)
	}
	ctx = ensureBudget(ctx)
	rc, err := r.repository(ref).Blobs().Fetch(ctx, desc)
	if err != nil {
		return nil, r.describe(ref.Registry, "fetch blob "+desc.Digest.String(), err)
	}
	defer rc.Close()
	return readVerified(rc, desc, limit)
}

// Exists reports whether a reference's repository holds a manifest of the
// digest of desc (HEAD request): false on 404, an error when the registry
// cannot say.
func (r *Remote) Exists(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) (bool, error) {
	ctx = ensureBudget(ctx)
	ok, err := r.repository(ref).Manifests().Exists(ctx, desc)
	if err != nil {
		return false, r.describe(ref.Registry, "look up manifest "+desc.Digest.String(), err)
	}
	return ok, nil
}

// FetchTagged fetches the manifest a tag of a reference's repository names
// in one request (GET by tag), at most MaxManifestSize bytes, checked
// against the digest the registry gives; it returns the manifest's
// descriptor and bytes.
func (r *Remote) FetchTagged(ctx context.Context, ref reference.Reference, tag string) (ocispec.Descriptor, []byte, error) {
	ctx = ensureBudget(ctx)
	desc, rc, err := r.repository(ref).Manifests().FetchReference(ctx, tag)
	if err != nil {
		return ocispec.Descriptor{}, nil, r.describe(ref.Registry, "fetch tag "+tag, err)
	}
	defer rc.Close()
	data, err := readVerified(rc, desc, MaxManifestSize)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest of tag %s: %w", tag, err)
	}
	return desc, data, nil
}
