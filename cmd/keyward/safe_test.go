package main

import "testing"

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode ✓":              "plain text, ünïcode ✓",
		"line one\nline two":                 "line one\nline two",
		"\x1b[2J\x1b]0;owned\x07":            `\x1b[2J\x1b]0;owned\x07`,
		"ok\rVERIFIED  fake-line":            `ok\x0dVERIFIED  fake-line`,
		"tab\there":                          `tab\x09here`,
		"del\x7f":                            `del\x7f`,
		"c1\u009b31m":                        `c1\u{009b}31m`,
		"bidi \u202egnp.exe":                 `bidi \u{202e}gnp.exe`,
		"zero\u200bwidth":                    `zero\u{200b}width`,
		"bad utf8 \xff\xfe":                  `bad utf8 \xff\xfe`,
		"":                                   "",
		"CN=signer,O=keyward-test,L=Seattle": "CN=signer,O=keyward-test,L=Seattle",
	} {
		if got := safe(in); got != want {
			t.Errorf("safe(%q) = %q, want %q", in, got, want)
		}
	}
	if got := safeLines("first\n\x1b[1Asecond", "    "); got != "first\n    \\x1b[1Asecond" {
		t.Errorf("safeLines = %q", got)
	}
}
