package serve

import (
	"fmt"
	"strings"
)

// ConfigError is a configuration file that cannot be used: each problem
// names where it is and how to fix it.
type ConfigError struct {
	// File is the configuration file.
	File string
	// Problems are what is wrong, in document order where known.
	Problems []ConfigProblem
}

// ConfigProblem is one thing wrong in a configuration file.
type ConfigProblem struct {
	// Pointer is the JSON pointer (RFC 6901) of the value at fault; "" is
	// the whole document.
	Pointer string
	// Line and Column locate the value (1-based); 0 when unknown.
	Line, Column int
	// Message says what is wrong; Fix says what to do.
	Message, Fix string
}

// String formats the problem as file:line:column: pointer: message (fix).
func (p ConfigProblem) String(file string) string {
	var b strings.Builder
	b.WriteString(file)
	switch {
	case p.Line > 0 && p.Column > 0:
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	case p.Line > 0:
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	ptr := p.Pointer
	if ptr == "" {
		ptr = "(document)"
	}
	fmt.Fprintf(&b, ": %s: %s", ptr, p.Message)
	if p.Fix != "" {
		fmt.Fprintf(&b, ": %s", p.Fix)
	}
	return b.String()
}

// Error lists every problem, one a line.
func (e *ConfigError) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("%s: invalid keyward serve configuration (serve-config.schema.json), %d problem(s):", e.File, len(e.Problems)))
	for _, p := range e.Problems {
		lines = append(lines, "  "+p.String(e.File))
	}
	return strings.Join(lines, "\n")
}

// SelectionError is a request whose policy set cannot be chosen: a set
// that selects namespaces by label is reached and the namespace's labels
// cannot be read. The request is denied (fail closed): the set the labels
// would choose may be stricter than the default.
type SelectionError struct {
	// Namespace is the request's namespace; Set the first set that needs
	// its labels.
	Namespace, Set string
	Err            error
}

func (e *SelectionError) Error() string {
	return fmt.Sprintf("keyward serve cannot choose the policy set of namespace %s (policy set %q selects namespaces by label): %v; denied, as the set the labels choose may be stricter than the default",
		e.Namespace, e.Set, e.Err)
}

// Unwrap returns the cause.
func (e *SelectionError) Unwrap() error { return e.Err }
