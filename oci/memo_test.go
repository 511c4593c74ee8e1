package oci

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestMemoTTL: with a ttl, results expire and are swept (the map holds
// what the last ttl asked for), failures are not kept; without one,
// everything is kept.
func TestMemoTTL(t *testing.T) {
	ctx := context.Background()
	m := memo[int]{ttl: 20 * time.Millisecond}
	for i := range 100 {
		if v, err := m.do(ctx, fmt.Sprint(i), func() (int, error) { return i, nil }); v != i || err != nil {
			t.Fatalf("do(%d) = %d, %v", i, v, err)
		}
	}
	runs := 0
	m.do(ctx, "0", func() (int, error) { runs++; return 0, nil })
	if runs != 0 {
		t.Error("a result was not kept within its ttl")
	}
	time.Sleep(30 * time.Millisecond)
	m.do(ctx, "0", func() (int, error) { runs++; return 0, nil })
	if runs != 1 {
		t.Error("an expired result was served")
	}
	if n := len(m.m); n != 1 {
		t.Errorf("%d entries after the sweep, want 1", n)
	}
	boom := errors.New("boom")
	m.do(ctx, "fail", func() (int, error) { return 0, boom })
	if _, err := m.do(ctx, "fail", func() (int, error) { return 1, nil }); err != nil {
		t.Errorf("a failure was kept: %v", err)
	}
	var forever memo[int]
	forever.do(ctx, "fail", func() (int, error) { return 0, boom })
	if _, err := forever.do(ctx, "fail", func() (int, error) { return 1, nil }); !errors.Is(err, boom) {
		t.Errorf("without a ttl the failure must be kept (keyward verify), got %v", err)
	}
}
