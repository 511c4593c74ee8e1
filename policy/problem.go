package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Severity ranks a [Problem].
type Severity string

// Severities, from the most to the least serious. Validation problems are
// always errors; lint findings use all three.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// rank orders severities, the most serious first.
func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	default:
		return 2
	}
}

// AtLeast reports whether s is as serious as t or more.
func (s Severity) AtLeast(t Severity) bool { return s.rank() <= t.rank() }

// Problem is one thing wrong with (or, for lint, risky in) a trust policy
// document: where it is, what is wrong, with which value, and how to fix it.
type Problem struct {
	// Rule names the rule broken, stably, e.g. "statement-name-duplicate"
	// or "schema-additional-properties" (see [Rules]).
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// File is the document's file name, or "" when loaded from bytes.
	File string `json:"file,omitempty"`
	// Pointer is the RFC 6901 JSON pointer of the offending value (or of a
	// missing property); "" is the whole document.
	Pointer string `json:"pointer"`
	// Line and Column (1-based; columns count characters) locate the value,
	// or the object that lacks a property. Zero when unknown.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Statement is the name of the statement the problem is in, if any.
	Statement string `json:"statement,omitempty"`
	// Value is the offending value as it appears in the document (JSON), or
	// "" when the problem is a missing value.
	Value string `json:"value,omitempty"`
	// Message says what is wrong. For rules notation-go v1.3.2 enforces it
	// is notation's own message, word for word.
	Message string `json:"message"`
	// Fix says how to correct it.
	Fix string `json:"fix,omitempty"`

	// covers lists further pointers whose schema errors this problem
	// already explains (see mergeProblems).
	covers []string
}

// Location renders "file:line:col" (parts that are unknown are left out).
func (p Problem) Location() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d:%d", p.Line, p.Column)
	}
	return b.String()
}

// String renders the problem on one line:
//
//	file:line:col: severity: message (at pointer, statement "name"); fix: ...
func (p Problem) String() string {
	var b strings.Builder
	if loc := p.Location(); loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	b.WriteString(string(p.Severity))
	b.WriteString(": ")
	b.WriteString(p.Message)
	b.WriteString(" (at ")
	if p.Pointer == "" {
		b.WriteString("the document")
	} else {
		b.WriteString(p.Pointer)
	}
	if p.Statement != "" {
		fmt.Fprintf(&b, ", statement %q", p.Statement)
	}
	b.WriteString(")")
	if p.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// sortProblems orders problems by position, then pointer, then rule, so that
// output is stable.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Pointer != b.Pointer {
			return a.Pointer < b.Pointer
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
}
