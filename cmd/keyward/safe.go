package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// safe returns s fit to print on a terminal: control characters (C0 but
// newline, DEL, C1), Unicode format controls that reorder or hide text
// (bidirectional overrides and isolates, zero-width characters, the BOM)
// and bytes that are not UTF-8 are written as \xNN or \u{NNNN}. Text output
// passes every string that comes from outside through it (registry
// messages, certificate fields, annotations, references, policy values), so
// that a hostile registry or certificate cannot move the cursor, retitle
// the terminal or forge a line of output; JSON output escapes them itself.
func safe(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == '\n' || !unsafeRune(r, n) {
			i += n
			continue
		}
		clean = false
		break
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n':
			b.WriteByte('\n')
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafeRune(r, n):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r, n):
			fmt.Fprintf(&b, `\u{%04x}`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports runes that safe escapes (newline aside).
func unsafeRune(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff, r == 0x061c:
		return true
	}
	return false
}

// safeLines is safe for a message that may span lines: every line after
// the first starts with indent, so that no line of a message can pass for
// a line of keyward's own output.
func safeLines(s, indent string) string {
	return strings.ReplaceAll(safe(s), "\n", "\n"+indent)
}
