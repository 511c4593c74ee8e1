package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceLineColumn is the plain computation problems must agree with:
// the newlines before off, then the characters from the line's start.
func referenceLineColumn(data []byte, off int) (int, int) {
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return bytes.Count(data[:off], []byte{'\n'}) + 1, utf8.RuneCount(data[start:off]) + 1
}

// TestProblemPositionsMatchReference validates random documents with
// problems, minified and indented, whose names and values hold multi-byte
// characters before the offending values. Each bad value is unique, so
// its offset is found by searching the bytes; every problem's line and
// column must equal the reference computation at that offset.
func TestProblemPositionsMatchReference(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	words := []string{"é", "ß", "中文", "😀", "Ω", "plain", "x\u0301", "𝄞"}
	word := func() string {
		var b strings.Builder
		for i := r.Intn(4); i >= 0; i-- {
			b.WriteString(words[r.Intn(len(words))])
		}
		return b.String()
	}
	for round := 0; round < 30; round++ {
		var stmts []any
		for i := 0; i < 1+r.Intn(60); i++ {
			s := map[string]any{
				"name":                  fmt.Sprintf("%s-%d", word(), i),
				"registryScopes":        []any{fmt.Sprintf("registry.example.com/app%d", i)},
				"signatureVerification": map[string]any{"level": "strict"},
				"trustStores":           []any{"ca:acme"},
				"trustedIdentities":     []any{"x509.subject: C=US, ST=WA, O=" + word()},
			}
			switch r.Intn(4) {
			case 0:
				s["signatureVerification"] = map[string]any{"level": fmt.Sprintf("%s-level-%d", word(), i)}
			case 1:
				s["trustStores"] = []any{"ca:acme", fmt.Sprintf("CA:%s-%d", word(), i)}
			case 2:
				s["trustedIdentities"] = []any{fmt.Sprintf("x509.subject: C=US, O=%s-%d", word(), i)}
			}
			stmts = append(stmts, s)
		}
		doc := map[string]any{"version": "1.0", "trustPolicies": stmts}
		compact, _ := json.Marshal(doc)
		indented, _ := json.MarshalIndent(doc, "", "\t")
		for layout, data := range map[string][]byte{"minified": compact, "indented": indented} {
			_, err := Parse(data, "p.json", TypeOCI)
			var ve *ValidationError
			if err == nil {
				continue
			}
			if !errors.As(err, &ve) {
				t.Fatal(err)
			}
			checked := 0
			for _, p := range ve.Problems {
				if p.Value == "" || bytes.Count(data, []byte(p.Value)) != 1 {
					continue
				}
				wl, wc := referenceLineColumn(data, bytes.Index(data, []byte(p.Value)))
				if p.Line != wl || p.Column != wc {
					t.Fatalf("%s: %s at %d:%d, want %d:%d", layout, p, p.Line, p.Column, wl, wc)
				}
				checked++
			}
			if checked == 0 {
				t.Fatalf("%s: no problem checked among %d", layout, len(ve.Problems))
			}
		}
	}
}

// TestStatementPositionsOneLine: every statement of a one-line document
// knows its column, counted in characters after multi-byte names.
func TestStatementPositionsOneLine(t *testing.T) {
	var parts []string
	for i := 0; i < 500; i++ {
		parts = append(parts, stmt(fmt.Sprintf("中-%d-😀", i), "registryScopes", fmt.Sprintf(`["registry.example.com/app%d"]`, i)))
	}
	data := []byte(strings.ReplaceAll(oci(parts...), "\n", ""))
	doc, err := Parse(data, "", TypeOCI)
	if err != nil {
		t.Fatalf("%.500s", err)
	}
	for _, s := range doc.Statements() {
		off := bytes.Index(data, []byte(`{"name": "`+s.Name()+`"`))
		wl, wc := referenceLineColumn(data, off)
		if l, c := s.Position(); l != wl || c != wc {
			t.Fatalf("statement %q at %d:%d, want %d:%d", s.Name(), l, c, wl, wc)
		}
		if l, c := doc.Position(s.Pointer() + "/name"); l != 1 || c <= wc {
			t.Fatalf("name of %q at %d:%d", s.Name(), l, c)
		}
	}
	// Pointers follow RFC 6901: no sign, no leading zero.
	for _, ptr := range []string{"/trustPolicies/+1", "/trustPolicies/01", "/trustPolicies/-1", "/trustPolicies/500"} {
		if l, c := doc.Position(ptr); l != 0 || c != 0 {
			t.Errorf("Position(%q) = %d:%d, want none", ptr, l, c)
		}
	}
}

// TestOverlapPairs: every pair where one x509.subject identity is a
// subset of another is reported once, at the later identity, oriented as
// notation prints it.
func TestOverlapPairs(t *testing.T) {
	ids := []string{
		"x509.subject: C=US, ST=WA, O=a, OU=1",
		"x509.subject: C=US, ST=WA, O=a",
		"x509.subject: O=a, C=US, S=WA",
		"x509.subject: C=US, ST=WA, O=b",
		"x509.subject: C=US, ST=WA, O=a, OU=1, CN=c",
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = strconv.Quote(id)
	}
	_, err := Parse([]byte(oci(stmt("s", "trustedIdentities", "["+strings.Join(quoted, ", ")+"]"))), "", TypeOCI)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse = %v", err)
	}
	var got []string
	for _, p := range ve.Problems {
		if p.Rule != RuleIdentityOverlap {
			t.Errorf("unexpected problem %s", p)
			continue
		}
		got = append(got, p.Pointer+" "+p.Message)
	}
	sort.Strings(got)
	msg := func(at, sub, sup int) string {
		return fmt.Sprintf("/trustPolicies/0/trustedIdentities/%d trust policy statement \"s\" has overlapping x509 trustedIdentities, %q overlaps with %q", at, ids[sub], ids[sup])
	}
	want := []string{
		msg(1, 1, 0), msg(2, 2, 0), msg(2, 1, 2), // 1 and 2 are equal: the earlier is named first
		msg(4, 0, 4), msg(4, 1, 4), msg(4, 2, 4),
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("overlaps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
