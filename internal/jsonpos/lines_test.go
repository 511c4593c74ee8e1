package jsonpos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

// referencePosition is the straightforward computation Lines must agree
// with: count the newlines before off, then the characters (as
// utf8.RuneCount counts them) from the start of the line to off.
func referencePosition(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return bytes.Count(data[:off], []byte{'\n'}) + 1, utf8.RuneCount(data[start:off]) + 1
}

// visit calls f with the offset of every value and every object key.
func visit(n *Node, f func(off int)) {
	f(n.Off)
	for _, e := range n.Elems {
		visit(e, f)
	}
	for _, m := range n.Members {
		f(m.KeyOff)
		visit(m.Val, f)
	}
}

// multiByteDocument builds a trust-policy-like document of n statements
// whose names and identities hold characters of one to four bytes, so that
// values sit after multi-byte text on their line and checkpoints fall
// inside characters.
func multiByteDocument(n int, r *rand.Rand) any {
	words := []string{"a", "é", "ß", "中文", "😀", "Ω≈ç", "\u00a0", "x\u0301", "𝄞𝄞", "plain"}
	word := func() string {
		var b strings.Builder
		for i := r.Intn(6); i >= 0; i-- {
			b.WriteString(words[r.Intn(len(words))])
		}
		return b.String()
	}
	var stmts []any
	for i := 0; i < n; i++ {
		stmts = append(stmts, map[string]any{
			"name":                  fmt.Sprintf("%s-%d", word(), i),
			"registryScopes":        []any{"registry.example.com/" + word()},
			"signatureVerification": map[string]any{"level": "strict", "override": map[string]any{word(): "log"}},
			"trustStores":           []any{"ca:" + word()},
			"trustedIdentities":     []any{"x509.subject: C=US, ST=WA, O=" + word(), r.Intn(1000), true, nil},
		})
	}
	return map[string]any{"version": "1.0", "trustPolicies": stmts}
}

// TestPositionsMatchReference locates every value and key of minified and
// indented documents with multi-byte characters before the values, and
// compares with the reference computation.
func TestPositionsMatchReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 3, 40, 300} {
		doc := multiByteDocument(n, r)
		compact, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		indented, err := json.MarshalIndent(doc, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		crlf := bytes.ReplaceAll(indented, []byte("\n"), []byte("\r\n"))
		for layout, data := range map[string][]byte{"minified": compact, "indented": indented, "crlf": crlf} {
			root, err := Parse(data)
			if err != nil {
				t.Fatalf("%s %d: %v", layout, n, err)
			}
			lines := NewLines(data)
			checked := 0
			visit(root, func(off int) {
				checked++
				gl, gc := lines.Position(off)
				wl, wc := referencePosition(data, off)
				if gl != wl || gc != wc {
					t.Fatalf("%s, %d statements: offset %d at %d:%d, want %d:%d", layout, n, off, gl, gc, wl, wc)
				}
			})
			if checked == 0 {
				t.Fatalf("%s %d: nothing visited", layout, n)
			}
		}
	}
}

func TestPositionExamples(t *testing.T) {
	data := []byte("{\"é😀\": [1,\n  \"中\", 2]}")
	lines := NewLines(data)
	for _, tc := range []struct {
		off, line, col int
	}{
		{0, 1, 1},
		{1, 1, 2},                                // the key's quote
		{strings.Index(string(data), ":"), 1, 6}, // after "é😀" (2 + 4 bytes, 2 characters)
		{strings.Index(string(data), "1"), 1, 9},
		{strings.Index(string(data), "\"中"), 2, 3},
		{strings.Index(string(data), "2"), 2, 8},
		{len(data), 2, 11},
		{len(data) + 5, 2, 11},
		{-1, 1, 1},
	} {
		if l, c := lines.Position(tc.off); l != tc.line || c != tc.col {
			t.Errorf("Position(%d) = %d:%d, want %d:%d", tc.off, l, c, tc.line, tc.col)
		}
	}
}

// FuzzPosition checks every offset of arbitrary bytes, invalid UTF-8 and
// offsets inside characters included, against the reference.
func FuzzPosition(f *testing.F) {
	for _, s := range []string{"", "\n", "é\n😀x", strings.Repeat("中", 100) + "\n" + strings.Repeat("a😀", 70), "\xff\xfe\n\xe2\x82", strings.Repeat("é", 200)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := NewLines(data)
		for off := 0; off <= len(data)+1; off++ {
			gl, gc := lines.Position(off)
			wl, wc := referencePosition(data, off)
			if gl != wl || gc != wc {
				t.Fatalf("offset %d of %q at %d:%d, want %d:%d", off, data, gl, gc, wl, wc)
			}
		}
	})
}

// TestPositionOneLineDocument locates every statement of a long one-line
// document (the layout where counting from the start of the line each time
// was quadratic), without allocating, and checks the last one.
func TestPositionOneLineDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("large document")
	}
	var b strings.Builder
	b.WriteString(`{"trustPolicies":[`)
	for i := 0; i < 20000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"é-%d","trustedIdentities":["x509.subject: C=US, ST=WA, O=中"]}`, i)
	}
	b.WriteString(`]}`)
	data := []byte(b.String())
	root, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	lines := NewLines(data)
	tp, _, _ := root.Get("trustPolicies")
	allocs := testing.AllocsPerRun(1, func() {
		for _, s := range tp.Elems {
			lines.Position(s.Off)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations locating statements", allocs)
	}
	last := tp.Elems[len(tp.Elems)-1]
	wl, wc := referencePosition(data, last.Off)
	if l, c := lines.Position(last.Off); l != wl || c != wc {
		t.Errorf("last statement at %d:%d, want %d:%d", l, c, wl, wc)
	}
}
