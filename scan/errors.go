package scan

import (
	"fmt"
	"strings"
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
