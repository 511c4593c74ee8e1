package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/verify"

	admissionv1 "k8s.io/api/admission/v1"
)

// Shape of the load test (issue 12): 1,000 requests from 64 concurrent
// clients across 100 images, half of them signed.
const (
	loadRequests = 1000
	loadClients  = 64
	loadOriginal = 10 // artifacts signed with notation through keyward
	loadCopies   = 5  // repositories each signed artifact is in (with its signature)
	loadUnsigned = 50
)

// copyWithSignatures copies host/repo@digest and its referrers (the
// signature) to dstRepo on the same registry and tags it "load"; the
// copy is another image to verify (another scope), with the same
// signature, read from its own repository.
func copyWithSignatures(t *testing.T, ref, dstRepo string) string {
	t.Helper()
	repo, dgst, _ := strings.Cut(ref, "@")
	host, _, _ := strings.Cut(repo, "/")
	src, err := remote.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := remote.NewRepository(host + "/" + dstRepo)
	if err != nil {
		t.Fatal(err)
	}
	src.PlainHTTP, dst.PlainHTTP = true, true
	if _, err := oras.ExtendedCopy(context.Background(), src, dgst, dst, "load", oras.DefaultExtendedCopyOptions); err != nil {
		t.Fatalf("copy %s to %s: %v", ref, dstRepo, err)
	}
	return host + "/" + dstRepo + "@" + dgst
}

// settledGoroutines waits until the goroutines are at most want, or 5 s,
// and returns their number.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestLoad sends 1,000 admissions (AdmissionReviews of a Pod to POST
// /v1/admission/validate) from 64 concurrent clients across
// 100 images in a registry process (50 signed, 50 unsigned; by digest and
// by tag): every verdict is right, no request fails, and afterwards the
// goroutines are back to their number before the load and the heap near
// its size.
func TestLoad(t *testing.T) {
	setup := time.Now()
	w := newWorld(t)
	// Sign loadOriginal artifacts, a few at a time, then copy each with
	// its signature to loadCopies-1 more repositories.
	originals := make([]string, loadOriginal)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range originals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			originals[i] = w.signed(t, fmt.Sprintf("load/signed%d", i))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	want := map[string]bool{} // reference -> verified
	var images []string
	for i, ref := range originals {
		want[ref] = true
		images = append(images, ref)
		for c := 1; c < loadCopies; c++ {
			cp := copyWithSignatures(t, ref, fmt.Sprintf("load/signed%d-copy%d", i, c))
			if c%2 == 0 {
				cp = cp[:strings.Index(cp, "@")] + ":load" // by tag
			}
			want[cp] = true
			images = append(images, cp)
		}
	}
	for i := range loadUnsigned {
		ref, _ := testenv.PushArtifact(t, w.reg, fmt.Sprintf("load/unsigned%d", i))
		if i%4 == 0 {
			ref = tag(t, ref, "load")
		}
		want[ref] = false
		images = append(images, ref)
	}
	if len(images) != 100 {
		t.Fatalf("%d images, want 100", len(images))
	}
	t.Logf("setup (sign %d, copy, push): %s", loadOriginal, time.Since(setup).Round(time.Millisecond))

	cfg := w.config(w.reg.Host)
	// The registry process shares a loaded machine (the race detector, other
	// tests): the load must not fail for a registry slower than the
	// default test configuration's 2 s.
	cfg.RequestTimeout, cfg.RegistryRequestTimeout = 25*time.Second, 10*time.Second
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: loadClients}, Timeout: 30 * time.Second}
	ask := func(ref string) (*verify.ReferenceResult, error) {
		body, _ := json.Marshal(VerifyRequest{References: []string{ref}})
		resp, err := client.Post(base+"/v1/verify", "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		var v VerifyResponse
		if err := json.Unmarshal(data, &v); err != nil || len(v.Results) != 1 {
			return nil, fmt.Errorf("answer %s: %v", data, err)
		}
		return v.Results[0], nil
	}
	// admit asks the validating webhook about a Pod running ref, as
	// kube-apiserver would.
	var uids atomic.Int64
	admit := func(ref string) (*admissionv1.AdmissionResponse, error) {
		pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"team"},"spec":{"containers":[{"name":"app","image":%q}]}}`, ref)
		body := review(fmt.Sprint(uids.Add(1)), "", "v1", "Pod", "", admissionv1.Create, pod, "", false)
		resp, err := client.Post(base+ValidatePath+"?timeout=10s", "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		var v admissionv1.AdmissionReview
		if err := json.Unmarshal(data, &v); err != nil || v.Response == nil {
			return nil, fmt.Errorf("answer %s: %v", data, err)
		}
		return v.Response, nil
	}
	// Warm up what lives as long as the server (connections, the
	// registry client, the metrics), then take the baseline.
	for _, ref := range []string{originals[0], images[len(images)-1]} {
		if _, err := ask(ref); err != nil {
			t.Fatal(err)
		}
		if _, err := admit(ref); err != nil {
			t.Fatal(err)
		}
	}
	client.CloseIdleConnections()
	s.closeIdleConnections()
	baseGoroutines := settledGoroutines(0)
	baseHeap := heapAfterGC()

	jobs := make(chan string)
	var failures atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	var errs []string
	start := time.Now()
	for range loadClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range jobs {
				t0 := time.Now()
				r, err := admit(ref)
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				switch {
				case err != nil:
					errs = append(errs, fmt.Sprintf("%s: %v", ref, err))
				case r.Allowed != want[ref]:
					errs = append(errs, fmt.Sprintf("%s: allowed %v, want %v (%+v)", ref, r.Allowed, want[ref], r.Result))
				case !want[ref] && (r.Result == nil || !strings.Contains(r.Result.Message, ref) || !strings.Contains(r.Result.Message, string(verify.ErrorNoSignature))):
					errs = append(errs, fmt.Sprintf("%s: deny message %+v, want one naming the image and %s", ref, r.Result, verify.ErrorNoSignature))
				}
				if len(errs) > 0 {
					failures.Add(1)
				}
				mu.Unlock()
			}
		}()
	}
	rng := rand.New(rand.NewPCG(12, 1))
	for i := range loadRequests {
		ref := images[i%len(images)] // every image at least once
		if i >= len(images) {
			ref = images[rng.IntN(len(images))]
		}
		jobs <- ref
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	for i, e := range errs {
		if i == 10 {
			t.Errorf("... and %d more", len(errs)-10)
			break
		}
		t.Error(e)
	}
	slices.Sort(latencies)
	t.Logf("%d requests, %d clients, %d images: %s (%.0f/s), client latency p50 %s p99 %s max %s; %d verifications, %d verdicts cached (%d bytes estimated)",
		len(latencies), loadClients, len(images), elapsed.Round(time.Millisecond), float64(len(latencies))/elapsed.Seconds(),
		latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1],
		s.cache.Verifications(), s.cache.Len(), s.cache.Bytes())
	if len(latencies) != loadRequests {
		t.Errorf("%d answers, want %d", len(latencies), loadRequests)
	}
	if elapsed > 60*time.Second {
		t.Errorf("the load took %s, more than its 60 s bound", elapsed)
	}
	if v := s.cache.Verifications(); v > int64(len(images))+2 {
		t.Errorf("%d verifications for %d images: the cache did not hold", v, len(images))
	}

	client.CloseIdleConnections()
	s.closeIdleConnections()
	if n := settledGoroutines(baseGoroutines); n > baseGoroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the load, %d before:\n%s", n, baseGoroutines, buf[:runtime.Stack(buf, true)])
	}
	measureVerdictMemory(t, s, images[0])

	// The caches hold 100 verdicts and 10 signatures (a few KiB each);
	// anything more is left over from the load.
	const slack = 16 << 20
	if heap := heapAfterGC(); heap > baseHeap+slack {
		t.Errorf("heap %d bytes after the load, %d before: more than %d bytes left over", heap, baseHeap, slack)
	} else {
		t.Logf("heap after GC: %d bytes before the load, %d after", baseHeap, heap)
	}
}

// measureVerdictMemory compares the estimate the cache's byte bound uses
// (verdictSize and the string table's) with the heap that verdicts like
// ref's take when kept: a bound that undercounts would let the cache
// outgrow cache.maxBytes. Two shapes: verdicts of other artifacts signed
// by the same signer (as a cluster's are: their strings shared), and
// verdicts whose every string is their own (nothing shared).
func measureVerdictMemory(t *testing.T, s *Server, ref string) {
	t.Helper()
	r := s.Verify(context.Background(), ref)
	if !r.Verified {
		t.Fatalf("%s: %+v", ref, r.Error)
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	oldHex := r.Artifact.Digest.Encoded()
	const n = 5000
	key := cacheKey(s.table.Load().def, &credentialSet{}, "registry.example/some/repository", r.Artifact.Digest)
	for _, shared := range []bool{true, false} {
		// The verdicts are built first: only what the cache keeps is
		// measured.
		verdicts := make([]*verify.ReferenceResult, n)
		for i := range verdicts {
			newHex := digest.FromString(fmt.Sprintf("artifact %d", i)).Encoded()
			var v verify.ReferenceResult
			if err := json.Unmarshal(bytes.ReplaceAll(data, []byte(oldHex), []byte(newHex)), &v); err != nil {
				t.Fatal(err)
			}
			if !shared {
				n := 0
				mapStrings(reflect.ValueOf(&v).Elem(), func(s string) string { n++; return fmt.Sprintf("%s %d.%d", s, i, n) })
			}
			verdicts[i] = &v
		}
		c := NewCache(context.Background(), CacheConfig{TTL: time.Hour, MaxEntries: n, MaxBytes: 1 << 40})
		before := heapAfterGC()
		for i, v := range verdicts {
			c.put(fmt.Sprintf("%s\x00%d", key, i), v, time.Hour)
		}
		after := heapAfterGC()
		runtime.KeepAlive(verdicts)
		actual := float64(int64(after)-int64(before)) / n
		estimate := float64(c.Bytes()) / n
		t.Logf("a verified verdict (%d bytes of JSON) takes %.0f bytes of heap in the cache (strings shared with the others: %v); the estimate is %.0f", len(data), actual, shared, estimate)
		if estimate < actual {
			t.Errorf("the estimate (%.0f bytes a verdict) is below the heap a verdict takes (%.0f, strings shared %v)", estimate, actual, shared)
		}
		if got, ok := c.get(fmt.Sprintf("%s\x00%d", key, n-1)); !ok || !reflect.DeepEqual(got, verdicts[n-1]) {
			t.Errorf("the cache gives back another verdict than it was given (strings shared %v)", shared)
		}
		runtime.KeepAlive(c)
	}
}

// mapStrings replaces every string reachable from v by f of it.
func mapStrings(v reflect.Value, f func(string) string) {
	switch v.Kind() {
	case reflect.String:
		if v.String() != "" {
			v.SetString(f(v.String()))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			mapStrings(v.Elem(), f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			mapStrings(v.Index(i), f)
		}
	case reflect.Map:
		if v.Len() == 0 {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			k.Set(it.Key())
			e.Set(it.Value())
			mapStrings(k, f)
			mapStrings(e, f)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				mapStrings(v.Field(i), f)
			}
		}
	}
}
