package identity_test

import (
	"testing"

	"github.com/keyward/keyward/identity"
)

// TestLintIssuerOnly warns on identities that trust a whole issuer and not
// on identities that name a signer.
func TestLintIssuerOnly(t *testing.T) {
	const iss = "keyward: oidc.issuer=https://token.actions.githubusercontent.com "
	for id, want := range map[string]bool{
		iss[:len(iss)-1]:                                                 true,
		iss + "fulcio.build-trigger=push":                                true,
		iss + "fulcio.runner-environment=github-hosted":                  true,
		iss + "fulcio.source-repository-uri=https://github.com/acme/app": false,
		iss + "san.uri=https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main": false,
		"keyward: spki.sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=":                       false,
	} {
		parsed, err := identity.Parse(id, identity.NotationDN())
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got := false
		for _, w := range parsed.Lint() {
			if w.Rule == identity.LintIssuerOnly {
				got = true
			}
		}
		if got != want {
			t.Errorf("%s: issuer-only warning %v, want %v", id, got, want)
		}
	}
}
