package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/keyward/keyward/reference"
)

// WildcardScope is the registry scope that matches every repository no
// other statement lists.
const WildcardScope = "*"

// trustPolicyLink is the tutorial notation's messages point to.
const trustPolicyLink = "https://notaryproject.dev/docs/quickstart/#create-a-trust-policy"

// The registry scope grammar notation-go v1.3.2 enforces
// (validateRegistryScopeFormat, adapted from distribution's reference
// grammar): a domain with an optional port, '/', and a lowercase repository
// path.
var (
	scopeDomainRE     = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?$`)
	scopeRepositoryRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$`)
)

const scopeEnsure = "make sure it is a fully qualified repository without the scheme, protocol or tag. For example domain.com/my/repository or a local scope like local/myOCILayout"

// ScopeError is a registry scope (or the repository of an artifact
// reference) that breaks notation's grammar; the message is notation's.
type ScopeError struct {
	Scope string
	// Wildcard is true when the scope contains '*' (other than "*" alone).
	Wildcard bool
}

func (e *ScopeError) Error() string {
	if e.Wildcard {
		return fmt.Sprintf("registry scope %q with wild card(s) is not valid, "+scopeEnsure, e.Scope)
	}
	return fmt.Sprintf("registry scope %q is not valid, "+scopeEnsure, e.Scope)
}

// CheckRegistryScope checks one registry scope other than "*": a domain
// (with an optional port), '/', and a lowercase repository path; no scheme,
// tag, digest or wildcard. Scopes are compared exactly and case-sensitively,
// so the repository must be lowercase.
func CheckRegistryScope(scope string) error {
	if len(scope) > 1 && strings.Contains(scope, "*") {
		return &ScopeError{Scope: scope, Wildcard: true}
	}
	domain, repo, ok := strings.Cut(scope, "/")
	if !ok || domain == "" || repo == "" || !scopeDomainRE.MatchString(domain) || !scopeRepositoryRE.MatchString(repo) {
		return &ScopeError{Scope: scope}
	}
	return nil
}

// Match says how a statement was selected.
type Match string

// The ways a statement is selected.
const (
	// MatchScope: the statement lists the artifact's repository.
	MatchScope Match = "registry-scope"
	// MatchWildcard: no statement lists the repository; the "*" statement
	// applies.
	MatchWildcard Match = "wildcard-scope"
	// MatchName: a blob statement selected by name.
	MatchName Match = "name"
	// MatchGlobal: the blob global policy.
	MatchGlobal Match = "global-policy"
)

// Selection is the statement that applies to an artifact and why.
type Selection struct {
	Statement *Statement
	Match     Match
	// Reference is the artifact reference (OCI documents).
	Reference reference.Reference
	// Reason explains the choice in a sentence.
	Reason string
}

// ErrNoApplicableStatement is wrapped by selection failures where the
// document has no statement for the artifact (as opposed to a malformed
// reference).
var ErrNoApplicableStatement = errors.New("no applicable trust policy statement")

type noStatementError struct{ msg string }

func (e *noStatementError) Error() string { return e.msg }
func (e *noStatementError) Unwrap() error { return ErrNoApplicableStatement }

// Select returns the statement of an OCI document that applies to the
// artifact reference (spec "Selecting a trust policy based on artifact
// URI"): the statement whose registryScopes contains the reference's scope
// exactly (case-sensitive, no normalisation), else the "*" statement, else
// an error wrapping [ErrNoApplicableStatement] with notation's message. The
// scope must pass the registry scope grammar (a [*ScopeError] otherwise,
// notation-go v1.3.2 verifier/trustpolicy/oci.go
// GetApplicableTrustPolicy). A tag reference selects like its repository:
// selection reads only the scope.
func (d *Document) Select(ref reference.Reference) (Selection, error) {
	if d.typ != TypeOCI {
		return Selection{}, fmt.Errorf("a blob trust policy selects statements by artifact reference, not by name")
	}
	if err := CheckRegistryScope(ref.Scope); err != nil {
		return Selection{Reference: ref}, err
	}
	if s := d.byScope[ref.Scope]; s != nil {
		return Selection{Statement: s, Match: MatchScope, Reference: ref,
			Reason: fmt.Sprintf("statement %q lists the registry scope %q, the artifact's repository (an exact match takes precedence over \"*\")", s.name, ref.Scope)}, nil
	}
	if d.wildcard != nil {
		return Selection{Statement: d.wildcard, Match: MatchWildcard, Reference: ref,
			Reason: fmt.Sprintf("no statement lists the repository %q in its registryScopes, so statement %q with the wildcard scope \"*\" applies", ref.Scope, d.wildcard.name)}, nil
	}
	return Selection{Reference: ref}, &noStatementError{fmt.Sprintf("artifact %q has no applicable trust policy statement. Trust policy applicability for a given artifact is determined by registryScopes. To create a trust policy, see: %s", ref.Raw, trustPolicyLink)}
}

// SelectBlob returns the statement of a blob document for a blob: the
// statement named name, or with name "" the global policy (spec "Blob trust
// policy"). Errors carry notation-go's messages; a missing statement wraps
// [ErrNoApplicableStatement].
func (d *Document) SelectBlob(name string) (Selection, error) {
	if d.typ != TypeBlob {
		return Selection{}, fmt.Errorf("an OCI trust policy selects statements by artifact reference, not by name")
	}
	if name == "" {
		if d.global == nil {
			return Selection{}, &noStatementError{"no global blob trust policy"}
		}
		return Selection{Statement: d.global, Match: MatchGlobal,
			Reason: fmt.Sprintf("no policy name was given, so statement %q, the global policy, applies", d.global.name)}, nil
	}
	if strings.TrimSpace(name) == "" {
		return Selection{}, errors.New("policy name cannot be empty")
	}
	if s := d.byName[name]; s != nil {
		return Selection{Statement: s, Match: MatchName, Reason: fmt.Sprintf("statement %q has the policy name given", name)}, nil
	}
	return Selection{}, &noStatementError{fmt.Sprintf("no applicable blob trust policy with name %q", name)}
}
