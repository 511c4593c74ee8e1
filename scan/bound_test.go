package scan

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/oci"
)

// TestScanGoroutinesBounded: a repository of many artifacts is scanned
// with goroutines bounded by the concurrency, not one per artifact (each
// artifact's goroutine starts once it has its limiter slot), so a scan's
// memory does not grow with the artifacts it has yet to read.
func TestScanGoroutinesBounded(t *testing.T) {
	reg := testenv.StartDistribution(t)
	const n = 60
	for i := range n {
		testenv.PushTagged(t, reg, "bound/app", fmt.Sprintf("v%d", i))
	}
	remote := oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})
	s := New(Options{Store: remote, Catalog: remote, Concurrency: 2, RegistryConcurrency: 2})
	base := runtime.NumGoroutine()
	peak, records := 0, 0
	err := s.Run(context.Background(), []Target{{Registry: reg.Host, Repository: "bound/app"}}, func(r *Record) {
		records++
		peak = max(peak, runtime.NumGoroutine())
		if r.Status != StatusUnsigned {
			t.Errorf("%s: status %s %v, want unsigned", r.Reference, r.Status, r.Errors)
		}
	})
	if err != nil || records != n {
		t.Fatalf("%d records, error %v; want %d records", records, err, n)
	}
	// The scan's own goroutines (the emitter, the repository, two
	// artifacts) and the connections' (two each, a few connections).
	if peak-base > n/3 {
		t.Errorf("%d goroutines above the %d before the scan while scanning %d artifacts at concurrency 2: one per artifact", peak-base, base, n)
	}
}
