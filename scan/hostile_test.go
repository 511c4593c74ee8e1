package scan

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/hostile"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// hostileLister is a registry, on 127.0.0.1, whose catalog never ends
// (every page links to a new one, 1000 repositories each, among them
// names no registry may hold) and whose repository "big" lists tags
// without end, some of them names no tag may have. Every other
// repository has no tag.
type hostileLister struct {
	srv                    *httptest.Server
	host                   string
	catalogPages, tagPages atomic.Int64
	tagLists               atomic.Int64
}

func newHostileLister(t *testing.T) *hostileLister {
	h := &hostileLister{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		switch {
		case p == "/v2/" || p == "/v2":
		case p == "/v2/_catalog":
			n := h.catalogPages.Add(1)
			w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?last=r%d-999&n=1000>; rel="next"`, n))
			names := []string{`"` + strings.Repeat("x", 300) + `"`, `"bad\u001b[2Jname"`}
			for i := range 1000 {
				names = append(names, fmt.Sprintf(`"r%d-%03d"`, n, i))
			}
			if n == 1 {
				names = append(names, `"big"`)
			}
			fmt.Fprintf(w, `{"repositories":[%s]}`, strings.Join(names, ","))
		case p == "/v2/big/tags/list":
			n := h.tagPages.Add(1)
			w.Header().Set("Link", fmt.Sprintf(`</v2/big/tags/list?last=t%d-999&n=1000>; rel="next"`, n))
			names := []string{`"` + strings.Repeat("v", 200) + `"`, `"v1\u001b]0;pwned\u0007"`, `"-x"`}
			for i := range 1000 {
				names = append(names, fmt.Sprintf(`"t%d-%03d"`, n, i))
			}
			fmt.Fprintf(w, `{"name":"big","tags":[%s]}`, strings.Join(names, ","))
		case strings.HasSuffix(p, "/tags/list"):
			h.tagLists.Add(1)
			fmt.Fprint(w, `{"tags":[]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}`)
		}
	}))
	t.Cleanup(h.srv.Close)
	h.host = strings.TrimPrefix(h.srv.URL, "http://")
	return h
}

// TestScanHostileListings: a catalog and a tag list without end, holding
// names no registry may hold, are bounded (MaxRepositories,
// MaxTags), say so in Run's error, never become records, and the
// repositories are not all scanned at once (goroutines stay bounded, not
// one per listed repository).
func TestScanHostileListings(t *testing.T) {
	h := newHostileLister(t)
	remote := oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})
	s := New(Options{Store: remote, Catalog: remote, MaxRepositories: 5000, MaxTags: 2500})
	var (
		mu      sync.Mutex
		records []*Record
		peak    int
	)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				mu.Lock()
				peak = max(peak, runtime.NumGoroutine())
				mu.Unlock()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := s.Run(ctx, []Target{{Registry: h.host}}, func(r *Record) {
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	})
	close(done)
	if err == nil || !strings.Contains(err.Error(), "more than 5000 repositories") || !strings.Contains(err.Error(), "more than 2500 tags") {
		t.Errorf("Run: %v; want the repository and tag bounds named", err)
	}
	if !strings.Contains(fmt.Sprint(err), "not valid") {
		t.Errorf("Run: %v; want the invalid names reported", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the scan did not end: %v", ctx.Err())
	}
	if n := h.catalogPages.Load(); n > 6 {
		t.Errorf("%d catalog pages read past a bound of 5000 repositories", n)
	}
	if n := h.tagPages.Load(); n > 3 {
		t.Errorf("%d tag pages read past a bound of 2500 tags", n)
	}
	if n := h.tagLists.Load(); n >= 5000 {
		t.Errorf("%d repositories listed, more than the bound of 5000", n)
	}
	if peak > 1000 {
		t.Errorf("%d goroutines at once: a goroutine per listed repository", peak)
	}
	for _, r := range records {
		if r.Repository != "big" || len(r.Tags) != 1 || !strings.HasPrefix(r.Tags[0], "t") {
			t.Errorf("record of a name no registry may hold, or of no listed tag: %s %v", clean(r.Repository), r.Tags)
		}
		if r.Verification != nil && r.Verification.Verified {
			t.Errorf("record verified: %+v", r)
		}
	}
	if len(records) > 2500 {
		t.Errorf("%d records past the bound of 2500 tags", len(records))
	}
	var pageErr error = err
	if errors.Is(pageErr, oci.ErrPageLoop) {
		t.Errorf("distinct pages reported as a loop: %v", err)
	}
}

// TestScanByteCapHostile scans a registry whose artifact has four Notary
// Project signatures of 32 MiB envelopes, with a cap of 1 MiB per artifact
// and a trust policy: the registry sends at most the cap (and one
// envelope's worth of what was in flight), the record says the cap was
// reached, and nothing is verified.
func TestScanByteCapHostile(t *testing.T) {
	reg := hostile.Start(t, hostile.HugeEnvelopes, 4)
	remote := oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})
	batch := hostileBatch(t, remote)
	s := New(Options{Store: remote, Catalog: remote, Batch: batch, MaxBytes: 1 << 20})
	var records []*Record
	if err := s.Run(context.Background(), []Target{{Registry: reg.Host, Repository: "app"}}, func(r *Record) { records = append(records, r) }); err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 {
		t.Fatalf("%d records", len(records))
	}
	r := records[0]
	if sent := reg.EnvelopeBytes.Load(); sent > 2<<20 {
		t.Errorf("the registry sent %d envelope bytes for an artifact capped at %d", sent, 1<<20)
	}
	if r.Verification == nil || r.Verification.Verified {
		t.Errorf("verification %+v", r.Verification)
	}
	if !strings.Contains(strings.Join(append(r.Errors, r.Findings...), " ")+fmt.Sprint(r.Signatures[0].Findings), "--max-bytes") {
		t.Errorf("the record does not say the cap was reached: errors %v findings %v", r.Errors, r.Findings)
	}
}

// hostileBatch verifies against a strict policy with an empty trust store.
func hostileBatch(t *testing.T, src oci.Source) *verify.Batch {
	t.Helper()
	doc, err := policy.Parse([]byte(`{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:none"],"trustedIdentities":["*"]}]}`), "", policy.TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	return &verify.Batch{Policy: doc, Verifier: v, Source: src}
}

// TestScanByteCapReferrerPages scans a registry whose referrers listing
// is endless pages of 3 MiB, with a cap of 1 MiB per artifact: the listing
// counts against the cap, so the scan stops within the first page rather
// than reading 64 pages (192 MiB), and the record is in error, naming the
// cap.
func TestScanByteCapReferrerPages(t *testing.T) {
	reg := hostile.Start(t, hostile.BigPages, 0)
	remote := oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})
	s := New(Options{Store: remote, Catalog: remote, MaxBytes: 1 << 20})
	var records []*Record
	if err := s.Run(context.Background(), []Target{{Registry: reg.Host, Repository: "app"}}, func(r *Record) { records = append(records, r) }); err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 {
		t.Fatalf("%d records", len(records))
	}
	r := records[0]
	// What was in flight when the cap was reached: at most the first
	// page (the server counts what the socket took).
	if sent := reg.ListingBytes.Load(); sent > 2*hostile.BigPageSize {
		t.Errorf("the registry sent %d bytes of referrers pages for an artifact capped at %d", sent, 1<<20)
	}
	if r.Status != StatusError || !strings.Contains(strings.Join(r.Errors, " "), "--max-bytes") {
		t.Errorf("status %s, errors %q: want an error naming --max-bytes", r.Status, r.Errors)
	}
	if r.Bytes > 1<<20 {
		t.Errorf("the record counts %d bytes, over the cap", r.Bytes)
	}
}
