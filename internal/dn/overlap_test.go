package dn

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// TestOverlappingMatchesPairwise compares Overlapping with the pairwise
// loop on random DNs, in order.
func TestOverlappingMatchesPairwise(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for round := 0; round < 300; round++ {
		var dns []DN
		for i := r.Intn(40); i >= 0; i-- {
			d, err := Parse(randomDN(r))
			if err != nil {
				t.Fatal(err)
			}
			dns = append(dns, d)
		}
		var want, got []string
		for b := range dns {
			for a := 0; a < b; a++ {
				if dns[a].Overlaps(dns[b]) {
					want = append(want, fmt.Sprintf("%d~%d", a, b))
				}
			}
		}
		Overlapping(dns, func(a, b int) { got = append(got, fmt.Sprintf("%d~%d", a, b)) })
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("round %d:\n got %v\nwant %v", round, got, want)
		}
	}
}

func BenchmarkOverlapping(b *testing.B) {
	var dns []DN
	for i := 0; i < 10000; i++ {
		d, err := Parse(fmt.Sprintf("C=US, ST=WA, L=Seattle, O=Example Corp, OU=Team %d, CN=Release Signer", i))
		if err != nil {
			b.Fatal(err)
		}
		dns = append(dns, d)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Overlapping(dns, func(int, int) { b.Fatal("no pair expected") })
	}
}
