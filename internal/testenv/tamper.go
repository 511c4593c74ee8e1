package testenv

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// NotationSignatureType is the artifact type of a notation signature
// manifest (notaryproject specs, signature-specification.md).
const NotationSignatureType = "application/vnd.cncf.notary.signature"

// signedRef splits "host/repo@sha256:..." into repo and digest.
func signedRef(t testing.TB, reg *Registry, ref string) (repo string, d godigest.Digest) {
	t.Helper()
	rest, ok := strings.CutPrefix(ref, reg.Host+"/")
	name, dgst, ok2 := strings.Cut(rest, "@")
	if !ok || !ok2 {
		t.Fatalf("testenv: %q is not %s/repository@digest", ref, reg.Host)
	}
	return name, godigest.Digest(dgst)
}

// Referrers lists the referrers of ref ("host/repo@sha256:...") in reg: by
// the OCI 1.1 referrers API when reg has it, else by the referrers tag
// schema (the index tagged sha256-<hex>; none when that tag is absent).
func Referrers(t testing.TB, reg *Registry, ref string) []ocispec.Descriptor {
	t.Helper()
	repo, d := signedRef(t, reg, ref)
	return referrersIndex(t, reg, repo, d).Manifests
}

func referrersIndex(t testing.TB, reg *Registry, repo string, d godigest.Digest) ocispec.Index {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := reg.URL() + "/v2/" + repo + "/referrers/" + d.String()
	if !reg.Referrers {
		u = reg.URL() + "/v2/" + repo + "/manifests/" + referrersTag(d)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err := reg.client(0).Do(req)
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var idx ocispec.Index
	if resp.StatusCode == http.StatusNotFound && !reg.Referrers {
		return ocispec.Index{Versioned: idx.Versioned, MediaType: ocispec.MediaTypeImageIndex}
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&idx); err != nil {
		t.Fatalf("testenv: GET %s: %v", u, err)
	}
	return idx
}

// referrersTag is the tag of the referrers tag schema
// (distribution-spec v1.1, "Referrers Tag Schema"): sha256-<hex>.
func referrersTag(d godigest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

// getContent reads a manifest or blob of repo by digest.
func getContent(t testing.TB, reg *Registry, repo, kind string, d godigest.Digest, accept string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := reg.URL() + "/v2/" + repo + "/" + kind + "/" + d.String()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := reg.client(0).Do(req)
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", u, err)
	}
	return data
}

// notationSignatures returns the notation signature descriptors among
// ref's referrers, failing when there is none.
func notationSignatures(t testing.TB, reg *Registry, ref string) []ocispec.Descriptor {
	t.Helper()
	var sigs []ocispec.Descriptor
	for _, d := range Referrers(t, reg, ref) {
		if d.ArtifactType == NotationSignatureType {
			sigs = append(sigs, d)
		}
	}
	if len(sigs) == 0 {
		t.Fatalf("testenv: %s has no notation signature in %s", ref, reg.Host)
	}
	return sigs
}

// TamperSignature replaces every notation signature of ref by one whose
// envelope has its signature value changed (a JWS envelope's "signature"
// member, else the last byte of a COSE envelope): the same signature
// manifest but for the envelope blob, with the same subject. The original
// signature manifests are removed (deleted with the referrers API, dropped
// from the referrers tag index without it), so that ref is left with only
// signatures that must fail verification.
func TamperSignature(t testing.TB, reg *Registry, ref string) {
	t.Helper()
	repo, subject := signedRef(t, reg, ref)
	for _, sig := range notationSignatures(t, reg, ref) {
		var m ocispec.Manifest
		if err := json.Unmarshal(getContent(t, reg, repo, "manifests", sig.Digest, ocispec.MediaTypeImageManifest), &m); err != nil || len(m.Layers) != 1 {
			t.Fatalf("testenv: signature manifest %s: %v (%d layers)", sig.Digest, err, len(m.Layers))
		}
		env := getContent(t, reg, repo, "blobs", m.Layers[0].Digest, "")
		bad := corrupt(t, env)
		blob := newBlob(m.Layers[0].MediaType, bad)
		m.Layers[0] = blob.Desc
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		man := newBlob(ocispec.MediaTypeImageManifest, data)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		base := reg.URL() + "/v2/" + repo
		if err := pushBlob(ctx, reg.client(0), base, blob); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if err := pushManifest(ctx, reg.client(0), base, man); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		cancel()
		replaced := sig
		replaced.Digest, replaced.Size = man.Desc.Digest, man.Desc.Size
		swapReferrer(t, reg, repo, subject, &sig, &replaced)
	}
}

// MoveSignature attaches copies of the notation signature manifests of
// from to to, another artifact of the same repository: each with to as its
// subject, the envelope untouched, so the signature's payload still names
// from. It is a valid signature presented for the wrong artifact.
func MoveSignature(t testing.TB, reg *Registry, from, to string) {
	t.Helper()
	repo, _ := signedRef(t, reg, from)
	toRepo, toDigest := signedRef(t, reg, to)
	if toRepo != repo {
		t.Fatalf("testenv: MoveSignature needs two artifacts of one repository, not %s and %s", repo, toRepo)
	}
	toManifest := getContent(t, reg, repo, "manifests", toDigest, ocispec.MediaTypeImageManifest)
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: toDigest, Size: int64(len(toManifest))}
	for _, sig := range notationSignatures(t, reg, from) {
		var m ocispec.Manifest
		if err := json.Unmarshal(getContent(t, reg, repo, "manifests", sig.Digest, ocispec.MediaTypeImageManifest), &m); err != nil {
			t.Fatalf("testenv: signature manifest %s: %v", sig.Digest, err)
		}
		m.Subject = &subject
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		man := newBlob(ocispec.MediaTypeImageManifest, data)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := pushManifest(ctx, reg.client(0), reg.URL()+"/v2/"+repo, man); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		cancel()
		moved := sig
		moved.Digest, moved.Size = man.Desc.Digest, man.Desc.Size
		swapReferrer(t, reg, repo, toDigest, nil, &moved)
	}
}

// swapReferrer records a change of subject's referrers: add (a manifest
// already pushed with subject) and the removal of old. With the referrers
// API the registry indexes add itself and old is deleted; without it the
// tag schema index is rewritten.
func swapReferrer(t testing.TB, reg *Registry, repo string, subject godigest.Digest, old, add *ocispec.Descriptor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := reg.URL() + "/v2/" + repo
	if reg.Referrers {
		if old == nil {
			return
		}
		u := base + "/manifests/" + old.Digest.String()
		resp, err := do(ctx, reg.client(0), http.MethodDelete, u, "", nil)
		if err != nil {
			t.Fatalf("testenv: DELETE %s: %v", u, err)
		}
		if resp.status != http.StatusAccepted {
			t.Fatalf("testenv: DELETE %s: %s\n%s", u, resp.statusText, resp.body)
		}
		return
	}
	idx := referrersIndex(t, reg, repo, subject)
	idx.SchemaVersion, idx.MediaType = 2, ocispec.MediaTypeImageIndex
	var keep []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if old == nil || d.Digest != old.Digest {
			keep = append(keep, d)
		}
	}
	idx.Manifests = append(keep, *add)
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	u := base + "/manifests/" + referrersTag(subject)
	resp, err := do(ctx, reg.client(0), http.MethodPut, u, ocispec.MediaTypeImageIndex, data)
	if err != nil {
		t.Fatalf("testenv: PUT %s: %v", u, err)
	}
	if resp.status != http.StatusCreated {
		t.Fatalf("testenv: PUT %s: %s\n%s", u, resp.statusText, resp.body)
	}
}

// corrupt returns env with its signature value changed.
func corrupt(t testing.TB, env []byte) []byte {
	t.Helper()
	var jws map[string]any
	if json.Unmarshal(env, &jws) == nil {
		sig, ok := jws["signature"].(string)
		if !ok || len(sig) < 8 {
			t.Fatalf("testenv: a JWS envelope without a signature: %.200s", env)
		}
		// Swap one base64url character in the middle for another.
		i := len(sig) / 2
		c := byte('A')
		if sig[i] == 'A' {
			c = 'B'
		}
		jws["signature"] = sig[:i] + string(c) + sig[i+1:]
		out, err := json.Marshal(jws)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		return out
	}
	out := append([]byte(nil), env...)
	out[len(out)-1] ^= 0x01 // COSE_Sign1 ends with the signature bytes
	return out
}
