package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"

	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/truststore"
)

// testDigest is a valid digest for references in tests.
const testDigest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// mustRef parses a registry reference.
func mustRef(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSelectMatchesNotation selects statements for references with
// keyward and with notation-go v1.3.2's GetApplicableTrustPolicy, given the
// reference as the notation CLI hands it over (repository@digest, after
// parsing the user's reference with the distribution grammar): the same
// statement, or both refuse with the same message. References the grammar
// refuses never reach selection, in notation as in keyward.
func TestSelectMatchesNotation(t *testing.T) {
	docs := map[string]string{
		"with wildcard": oci(stmt("app", "registryScopes", `["registry.example.com/app", "localhost:5000/app"]`), stmt("rest", "registryScopes", `["*"]`)),
		"without":       oci(stmt("app", "registryScopes", `["registry.example.com/app"]`)),
	}
	refs := []string{
		"registry.example.com/app@" + testDigest,
		"localhost:5000/app@" + testDigest,
		"registry.example.com/other@" + testDigest,
		"registry.example.com/App@" + testDigest,
		"docker.io/library/app@" + testDigest,
		"registry.example.com/app:v1@" + testDigest,
		"registry.example.com/app:v1",
		"[::1]:5000/app@" + testDigest,
		"registry.example.com/app",
		"https://registry.example.com/app@" + testDigest,
		"registry.example.com/app@",
		"@" + testDigest,
	}
	for name, src := range docs {
		doc, err := Parse([]byte(src), "", TypeOCI)
		if err != nil {
			t.Fatal(err)
		}
		var ndoc trustpolicy.Document
		if err := json.NewDecoder(bytes.NewReader([]byte(src))).Decode(&ndoc); err != nil {
			t.Fatal(err)
		}
		for _, raw := range refs {
			t.Run(name+"/"+raw, func(t *testing.T) {
				ref, err := reference.Parse(raw)
				if err != nil {
					var re *reference.Error
					if !errors.As(err, &re) {
						t.Fatalf("parse error %v is not a *reference.Error", err)
					}
					return
				}
				sel, err := doc.Select(ref)
				np, nerr := ndoc.GetApplicableTrustPolicy(ref.Scope + "@" + testDigest)
				switch {
				case err == nil && nerr == nil:
					if sel.Statement.Name() != np.Name {
						t.Fatalf("keyward selects %q, notation %q", sel.Statement.Name(), np.Name)
					}
				case err != nil && nerr != nil:
					want := strings.ReplaceAll(nerr.Error(), ref.Scope+"@"+testDigest, raw)
					if !strings.HasPrefix(err.Error(), want) {
						t.Fatalf("keyward %q, notation %q", err, nerr)
					}
				default:
					t.Fatalf("keyward %v, notation %v", err, nerr)
				}
			})
		}
	}
}

func TestSelectReasons(t *testing.T) {
	doc, err := Parse([]byte(oci(stmt("app", "registryScopes", `["registry.example.com/app"]`), stmt("rest", "registryScopes", `["*"]`))), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := doc.Select(mustRef(t, "registry.example.com/app:v2"))
	if err != nil || sel.Match != MatchScope || sel.Reference.Tag != "v2" || sel.Reference.Scope != "registry.example.com/app" || !strings.Contains(sel.Reason, `lists the registry scope "registry.example.com/app"`) {
		t.Errorf("tag: %+v %v", sel, err)
	}
	sel, err = doc.Select(mustRef(t, "registry.example.com/x@"+testDigest))
	if err != nil || sel.Match != MatchWildcard || sel.Statement.Name() != "rest" || sel.Reference.Digest != testDigest {
		t.Errorf("wildcard: %+v %v", sel, err)
	}
	if _, err := doc.SelectBlob("app"); err == nil {
		t.Error("SelectBlob on an OCI document")
	}
}

func TestSelectBlob(t *testing.T) {
	doc, err := Parse([]byte(blob(blobStmt("named"), blobStmt("global", "globalPolicy", "true"))), "", TypeBlob)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"": "global", "named": "named", "global": "global"} {
		sel, err := doc.SelectBlob(name)
		if err != nil || sel.Statement.Name() != want {
			t.Errorf("SelectBlob(%q) = %v, %v", name, sel.Statement, err)
		}
	}
	if _, err := doc.SelectBlob("  "); err == nil || err.Error() != "policy name cannot be empty" {
		t.Errorf("blank: %v", err)
	}
	if _, err := doc.SelectBlob("other"); !errors.Is(err, ErrNoApplicableStatement) || err.Error() != `no applicable blob trust policy with name "other"` {
		t.Errorf("unknown: %v", err)
	}
	noGlobal, err := Parse([]byte(blob(blobStmt("named"))), "", TypeBlob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noGlobal.SelectBlob(""); !errors.Is(err, ErrNoApplicableStatement) || err.Error() != "no global blob trust policy" {
		t.Errorf("no global: %v", err)
	}
	if _, err := doc.Select(mustRef(t, "registry.example.com/app@"+testDigest)); err == nil {
		t.Error("Select on a blob document")
	}
}

// TestEffectiveActions checks the level table and overrides against
// notation-go v1.3.2's GetVerificationLevel for every level and every
// valid override.
func TestEffectiveActions(t *testing.T) {
	for _, l := range Levels() {
		overrides := []map[Check]Action{nil}
		if l != LevelSkip {
			for _, c := range Checks()[1:] {
				for _, a := range Actions() {
					if a == ActionSkip && c != CheckRevocation {
						continue
					}
					overrides = append(overrides, map[Check]Action{c: a})
				}
			}
		}
		for _, ov := range overrides {
			nsv := trustpolicy.SignatureVerification{VerificationLevel: string(l), Override: map[trustpolicy.ValidationType]trustpolicy.ValidationAction{}}
			for c, a := range ov {
				nsv.Override[trustpolicy.ValidationType(c)] = trustpolicy.ValidationAction(a)
			}
			nl, err := nsv.GetVerificationLevel()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range Checks() {
				if got, want := EffectiveAction(l, ov, c), Action(nl.Enforcement[trustpolicy.ValidationType(c)]); got != want {
					t.Errorf("level %s override %v check %s: %s, notation %s", l, ov, c, got, want)
				}
			}
		}
	}
}

func TestStatementActionsAndTimestamps(t *testing.T) {
	doc, err := Parse([]byte(oci(
		stmt("ts", "signatureVerification", `{"level": "permissive", "override": {"revocation": "skip", "expiry": "enforce"}, "verifyTimestamp": "afterCertExpiry"}`, "trustStores", `["ca:a", "tsa:t", "ca:a"]`),
		stmt("plain", "trustStores", `["ca:a"]`),
	)), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	s := doc.Statement("ts")
	want := []CheckAction{
		{CheckIntegrity, ActionEnforce, "level permissive", ActionEnforce},
		{CheckAuthenticity, ActionEnforce, "level permissive", ActionEnforce},
		{CheckAuthenticTimestamp, ActionLog, "level permissive", ActionLog},
		{CheckExpiry, ActionEnforce, "override", ActionLog},
		{CheckRevocation, ActionSkip, "override", ActionLog},
	}
	got := s.Actions()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("check %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if !s.IsCustom() || s.TimestampVerified(false) || !s.TimestampVerified(true) || len(s.TrustStoresOfType(truststore.TypeCA)) != 1 {
		t.Errorf("custom %v, timestamps %v/%v, ca stores %v", s.IsCustom(), s.TimestampVerified(false), s.TimestampVerified(true), s.TrustStoresOfType(truststore.TypeCA))
	}
	if doc.Statement("plain").TimestampVerified(true) {
		t.Error("timestamps verified without a tsa store")
	}
	// Accessors hand out copies.
	s.Overrides()[CheckExpiry] = ActionLog
	s.RegistryScopes()[0] = "changed"
	if s.Action(CheckExpiry) != ActionEnforce || s.RegistryScopes()[0] == "changed" {
		t.Error("a caller changed the document")
	}
}
