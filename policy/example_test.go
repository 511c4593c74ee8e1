package policy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
)

// trustPolicy is an OCI trust policy document with two statements: one
// for a team's repository, and a wildcard statement that audits the rest.
const trustPolicy = `{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "team-a",
      "registryScopes": ["registry.example.com/team-a/app"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:team-a"],
      "trustedIdentities": ["x509.subject: C=US, ST=WA, L=Seattle, O=example, CN=team-a"]
    },
    {
      "name": "everything-else",
      "registryScopes": ["*"],
      "signatureVerification": {"level": "audit"},
      "trustStores": ["ca:company"],
      "trustedIdentities": ["*"]
    }
  ]
}`

// Parse validates a trust policy document held in memory. A document that
// passes every rule comes back as a read-only *Document.
func ExampleParse() {
	doc, err := policy.Parse([]byte(trustPolicy), "trustpolicy.json", policy.TypeAuto)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("type:", doc.Type(), "version:", doc.Version())
	for _, st := range doc.Statements() {
		line, col := st.Position()
		fmt.Printf("%s (line %d, column %d): level %s, scopes %v, trust stores %v\n",
			st.Name(), line, col, st.Level(), st.RegistryScopes(), st.TrustStores())
	}
	// Output:
	// type: oci version: 1.0
	// team-a (line 4, column 5): level strict, scopes [registry.example.com/team-a/app], trust stores [ca:team-a]
	// everything-else (line 11, column 5): level audit, scopes [*], trust stores [ca:company]
}

// A document that breaks rules is refused with a *ValidationError listing
// every problem, each with its JSON pointer, line and column, so that an
// editor or a CI log can point at the offending value.
func ExampleParse_invalid() {
	const broken = `{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "team-a",
      "registryScopes": ["registry.example.com/team-a/app:v1"],
      "signatureVerification": {"level": "strictest"},
      "trustStores": ["ca:team-a"],
      "trustedIdentities": ["*"]
    }
  ]
}`
	_, err := policy.Parse([]byte(broken), "trustpolicy.json", policy.TypeOCI)
	var verr *policy.ValidationError
	if !errors.As(err, &verr) {
		fmt.Println("unexpected error:", err)
		return
	}
	for _, p := range verr.Problems {
		fmt.Printf("%s:%d:%d at %s (%s)\n  %s\n  fix: %s\n", p.File, p.Line, p.Column, p.Pointer, p.Rule, p.Message, p.Fix)
	}
	// Output:
	// trustpolicy.json:6:26 at /trustPolicies/0/registryScopes/0 (scope-invalid)
	//   registry scope "registry.example.com/team-a/app:v1" is not valid, make sure it is a fully qualified repository without the scheme, protocol or tag. For example domain.com/my/repository or a local scope like local/myOCILayout
	//   fix: write the repository only, without scheme, tag or digest, in lowercase: "registry.example.com/team-a/app"
	// trustpolicy.json:7:42 at /trustPolicies/0/signatureVerification/level (level-invalid)
	//   trust policy statement "team-a" has invalid signatureVerification: invalid signature verification level "strictest"
	//   fix: use one of strict, permissive, audit or skip (case-sensitive)
}

// LoadFile reads a policy file with notation's checks (a regular file, not
// a symlink, bounded in size) and validates it like Parse; the type is
// taken from the file name.
func ExampleLoadFile() {
	dir, err := os.MkdirTemp("", "keyward-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "trustpolicy.json")
	if err := os.WriteFile(path, []byte(trustPolicy), 0o600); err != nil {
		fmt.Println(err)
		return
	}

	doc, err := policy.LoadFile(path, policy.TypeAuto)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(filepath.Base(doc.File()), doc.Type(), len(doc.Statements()), "statements")

	// A missing file is a *FileError, not a *ValidationError.
	_, err = policy.LoadFile(filepath.Join(dir, "missing.json"), policy.TypeAuto)
	var ferr *policy.FileError
	fmt.Println(errors.As(err, &ferr), ferr.Kind)
	// Output:
	// trustpolicy.json oci 2 statements
	// true not-found
}

// Select picks the statement that applies to an artifact reference: the
// statement listing the reference's repository, else the "*" statement.
func ExampleDocument_Select() {
	doc, err := policy.Parse([]byte(trustPolicy), "trustpolicy.json", policy.TypeOCI)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, raw := range []string{
		"registry.example.com/team-a/app:v1.2",
		"registry.example.com/team-b/api@sha256:8b5b3e1f4c0c2d7a9e6f5d4c3b2a19080706050403020100f0e0d0c0b0a09080",
	} {
		ref, err := reference.Parse(raw)
		if err != nil {
			fmt.Println(err)
			return
		}
		sel, err := doc.Select(ref)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s\n  statement %s (%s)\n  %s\n", ref.Scope, sel.Statement.Name(), sel.Match, sel.Reason)
	}
	// Output:
	// registry.example.com/team-a/app
	//   statement team-a (registry-scope)
	//   statement "team-a" lists the registry scope "registry.example.com/team-a/app", the artifact's repository (an exact match takes precedence over "*")
	// registry.example.com/team-b/api
	//   statement everything-else (wildcard-scope)
	//   no statement lists the repository "registry.example.com/team-b/api" in its registryScopes, so statement "everything-else" with the wildcard scope "*" applies
}

// Selection fails when no statement applies (an error wrapping
// ErrNoApplicableStatement, with notation's message) and when the scope
// breaks the registry scope grammar (a *ScopeError), before anything is
// fetched.
func ExampleDocument_Select_errors() {
	doc, err := policy.Parse([]byte(`{"version": "1.0", "trustPolicies": [{
		"name": "team-a", "registryScopes": ["registry.example.com/team-a/app"],
		"signatureVerification": {"level": "strict"},
		"trustStores": ["ca:team-a"], "trustedIdentities": ["*"]}]}`), "", policy.TypeOCI)
	if err != nil {
		fmt.Println(err)
		return
	}

	ref, err := reference.Parse("registry.example.com/team-b/api:v1")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = doc.Select(ref)
	fmt.Println(errors.Is(err, policy.ErrNoApplicableStatement))

	// An OCI layout reference carries the scope it is verified under.
	ref, err = reference.ParseLayout("/var/lib/images/app:v1", "Local/App")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = doc.Select(ref)
	var scopeErr *policy.ScopeError
	fmt.Println(errors.As(err, &scopeErr), scopeErr.Scope)
	// Output:
	// true
	// true Local/App
}
