package oci

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestSigCacheBound keeps at most the byte budget, evicting the least
// recently used first, and never keeps a large envelope.
func TestSigCacheBound(t *testing.T) {
	c := newSigCache(10 << 10)
	for i := range 20 {
		c.put(fmt.Sprint(i), &Signature{Envelope: make([]byte, 1<<10)})
	}
	n, bytes := c.len()
	if n != 10 || bytes != 10<<10 {
		t.Fatalf("kept %d signatures, %d bytes; want 10 and 10 KiB", n, bytes)
	}
	if _, ok := c.get("0"); ok {
		t.Error("the oldest entry was kept")
	}
	if _, ok := c.get("19"); !ok {
		t.Error("the newest entry was dropped")
	}
	big := newSigCache(64 << 20)
	big.put("big", &Signature{Envelope: make([]byte, maxCachedEnvelope+1)})
	if n, _ := big.len(); n != 0 {
		t.Error("an envelope over 1 MiB was kept")
	}
}

// TestByteSem makes a second holder wait until the first releases, and
// lets a waiter give up with its context.
func TestByteSem(t *testing.T) {
	s := &byteSem{max: 100}
	ctx := context.Background()
	if err := s.acquire(ctx, 80); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- s.acquire(ctx, 50) }()
	select {
	case <-got:
		t.Fatal("acquired past the budget")
	case <-time.After(50 * time.Millisecond):
	}
	s.release(80)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := s.acquire(short, 60); err == nil {
		t.Fatal("acquired past the budget")
	}
	// A request larger than the whole budget runs alone.
	s.release(50)
	if err := s.acquire(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	s.release(1000)
	if s.used != 0 {
		t.Fatalf("used = %d after every release", s.used)
	}
}
