package jsonpos

import "testing"

// TestArrayIndex checks RFC 6901's array-index grammar: "0", or a digit
// 1-9 followed by digits; nothing else selects an element.
func TestArrayIndex(t *testing.T) {
	for _, tc := range []struct {
		tok  string
		n    int
		want int
		ok   bool
	}{
		{"0", 3, 0, true},
		{"1", 3, 1, true},
		{"2", 3, 2, true},
		{"10", 11, 10, true},
		{"3", 3, 0, false},  // past the end
		{"0", 0, 0, false},  // empty array
		{"-", 3, 0, false},  // the element after the last
		{"+1", 3, 0, false}, // sign
		{"-1", 3, 0, false},
		{"01", 3, 0, false}, // leading zero
		{"00", 3, 0, false},
		{"", 3, 0, false},
		{" 1", 3, 0, false},
		{"1 ", 3, 0, false},
		{"1e0", 3, 0, false},
		{"0x1", 3, 0, false},
		{"١", 3, 0, false}, // Arabic-Indic digit one
		{"99999999999999999999999999", 3, 0, false},
	} {
		got, ok := ArrayIndex(tc.tok, tc.n)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ArrayIndex(%q, %d) = %d, %v; want %d, %v", tc.tok, tc.n, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLookup(t *testing.T) {
	data := []byte(`{"a":[10,11,12,13,14,15,16,17,18,19,20],"a/b":{"m~n":true},"k":1,"k":2,"":{"":"empty"},"s":"x"}`)
	root, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ptr  string
		want string // the value's literal, "" for none
	}{
		{"", "{"},
		{"/a/0", "10"},
		{"/a/10", "20"},
		{"/a/11", ""},
		{"/a/+1", ""},
		{"/a/01", ""},
		{"/a/-1", ""},
		{"/a/-", ""},
		{"/a/", ""},
		{"/a~1b/m~0n", "true"},
		{"/a/b", ""},
		{"/k", "2"}, // the last of repeated keys, as encoding/json reads it
		{"//", `"empty"`},
		{"/s/0", ""}, // a string has no elements
		{"/missing", ""},
		{"/missing/0", ""},
	} {
		n := Lookup(root, tc.ptr)
		got := ""
		if n != nil {
			end := n.Off + 1
			for end < len(data) && data[end] != ',' && data[end] != '}' && data[end] != ']' && data[n.Off] != '{' {
				end++
			}
			got = string(data[n.Off:end])
		}
		if got != tc.want {
			t.Errorf("Lookup(%q) = %q, want %q", tc.ptr, got, tc.want)
		}
	}
}

func TestJoinTokensRoundTrip(t *testing.T) {
	for _, toks := range [][]string{{}, {""}, {"a", "b"}, {"a/b", "m~n", "~1", "/~0"}, {"trustPolicies", "0", "name"}} {
		ptr := Join("", toks...)
		got := Tokens(ptr)
		if len(got) != len(toks) {
			t.Fatalf("Tokens(Join(%q)) = %q", toks, got)
		}
		for i := range toks {
			if got[i] != toks[i] {
				t.Errorf("Tokens(%q)[%d] = %q, want %q", ptr, i, got[i], toks[i])
			}
		}
	}
	if got := Join("/trustPolicies/0", "a/b"); got != "/trustPolicies/0/a~1b" {
		t.Errorf("Join = %q", got)
	}
}
