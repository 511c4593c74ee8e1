// Package reference parses the artifact references keyward verifies, once,
// into a [Reference] that selection, resolution, listing and fetching all
// read: a registry reference host[:port]/repository followed by :tag,
// @digest or both, or an OCI image layout reference <path>@digest or
// <path>:tag with the registry scope that selects its trust policy statement
// (notation's --oci-layout and --scope).
//
// Registry references follow the distribution reference grammar, as the
// notation CLI parses them (oras-go registry.ParseReference); the trust
// policy's own grammar for registry scopes is checked where a statement is
// selected (package policy).
package reference

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
)

// Reference is a parsed artifact reference.
type Reference struct {
	// Raw is the reference as it was given.
	Raw string
	// Registry is host[:port] of a registry reference; "" for a layout.
	Registry string
	// Repository is the repository path in the registry; "" for a layout.
	Repository string
	// Path is the OCI image layout folder; "" for a registry reference.
	Path string
	// Tag is the tag the reference names. With a digest as well, the digest
	// decides and the tag is only reported.
	Tag string
	// Digest is the digest the reference names, "" for a tag reference.
	Digest digest.Digest
	// Scope is the registry scope the trust policy selects by:
	// Registry/Repository, or the scope given with a layout.
	Scope string
}

// IsLayout reports whether r names an artifact in an OCI image layout.
func (r Reference) IsLayout() bool { return r.Path != "" }

// String returns the reference as it was given.
func (r Reference) String() string { return r.Raw }

// Object returns what names the artifact inside its repository or layout:
// the digest if there is one, else the tag.
func (r Reference) Object() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// Pinned returns Scope@d, the name notation gives the artifact once its
// digest is known (the reference a signature's target is judged against).
func (r Reference) Pinned(d digest.Digest) string { return r.Scope + "@" + d.String() }

// Error reports a reference that cannot be parsed; its message says what is
// wrong and what form is expected.
type Error struct {
	// Raw is the reference as it was given.
	Raw string
	// Layout is true for an OCI image layout reference.
	Layout bool
	// Msg is the message.
	Msg string
	// Err is the cause, if any.
	Err error
}

// Error returns the message, with the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Parse parses host[:port]/repository followed by :tag, @digest or both. A
// reference without a tag or digest is refused, as notation refuses it.
func Parse(s string) (Reference, error) {
	ref, err := registry.ParseReference(s)
	if err != nil {
		return Reference{}, &Error{Raw: s, Msg: fmt.Sprintf("reference %q is not host[:port]/repository:tag or host[:port]/repository@sha256:digest", s), Err: err}
	}
	if ref.Reference == "" {
		return Reference{}, &Error{Raw: s, Msg: fmt.Sprintf("reference %q names no tag or digest: append :tag or @sha256:<digest>", s)}
	}
	r := Reference{Raw: s, Registry: ref.Registry, Repository: ref.Repository, Scope: ref.Registry + "/" + ref.Repository}
	name := s
	// registry.ParseReference validated what follows an '@' of the
	// repository part as a digest (its Valid Forms A and B), and took
	// anything else for a tag: no need to validate it again.
	if _, path, _ := strings.Cut(s, "/"); strings.Contains(path, "@") {
		r.Digest = digest.Digest(ref.Reference)
		name = s[:strings.LastIndex(s, "@")]
	}
	// The grammar has been checked: a ':' after the last '/' of what
	// precedes the digest starts the tag.
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		r.Tag = name[i+1:]
	}
	return r, nil
}

// ParseLayout parses <path>@<digest> or <path>:<tag> naming an artifact in
// the OCI image layout at path, as notation's --oci-layout takes it, whose
// trust policy statement is selected by scope. A ':' separates the tag only
// after the last '/', so folder names may contain colons.
func ParseLayout(s, scope string) (Reference, error) {
	r := Reference{Raw: s, Scope: scope}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		d, err := digest.Parse(s[i+1:])
		if err != nil {
			return Reference{}, &Error{Raw: s, Layout: true, Msg: fmt.Sprintf("OCI layout reference %q: invalid digest %q", s, s[i+1:]), Err: err}
		}
		r.Path, r.Digest = s[:i], d
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		r.Path, r.Tag = s[:i], s[i+1:]
	}
	if r.Path == "" && (r.Digest != "" || r.Tag != "") {
		return Reference{}, &Error{Raw: s, Layout: true, Msg: fmt.Sprintf("OCI layout reference %q names no layout folder before its tag or digest", s)}
	}
	if r.Digest == "" && r.Tag == "" {
		return Reference{}, &Error{Raw: s, Layout: true, Msg: fmt.Sprintf("OCI layout reference %q names no tag or digest: use <path>@sha256:<digest> or <path>:<tag>", s)}
	}
	return r, nil
}
