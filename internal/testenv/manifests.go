package testenv

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushTagged pushes a fresh image (as PushArtifact) and tags it; it
// returns "host/repo@sha256:..." and the manifest's descriptor.
func PushTagged(t testing.TB, reg *Registry, repo, tag string) (ref string, desc ocispec.Descriptor) {
	t.Helper()
	ref, desc = PushArtifact(t, reg, repo)
	raw, _ := GetManifest(t, reg, repo, desc.Digest.String())
	PutManifest(t, reg, repo, tag, desc.MediaType, raw)
	return ref, desc
}

// PushIndex pushes a fresh image for each platform (os/architecture) and an
// OCI image index listing them, tagged tag; it returns
// "host/repo@sha256:..." of the index, its descriptor and the platform
// manifests' descriptors, in the order of platforms.
func PushIndex(t testing.TB, reg *Registry, repo, tag string, platforms ...ocispec.Platform) (ref string, index ocispec.Descriptor, children []ocispec.Descriptor) {
	t.Helper()
	var entries []ocispec.Descriptor
	for _, p := range platforms {
		_, d := PushArtifact(t, reg, repo)
		d.Platform = &p
		entries = append(entries, d)
		children = append(children, d)
	}
	data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: entries})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	index = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: godigest.FromBytes(data), Size: int64(len(data))}
	PutManifest(t, reg, repo, index.Digest.String(), index.MediaType, data)
	PutManifest(t, reg, repo, tag, index.MediaType, data)
	return reg.Host + "/" + repo + "@" + index.Digest.String(), index, children
}

// PutManifest uploads a manifest under reference (a tag or its digest).
func PutManifest(t testing.TB, reg *Registry, repo, reference, mediaType string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := reg.URL() + "/v2/" + repo + "/manifests/" + reference
	resp, err := do(ctx, reg.client(0), http.MethodPut, u, mediaType, data)
	if err != nil {
		t.Fatalf("testenv: PUT %s: %v", u, err)
	}
	if resp.status != http.StatusCreated {
		t.Fatalf("testenv: PUT %s: %s\n%s", u, resp.statusText, resp.body)
	}
}

// PutBlob uploads a blob to repo.
func PutBlob(t testing.TB, reg *Registry, repo, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := newBlob(mediaType, data)
	if err := pushBlob(ctx, reg.client(0), reg.URL()+"/v2/"+repo, b); err != nil {
		t.Fatalf("testenv: pushing a blob to %s/%s: %v", reg.Host, repo, err)
	}
	return b.Desc
}

// GetManifest fetches a manifest by tag or digest; it returns its bytes and
// media type.
func GetManifest(t testing.TB, reg *Registry, repo, reference string) ([]byte, string) {
	t.Helper()
	status, data, mediaType := fetchManifest(t, reg, repo, reference)
	if status != http.StatusOK {
		t.Fatalf("testenv: GET %s/%s manifest %s: %d\n%s", reg.Host, repo, reference, status, data)
	}
	return data, mediaType
}

// fetchManifest GETs a manifest by tag or digest, reading at most
// maxResponse bytes of the answer; it fails t only when the registry
// cannot be asked.
func fetchManifest(t testing.TB, reg *Registry, repo, reference string) (status int, data []byte, mediaType string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := reg.URL() + "/v2/" + repo + "/manifests/" + reference
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest+", "+ocispec.MediaTypeImageIndex)
	resp, err := reg.client(0).Do(req)
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	data = make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for len(data) < maxResponse {
		n, err := resp.Body.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			break
		}
	}
	return resp.StatusCode, data, resp.Header.Get("Content-Type")
}

// DeleteManifest deletes a manifest by digest.
func DeleteManifest(t testing.TB, reg *Registry, repo, digest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := reg.URL() + "/v2/" + repo + "/manifests/" + digest
	resp, err := do(ctx, reg.client(0), http.MethodDelete, u, "", nil)
	if err != nil {
		t.Fatalf("testenv: DELETE %s: %v", u, err)
	}
	if resp.status != http.StatusAccepted && resp.status != http.StatusOK {
		t.Fatalf("testenv: DELETE %s: %s\n%s", u, resp.statusText, resp.body)
	}
}

// GetReferrers fetches the referrers index of a digest (OCI 1.1 referrers
// API).
func GetReferrers(t testing.TB, reg *Registry, repo, digest string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := reg.URL() + "/v2/" + repo + "/referrers/" + digest
	resp, err := do(ctx, reg.client(0), http.MethodGet, u, "", nil)
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", u, err)
	}
	if resp.status != http.StatusOK {
		t.Fatalf("testenv: GET %s: %s\n%s", u, resp.statusText, resp.body)
	}
	return resp.body
}

// TryGetManifest fetches a manifest by tag or digest; ok is false when the
// registry does not have it.
func TryGetManifest(t testing.TB, reg *Registry, repo, reference string) (data []byte, ok bool) {
	t.Helper()
	status, data, _ := fetchManifest(t, reg, repo, reference)
	switch status {
	case http.StatusOK:
		return data, true
	case http.StatusNotFound:
		return nil, false
	}
	t.Fatalf("testenv: GET %s/%s manifest %s: %d\n%s", reg.Host, repo, reference, status, data)
	return nil, false
}
