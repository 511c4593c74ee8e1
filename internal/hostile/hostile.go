// Package hostile serves an OCI registry that misbehaves on purpose, on
// 127.0.0.1, for the tests that hold keyward to the bounds SECURITY.md
// promises. It serves one artifact (repository "app", tag "v1") and, in
// each [Mode], answers as an attacker who controls a registry would.
//
// It is a test helper: import it only from _test.go files.
package hostile

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Mode is how the registry misbehaves.
type Mode string

// The modes.
const (
	// Honest lists one signature with a small (invalid) envelope.
	Honest Mode = "honest"
	// SlowBody sends the referrers list's headers, then one byte every
	// two seconds.
	SlowBody Mode = "slow-body"
	// SelfLink answers every referrers page with a Link to itself.
	SelfLink Mode = "self-link"
	// LinkCycle alternates between two referrers pages linking to each
	// other.
	LinkCycle Mode = "link-cycle"
	// EndlessPages links every referrers page to a new one.
	EndlessPages Mode = "endless-pages"
	// HugeDeclared lists a signature whose manifest declares an envelope
	// of 2^39 bytes, and a signature manifest declared 2^39 bytes.
	HugeDeclared Mode = "huge-declared"
	// HugeEnvelopes lists Signatures signatures, each with a 32 MiB
	// envelope whose digest is right.
	HugeEnvelopes Mode = "huge-envelopes"
	// LyingDigest serves envelopes whose bytes do not match their digest.
	LyingDigest Mode = "lying-digest"
	// RedirectLoop redirects every envelope download to itself.
	RedirectLoop Mode = "redirect-loop"
	// BigPages answers every referrers page with BigPageSize bytes (an
	// index listing nothing, padded with an annotation) and a Link to a
	// new page.
	BigPages Mode = "big-pages"
	// ControlChars answers the referrers list with a 500 whose error
	// message carries terminal escape sequences and a forged output line.
	ControlChars Mode = "control-chars"
)

// BigPageSize is the size of a BigPages referrers page: under the 4 MiB a
// client reads of one.
const BigPageSize = 3 << 20

// EnvelopeSize is the envelope size of HugeEnvelopes: the largest a
// registry may serve (notation's bound).
const EnvelopeSize = 32 << 20

// Registry is a running hostile registry.
type Registry struct {
	// Host is 127.0.0.1:port.
	Host string
	// Artifact is the manifest of app:v1.
	Artifact ocispec.Descriptor
	// Requests counts the requests served.
	Requests atomic.Int64
	// EnvelopeBytes counts the envelope bytes sent.
	EnvelopeBytes atomic.Int64
	// ListingBytes counts the referrers page bytes sent.
	ListingBytes atomic.Int64

	mode       Mode
	signatures int
	manifest   []byte
	sigs       map[digest.Digest][]byte // signature manifests
	envelopes  map[digest.Digest][]byte // small envelopes
	huge       map[digest.Digest]byte   // HugeEnvelopes: digest -> fill seed
}

// Start serves a hostile registry in mode until the test ends; signatures
// is how many signatures HugeEnvelopes lists (others list one or two).
func Start(t testing.TB, mode Mode, signatures int) *Registry {
	t.Helper()
	r := &Registry{mode: mode, signatures: signatures, sigs: map[digest.Digest][]byte{}, envelopes: map[digest.Digest][]byte{}, huge: map[digest.Digest]byte{}}
	config := []byte("{}")
	layer := make([]byte, 64)
	if _, err := rand.Read(layer); err != nil {
		t.Fatal(err)
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: 2},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: 64}},
	}
	m.SchemaVersion = 2
	r.manifest, _ = json.Marshal(m)
	r.Artifact = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(r.manifest), Size: int64(len(r.manifest))}

	n := 1
	if mode == HugeEnvelopes {
		n = signatures
	}
	for i := range n {
		var env ocispec.Descriptor
		switch mode {
		case HugeEnvelopes:
			seed := byte(i + 1)
			d := fillDigest(seed)
			r.huge[d] = seed
			env = ocispec.Descriptor{MediaType: "application/jose+json", Digest: d, Size: EnvelopeSize}
		case HugeDeclared:
			env = ocispec.Descriptor{MediaType: "application/jose+json", Digest: digest.FromString("huge"), Size: 1 << 39}
		default:
			data := []byte(fmt.Sprintf(`{"payload":"e30","protected":"e30","signature":"%d"}`, i))
			env = ocispec.Descriptor{MediaType: "application/jose+json", Digest: digest.FromBytes(data), Size: int64(len(data))}
			r.envelopes[env.Digest] = data
		}
		r.addSignature(env)
	}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// Reference returns host/app@digest of the artifact.
func (r *Registry) Reference() string { return r.Host + "/app@" + r.Artifact.Digest.String() }

// fillDigest is the digest of a HugeEnvelopes envelope: EnvelopeSize bytes
// of one value, made again for each request instead of being held.
func fillDigest(seed byte) digest.Digest {
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = seed
	}
	d := digest.Canonical.Digester()
	for range EnvelopeSize / len(chunk) {
		d.Hash().Write(chunk)
	}
	return d.Digest()
}

func (r *Registry) addSignature(env ocispec.Descriptor) {
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.cncf.notary.signature",
		Config:       ocispec.DescriptorEmptyJSON,
		Layers:       []ocispec.Descriptor{env},
		Subject:      &r.Artifact,
	}
	m.SchemaVersion = 2
	raw, _ := json.Marshal(m)
	r.sigs[digest.FromBytes(raw)] = raw
}

// index is the referrers list: every signature manifest, and for
// HugeDeclared one more declared 2^39 bytes.
func (r *Registry) index() []byte {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for d, raw := range r.sigs {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.cncf.notary.signature", Digest: d, Size: int64(len(raw))})
	}
	if r.mode == HugeDeclared {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.cncf.notary.signature", Digest: digest.FromString("huge manifest"), Size: 1 << 39})
	}
	b, _ := json.Marshal(idx)
	return b
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	r.Requests.Add(1)
	p := req.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		w.WriteHeader(http.StatusOK)
	case p == "/v2/app/tags/list":
		// keyward scan lists the tags; the rest of keyward names v1.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"app","tags":["v1"]}`)
	case strings.HasPrefix(p, "/v2/app/manifests/"):
		r.manifests(w, req, strings.TrimPrefix(p, "/v2/app/manifests/"))
	case strings.HasPrefix(p, "/v2/app/referrers/"):
		r.referrers(w, req)
	case strings.HasPrefix(p, "/v2/app/blobs/"):
		r.blobs(w, req, digest.Digest(strings.TrimPrefix(p, "/v2/app/blobs/")))
	default:
		http.NotFound(w, req)
	}
}

func (r *Registry) manifests(w http.ResponseWriter, req *http.Request, ref string) {
	var body []byte
	mediaType := ocispec.MediaTypeImageManifest
	switch {
	case ref == "v1" || ref == r.Artifact.Digest.String():
		body = r.manifest
	default:
		body = r.sigs[digest.Digest(ref)]
	}
	if body == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if req.Method != http.MethodHead {
		w.Write(body)
	}
}

func (r *Registry) referrers(w http.ResponseWriter, req *http.Request) {
	body := r.index()
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	switch r.mode {
	case SlowBody:
		w.WriteHeader(http.StatusOK)
		for i := 0; i < 120; i++ { // at most four minutes
			if _, err := w.Write(body[i%len(body) : i%len(body)+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-req.Context().Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
		return
	case SelfLink:
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, req.URL.RequestURI()))
	case LinkCycle:
		next := req.URL.Path + "?page=b"
		if req.URL.Query().Get("page") == "b" {
			next = req.URL.Path + "?page=a"
		}
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next))
		body = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	case EndlessPages:
		w.Header().Set("Link", fmt.Sprintf(`<%s?n=%d>; rel="next"`, req.URL.Path, r.Requests.Load()))
		body = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	case BigPages:
		w.Header().Set("Link", fmt.Sprintf(`<%s?n=%d>; rel="next"`, req.URL.Path, r.Requests.Load()))
		head := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{"pad":"`
		tail := `"}}`
		body = []byte(head + strings.Repeat("x", BigPageSize-len(head)-len(tail)) + tail)
	case ControlChars:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"errors":[{"code":"DENIED","message":"\u001b]0;pwned\u0007\u001b[2J\rVERIFIED  fake-line\nVERIFIED  forged"}]}`)
		return
	}
	n, _ := w.Write(body)
	r.ListingBytes.Add(int64(n))
}

func (r *Registry) blobs(w http.ResponseWriter, req *http.Request, d digest.Digest) {
	if r.mode == RedirectLoop {
		http.Redirect(w, req, req.URL.RequestURI(), http.StatusTemporaryRedirect)
		return
	}
	if seed, ok := r.huge[d]; ok {
		w.Header().Set("Content-Length", fmt.Sprint(EnvelopeSize))
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = seed
		}
		for i := 0; i < EnvelopeSize/len(chunk); i++ {
			n, err := w.Write(chunk)
			r.EnvelopeBytes.Add(int64(n))
			if err != nil {
				return
			}
		}
		return
	}
	data, ok := r.envelopes[d]
	if !ok {
		http.NotFound(w, req)
		return
	}
	if r.mode == LyingDigest {
		data = append([]byte("x"), data[1:]...)
	}
	r.EnvelopeBytes.Add(int64(len(data)))
	w.Write(data)
}
