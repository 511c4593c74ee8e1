package jsonpos

import "strings"

// Join appends reference tokens to a JSON pointer, escaping '~' and '/'
// (RFC 6901 section 3).
func Join(base string, tokens ...string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, t := range tokens {
		b.WriteByte('/')
		if strings.ContainsAny(t, "~/") {
			t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		}
		b.WriteString(t)
	}
	return b.String()
}

// Tokens splits a JSON pointer into its unescaped reference tokens (RFC
// 6901 section 4: "~1" is '/', then "~0" is '~'). The empty pointer, the
// whole document, has none.
func Tokens(ptr string) []string {
	if ptr == "" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, t := range parts {
		if strings.Contains(t, "~") {
			parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		}
	}
	return parts
}

// ArrayIndex reads a reference token as an index into an array of n
// elements. RFC 6901 section 4: array-index = %x30 / ( %x31-39 *(%x30-39) ),
// "0" or digits without a leading zero; so "+1", "-1", "01", " 1" and "-"
// (the element after the last) select nothing.
func ArrayIndex(tok string, n int) (int, bool) {
	if tok == "" || (tok[0] == '0' && len(tok) > 1) {
		return 0, false
	}
	i := 0
	for j := 0; j < len(tok); j++ {
		c := tok[j]
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
		if i >= n {
			return 0, false // also stops before i can overflow
		}
	}
	return i, true
}

// Lookup returns the value at JSON pointer ptr, or nil when there is none.
// An object member is the last one with that key (as encoding/json reads
// it); an array element is selected by [ArrayIndex].
func Lookup(root *Node, ptr string) *Node {
	n := root
	for _, tok := range Tokens(ptr) {
		switch {
		case n == nil:
			return nil
		case n.Kind == KindObject:
			n, _, _ = n.Get(tok)
		case n.Kind == KindArray:
			i, ok := ArrayIndex(tok, len(n.Elems))
			if !ok {
				return nil
			}
			n = n.Elems[i]
		default:
			return nil
		}
	}
	return n
}
