package policy

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/keyward/keyward/internal/jsonpos"
	"github.com/keyward/keyward/truststore"
)

// DocumentType says which kind of trust policy a document is.
type DocumentType string

// The document types. TypeAuto asks [Parse] to decide (see [DetectType]).
const (
	TypeAuto DocumentType = ""
	// TypeOCI is trustpolicy.json / trustpolicy.oci.json: statements
	// selected by registry scope.
	TypeOCI DocumentType = "oci"
	// TypeBlob is trustpolicy.blob.json: statements selected by name or as
	// the global policy.
	TypeBlob DocumentType = "blob"
)

// noun is how messages name the document type.
func (t DocumentType) noun() string {
	if t == TypeBlob {
		return "blob trust policy"
	}
	return "trust policy"
}

// String returns "oci" or "blob".
func (t DocumentType) String() string { return string(t) }

// Document is a trust policy document that passed every rule. It cannot be
// changed: accessors return copies, and statements are shared read-only
// values, so one Document may serve many goroutines.
type Document struct {
	typ        DocumentType
	file       string
	version    string
	statements []*Statement
	byName     map[string]*Statement
	byScope    map[string]*Statement // OCI: exact scopes
	wildcard   *Statement            // OCI: the "*" statement
	global     *Statement            // blob: the globalPolicy statement
	root       *jsonpos.Node         // for positions of values
	lines      *jsonpos.Lines
}

// Type returns the document's type.
func (d *Document) Type() DocumentType { return d.typ }

// File returns the file name the document was read from ("" for bytes).
func (d *Document) File() string { return d.file }

// Version returns the document's version ("1.0").
func (d *Document) Version() string { return d.version }

// Statements returns the statements in document order.
func (d *Document) Statements() []*Statement { return append([]*Statement(nil), d.statements...) }

// Statement returns the statement named name, or nil.
func (d *Document) Statement(name string) *Statement { return d.byName[name] }

// Position returns the 1-based line and column of the value at JSON
// pointer ptr, or zeros if there is none.
func (d *Document) Position(ptr string) (line, col int) {
	n := jsonpos.Lookup(d.root, ptr)
	if n == nil {
		return 0, 0
	}
	return d.lines.Position(n.Off)
}

// MarshalJSON encodes the document in a canonical form (fixed key order, no
// empty optional properties). Parsing the result gives an equal document.
func (d *Document) MarshalJSON() ([]byte, error) {
	type sv struct {
		Level           Level           `json:"level"`
		Override        json.RawMessage `json:"override,omitempty"`
		VerifyTimestamp TimestampOption `json:"verifyTimestamp,omitempty"`
	}
	type st struct {
		Name                  string   `json:"name"`
		RegistryScopes        []string `json:"registryScopes,omitempty"`
		SignatureVerification sv       `json:"signatureVerification"`
		TrustStores           []string `json:"trustStores,omitempty"`
		TrustedIdentities     []string `json:"trustedIdentities,omitempty"`
		GlobalPolicy          bool     `json:"globalPolicy,omitempty"`
	}
	out := struct {
		Version       string `json:"version"`
		TrustPolicies []st   `json:"trustPolicies"`
	}{Version: d.version, TrustPolicies: make([]st, len(d.statements))}
	for i, s := range d.statements {
		e := st{
			Name:                  s.name,
			SignatureVerification: sv{Level: s.level, VerifyTimestamp: s.verifyTimestamp},
			GlobalPolicy:          s.global,
		}
		if d.typ == TypeOCI {
			e.RegistryScopes = s.RegistryScopes()
		}
		if len(s.overrideOrder) > 0 {
			var b bytes.Buffer
			b.WriteByte('{')
			for j, c := range s.overrideOrder {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Quote(string(c)))
				b.WriteByte(':')
				b.WriteString(strconv.Quote(string(s.overrides[c])))
			}
			b.WriteByte('}')
			e.SignatureVerification.Override = b.Bytes()
		}
		for _, r := range s.stores {
			e.TrustStores = append(e.TrustStores, r.String())
		}
		for _, id := range s.identities {
			e.TrustedIdentities = append(e.TrustedIdentities, id.raw)
		}
		out.TrustPolicies[i] = e
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Statement is one trust policy statement of a loaded [Document]. It is
// read-only.
type Statement struct {
	index           int
	name            string
	scopes          []string
	level           Level
	overrides       map[Check]Action
	overrideOrder   []Check // as written
	verifyTimestamp TimestampOption
	stores          []truststore.Ref
	identities      []Identity
	global          bool
	pointer         string
	line, column    int
}

// Name returns the statement's name.
func (s *Statement) Name() string { return s.name }

// Index returns the statement's position in trustPolicies (0-based).
func (s *Statement) Index() int { return s.index }

// Pointer returns the statement's JSON pointer, e.g. "/trustPolicies/2".
func (s *Statement) Pointer() string { return s.pointer }

// Position returns the statement's 1-based line and column.
func (s *Statement) Position() (line, col int) { return s.line, s.column }

// RegistryScopes returns the statement's registry scopes (OCI documents).
func (s *Statement) RegistryScopes() []string { return append([]string(nil), s.scopes...) }

// IsWildcardScope reports whether the statement's scope is "*".
func (s *Statement) IsWildcardScope() bool { return len(s.scopes) == 1 && s.scopes[0] == WildcardScope }

// GlobalPolicy reports whether a blob statement is the global policy.
func (s *Statement) GlobalPolicy() bool { return s.global }

// Level returns the statement's verification level (before overrides).
func (s *Statement) Level() Level { return s.level }

// Overrides returns the statement's overrides (a copy).
func (s *Statement) Overrides() map[Check]Action {
	m := make(map[Check]Action, len(s.overrides))
	for k, v := range s.overrides {
		m[k] = v
	}
	return m
}

// IsCustom reports whether overrides customise the level (notation then
// names the level "custom").
func (s *Statement) IsCustom() bool { return len(s.overrides) > 0 }

// Action returns the effective action of check c under this statement
// (see [EffectiveAction]).
func (s *Statement) Action(c Check) Action { return EffectiveAction(s.level, s.overrides, c) }

// Actions returns every check's effective action and its source, in
// notation's order.
func (s *Statement) Actions() []CheckAction {
	checks := Checks()
	out := make([]CheckAction, len(checks))
	for i, c := range checks {
		ca := CheckAction{Check: c, Action: s.Action(c), LevelAction: LevelAction(s.level, c), Source: "level " + string(s.level)}
		if _, ok := s.overrides[c]; ok && s.level != LevelSkip && c != CheckIntegrity {
			ca.Source = "override"
		}
		out[i] = ca
	}
	return out
}

// SkipsVerification reports whether the statement's level is skip: notation
// then accepts artifacts without reading their signatures.
func (s *Statement) SkipsVerification() bool { return s.level == LevelSkip }

// VerifyTimestamp returns signatureVerification.verifyTimestamp ("" when
// unset, which means always).
func (s *Statement) VerifyTimestamp() TimestampOption { return s.verifyTimestamp }

// TrustStores returns the statement's trust store references.
func (s *Statement) TrustStores() []truststore.Ref { return append([]truststore.Ref(nil), s.stores...) }

// TrustStoresOfType returns the statement's references of type t without
// duplicates, in order (notation de-duplicates the same way).
func (s *Statement) TrustStoresOfType(t truststore.Type) []truststore.Ref {
	var out []truststore.Ref
	seen := map[truststore.Ref]bool{}
	for _, r := range s.stores {
		if r.Type == t && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// HasTrustStoreType reports whether the statement references a store of
// type t.
func (s *Statement) HasTrustStoreType(t truststore.Type) bool {
	for _, r := range s.stores {
		if r.Type == t {
			return true
		}
	}
	return false
}

// TrustedIdentities returns the statement's trusted identities, parsed.
func (s *Statement) TrustedIdentities() []Identity { return append([]Identity(nil), s.identities...) }

// TrustsAnyIdentity reports whether the trusted identities are ["*"].
func (s *Statement) TrustsAnyIdentity() bool {
	for _, id := range s.identities {
		if id.IsWildcard() {
			return true
		}
	}
	return false
}

// TimestampVerified reports whether notation verifies the RFC 3161
// timestamp of a notary.x509 signature under this statement (spec "Signature
// Verification", step Authentic timestamp): the statement has a tsa: store,
// authenticTimestamp is not skipped, and verifyTimestamp is always (or
// unset), or afterCertExpiry with chainExpired true (some certificate of
// the signing chain expired at verification time). When it is false every
// certificate of the chain must be valid at verification time instead.
func (s *Statement) TimestampVerified(chainExpired bool) bool {
	if !s.HasTrustStoreType(truststore.TypeTSA) || s.Action(CheckAuthenticTimestamp) == ActionSkip {
		return false
	}
	return s.verifyTimestamp != TimestampAfterCertExpiry || chainExpired
}

// x509Identities returns the statement's x509.subject identities.
func (s *Statement) x509Identities() []Identity {
	var out []Identity
	for _, id := range s.identities {
		if id.IsX509Subject() {
			out = append(out, id)
		}
	}
	return out
}
