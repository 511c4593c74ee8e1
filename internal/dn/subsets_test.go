package dn

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
)

// bruteSubsets is notation's pairwise comparison, the reference for
// Subsets.
func bruteSubsets(dns []DN) []string {
	var out []string
	for sup := range dns {
		for sub := range dns {
			if sub != sup && dns[sub].SubsetOf(dns[sup]) {
				out = append(out, fmt.Sprintf("%d<=%d", sub, sup))
			}
		}
	}
	sort.Strings(out)
	return out
}

func indexedSubsets(dns []DN) []string {
	var out []string
	seen := map[string]bool{}
	Subsets(dns, func(sub, sup int) {
		p := fmt.Sprintf("%d<=%d", sub, sup)
		if seen[p] {
			panic("pair reported twice: " + p)
		}
		seen[p] = true
		out = append(out, p)
	})
	sort.Strings(out)
	return out
}

// randomDN writes a DN from a small alphabet so that subsets, equal sets,
// empty values and many attributes all occur.
func randomDN(r *rand.Rand) string {
	parts := []string{"C=US", "ST=WA", "O=" + []string{"a", "b"}[r.Intn(2)]}
	types := []string{"OU", "CN", "L", "DC", "SERIALNUMBER", "1.2.3", "T", "UID", "POSTALCODE", "STREET", "X1", "X2", "X3", "X4"}
	n := r.Intn(4)
	if r.Intn(20) == 0 {
		n = len(types) // beyond maxIndexedExtras
	}
	for _, k := range r.Perm(len(types))[:n] {
		v := []string{"", "x", "y", "a,b"}[r.Intn(4)]
		parts = append(parts, types[k]+"="+strings.ReplaceAll(v, ",", `\,`))
	}
	r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return strings.Join(parts, ", ")
}

// TestSubsetsMatchesPairwise compares Subsets with the pairwise comparison
// on random sets of DNs, empty values and DNs over the indexing bound
// included.
func TestSubsetsMatchesPairwise(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for round := 0; round < 300; round++ {
		var dns []DN
		var texts []string
		for i := r.Intn(25); i >= 0; i-- {
			s := randomDN(r)
			d, err := Parse(s)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			dns = append(dns, d)
			texts = append(texts, s)
		}
		if got, want := indexedSubsets(dns), bruteSubsets(dns); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("DNs %q:\n got %v\nwant %v", texts, got, want)
		}
	}
}

func TestSubsetsEmptyValueIsNotWildcard(t *testing.T) {
	p := func(s string) DN {
		d, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// L= (empty) requires the other DN to have no L, as notation's map
	// comparison does.
	dns := []DN{p("C=US, ST=WA, O=a, L="), p("C=US, ST=WA, O=a, L=x"), p("C=US, ST=WA, O=a")}
	got := strings.Join(indexedSubsets(dns), " ")
	if want := "0<=2 2<=0 2<=1"; got != want {
		t.Fatalf("pairs %s, want %s", got, want)
	}
}

// TestSubsetsWithoutMandatory covers DNs that Parse would refuse.
func TestSubsetsWithoutMandatory(t *testing.T) {
	dns := []DN{{types: []string{"CN"}, values: map[string]string{"CN": "a"}}, {types: []string{"CN", "O"}, values: map[string]string{"CN": "a", "O": "b"}}}
	if got := strings.Join(indexedSubsets(dns), " "); got != "0<=1" {
		t.Fatalf("pairs %s", got)
	}
}

func BenchmarkSubsets(b *testing.B) {
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
		Subsets(dns, func(int, int) { b.Fatal("no pair expected") })
	}
}
