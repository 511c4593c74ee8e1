package scan

import (
	"fmt"
	"strings"
	"time"
)

// CatalogRefusedError says that a registry does not list its repositories
// and that the repositories must be named.
type CatalogRefusedError struct {
	// Host is the registry.
	Host string
	// Err is the registry's answer.
	Err error
}

func (e *CatalogRefusedError) Error() string {
	return fmt.Sprintf("%v; the scan does not report it as empty: name its repositories instead, as `keyward scan %s/REPOSITORY...`", e.Err, e.Host)
}

// Unwrap returns the registry's answer.
func (e *CatalogRefusedError) Unwrap() error { return e.Err }

// ByteCapError is recorded when an artifact's reads would pass the cap on
// bytes fetched per artifact.
type ByteCapError struct {
	// Cap is the cap, in bytes.
	Cap int64
	// What is what was about to be read.
	What string
}

func (e *ByteCapError) Error() string {
	return fmt.Sprintf("reading %s would pass the cap of %d bytes fetched per artifact (--max-bytes)", e.What, e.Cap)
}

// StateError says what is wrong with a state file.
type StateError struct {
	// Path is the state file.
	Path string
	// Line is the 1-based line, 0 for the whole file.
	Line int
	// Err is the problem.
	Err error
}

func (e *StateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "state file %s", e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	fmt.Fprintf(&b, ": %v; remove the file to start the scan afresh", e.Err)
	return b.String()
}

// Unwrap returns the problem.
func (e *StateError) Unwrap() error { return e.Err }

// ListBoundError says that a catalog or tag listing held names that are not
// repository or tag names (dropped), or went past its bound (the rest not
// scanned).
type ListBoundError struct {
	// What is the registry or repository listed; Noun "repository" or
	// "tag", Nouns its plural.
	What, Noun, Nouns string
	// Max is the bound; Reached whether the listing went past it.
	Max     int
	Reached bool
	// Invalid counts the names dropped.
	Invalid int
}

func (e *ListBoundError) Error() string {
	var parts []string
	if e.Reached {
		parts = append(parts, fmt.Sprintf("%s lists more than %d %s: only the first %d are scanned (scan it in parts: HOST/PREFIX, --repository, --tag-regex)", e.What, e.Max, e.Nouns, e.Max))
	}
	if e.Invalid > 0 {
		parts = append(parts, fmt.Sprintf("%s lists %d %s names that are not valid (OCI distribution-spec grammar): not scanned", e.What, e.Invalid, e.Noun))
	}
	return strings.Join(parts, "; ")
}

// RateLimitBudgetError is the error of every request to a registry after
// the scan has paused longer than its budget for that registry's 429
// answers: what remains of the registry is in error, never unsigned.
type RateLimitBudgetError struct {
	// Host is the registry.
	Host string
	// Budget is the most time paused for the registry's rate limit.
	Budget time.Duration
}

func (e *RateLimitBudgetError) Error() string {
	return fmt.Sprintf("registry %s kept answering 429 Too Many Requests: the scan paused for its rate limit longer than %s and asks it nothing more (raise --max-rate-limit-wait, or scan it later)", e.Host, e.Budget)
}
