package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/keyward/keyward/internal/jsonpos"
)

// ruleCase is a document breaking one rule, and where and how keyward must
// report it.
type ruleCase struct {
	rule string
	typ  DocumentType
	doc  string
	ptr  string
	// at is a substring of doc whose first occurrence starts where the
	// problem must point ("" for line 1, column 1).
	at    string
	atOff int // bytes to skip from the start of at
	stmt  string
	value string
	msg   []string
	// schema: the schema alone (as an editor uses it) must also flag ptr.
	schema bool
	// schemaOnly: the problem is the schema's own, reported when no rule
	// explains the value better; check it on the schema's problems.
	schemaOnly bool
}

// oci wraps statements in an OCI document, one statement per line group.
func oci(statements ...string) string {
	return "{\n  \"version\": \"1.0\",\n  \"trustPolicies\": [\n    " + strings.Join(statements, ",\n    ") + "\n  ]\n}\n"
}

// stmt is a valid OCI statement named name with some properties replaced
// (a "" value removes the property).
func stmt(name string, repl ...string) string {
	props := []string{
		`"name": "` + name + `"`,
		`"registryScopes": ["registry.example.com/` + name + `"]`,
		`"signatureVerification": {"level": "strict"}`,
		`"trustStores": ["ca:acme"]`,
		`"trustedIdentities": ["x509.subject: C=US, ST=WA, O=acme"]`,
	}
	for i := 0; i+1 < len(repl); i += 2 {
		key, val := `"`+repl[i]+`"`, repl[i+1]
		found := false
		for j, p := range props {
			if strings.HasPrefix(p, key+":") {
				found = true
				props[j] = key + ": " + val
				if val == "" {
					props[j] = ""
				}
			}
		}
		if !found {
			props = append(props, key+": "+val)
		}
	}
	var keep []string
	for _, p := range props {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return "{" + strings.Join(keep, ", ") + "}"
}

// blob wraps statements in a blob document; blobStmt drops registryScopes.
func blob(statements ...string) string { return oci(statements...) }

func blobStmt(name string, repl ...string) string {
	return stmt(name, append([]string{"registryScopes", ""}, repl...)...)
}

func ruleCases() []ruleCase {
	const sv = "/trustPolicies/0/signatureVerification"
	return []ruleCase{
		{rule: RuleJSONSyntax, doc: "{\n  \"version\": \"1.0\",\n  \"trustPolicies\": [,]\n}", at: ",]", msg: []string{"malformed trust policy", "invalid character ','"}},
		{rule: RuleDuplicateKey, doc: oci(`{"name": "a", "name": "b", "registryScopes": ["r.io/a"], "signatureVerification": {"level": "strict"}, "trustStores": ["ca:x"], "trustedIdentities": ["*"]}`),
			ptr: "/trustPolicies/0/name", at: `"name": "b"`, value: `"name"`, msg: []string{`duplicate key "name"`, "last value"}},
		{rule: RuleTooLarge, doc: strings.Repeat(" ", MaxDocumentSize+1), msg: []string{"more than the 16777216 bytes"}},
		{rule: RuleUnknownProperty, doc: oci(stmt("a", "trustedIdentity", `["*"]`)), ptr: "/trustPolicies/0/trustedIdentity", at: `"trustedIdentity"`, stmt: "a",
			value: `"trustedIdentity"`, msg: []string{`unknown property "trustedIdentity" in statement #1`, "notation ignores"}, schema: true},
		{rule: RuleSchemaPropertyName, doc: oci(stmt("a", "signatureVerification", `{"level": "strict", "override": {"integrity": 5}}`)),
			ptr: sv + "/override/integrity", at: `"integrity"`, stmt: "a", value: `"integrity"`, msg: []string{`property "integrity" is not allowed here`}, schema: true},
		{rule: RuleSchemaRequired, doc: oci(`{"name": "a", "registryScopes": ["r.io/a"]}`), ptr: "/trustPolicies/0/signatureVerification", at: `{"name"`, stmt: "a",
			msg: []string{`missing required property "signatureVerification" in statement #1`}, schema: true, schemaOnly: true},
		{rule: RuleSchemaPattern, doc: oci(stmt("a", "trustStores", `["ca:my store"]`)), ptr: "/trustPolicies/0/trustStores/0", at: `"ca:my store"`, stmt: "a", value: `"ca:my store"`,
			msg: []string{`element 0 of "trustStores" "ca:my store" does not have the required format`}, schema: true, schemaOnly: true},
		{rule: RuleSchemaType, doc: oci(stmt("a", "trustStores", `"ca:acme"`)), ptr: "/trustPolicies/0/trustStores", at: `"ca:acme"`, stmt: "a", value: `"ca:acme"`,
			msg: []string{`"trustStores" must be an array, not a string`}, schema: true},
		{rule: RuleSchemaType, doc: oci(stmt("a", "signatureVerification", `{"level": "strict", "override": {"expiry": 7}}`)),
			ptr: sv + "/override/expiry", at: "7", stmt: "a", value: "7", msg: []string{`"expiry" must be a string, not a number`}, schema: true},
		{rule: RuleSchemaEnum, doc: oci(stmt("a", "signatureVerification", `{"level": "Strict"}`)),
			ptr: sv + "/level", at: `"Strict"`, stmt: "a", value: `"Strict"`, msg: []string{`"level" is "Strict", not one of "strict", "permissive", "audit", "skip"`}, schema: true, schemaOnly: true},
		{rule: RuleVersionMissing, doc: "{\n  \"trustPolicies\": [" + stmt("a") + "]\n}", ptr: "/version", at: "",
			msg: []string{"trust policy document has empty version, version must be specified"}, schema: true},
		{rule: RuleVersionUnsupported, doc: strings.Replace(oci(stmt("a")), `"1.0"`, `"1.1"`, 1), ptr: "/version", at: `"1.1"`, value: `"1.1"`,
			msg: []string{`trust policy document uses unsupported version "1.1"`}, schema: true},
		{rule: RuleStatementsMissing, doc: "{\"version\": \"1.0\", \"trustPolicies\": []}", ptr: "/trustPolicies", at: "[]",
			msg: []string{"trust policy document can not have zero trust policy statements"}, schema: true},
		{rule: RuleNameMissing, doc: oci(stmt("a", "name", `""`)), ptr: "/trustPolicies/0/name", at: `""`, value: `""`,
			msg: []string{"a trust policy statement is missing a name, every statement requires a name"}, schema: true},
		{rule: RuleNameDuplicate, doc: oci(stmt("a"), stmt("a", "registryScopes", `["r.io/b"]`)), ptr: "/trustPolicies/1/name", at: `"a", "registryScopes": ["r.io/b"]`, stmt: "a",
			msg: []string{`multiple trust policy statements use the same name "a", statement names must be unique`}},
		{rule: RuleLevelMissing, doc: oci(stmt("a", "signatureVerification", `{}`)), ptr: sv + "/level", at: "{}", stmt: "a",
			msg: []string{`trust policy statement "a" has invalid signatureVerification: signature verification level is empty or missing`}, schema: true},
		{rule: RuleLevelInvalid, doc: oci(stmt("a", "signatureVerification", `{"level": "Strict"}`)), ptr: sv + "/level", at: `"Strict"`, stmt: "a", value: `"Strict"`,
			msg: []string{`invalid signature verification level "Strict"`}, schema: true},
		{rule: RuleOverrideOnSkip, doc: oci(stmt("a", "signatureVerification", `{"level": "skip", "override": {"revocation": "skip"}}`, "trustStores", "", "trustedIdentities", "")),
			ptr: sv + "/override", at: `{"revocation"`, stmt: "a", msg: []string{`signature verification level "skip" can't be used to customize signature verification`}, schema: true},
		{rule: RuleOverrideCheck, doc: oci(stmt("a", "signatureVerification", `{"level": "strict", "override": {"signature": "log"}}`)),
			ptr: sv + "/override/signature", at: `"log"`, stmt: "a", value: `"signature"`,
			msg: []string{`verification type "signature" in custom signature verification is not supported, supported values are ["integrity" "authenticity" "authenticTimestamp" "expiry" "revocation"]`}, schema: true},
		{rule: RuleOverrideAction, doc: oci(stmt("a", "signatureVerification", `{"level": "strict", "override": {"expiry": "warn"}}`)),
			ptr: sv + "/override/expiry", at: `"warn"`, stmt: "a", value: `"warn"`,
			msg: []string{`verification action "warn" in custom signature verification is not supported, supported values are ["enforce" "log" "skip"]`}, schema: true},
		{rule: RuleOverrideIntegrity, doc: oci(stmt("a", "signatureVerification", `{"level": "strict", "override": {"integrity": "log"}}`)),
			ptr: sv + "/override/integrity", at: `"log"`, stmt: "a", value: `"log"`, msg: []string{`"integrity" verification can not be overridden in custom signature verification`}, schema: true},
		{rule: RuleOverrideSkip, doc: oci(stmt("a", "signatureVerification", `{"level": "audit", "override": {"authenticity": "skip"}}`)),
			ptr: sv + "/override/authenticity", at: `"skip"`, stmt: "a", value: `"skip"`, msg: []string{`"authenticity" verification can not be skipped in custom signature verification`}, schema: true},
		{rule: RuleVerifyTimestamp, doc: oci(stmt("a", "signatureVerification", `{"level": "strict", "verifyTimestamp": "never"}`)),
			ptr: sv + "/verifyTimestamp", at: `"never"`, stmt: "a", value: `"never"`, msg: []string{`verifyTimestamp must be "always" or "afterCertExpiry", but got "never"`}, schema: true},
		{rule: RuleSkipWithTrust, doc: oci(stmt("a", "signatureVerification", `{"level": "skip"}`, "trustedIdentities", "")), ptr: "/trustPolicies/0/trustStores", at: `["ca:acme"]`, stmt: "a",
			msg: []string{`trust policy statement "a" is set to skip signature verification but configured with trust stores and/or trusted identities`}, schema: true},
		{rule: RuleTrustMissing, doc: oci(stmt("a", "trustedIdentities", "[]")), ptr: "/trustPolicies/0/trustedIdentities", at: "[]", stmt: "a",
			msg: []string{`trust policy statement "a" is either missing trust stores or trusted identities, both must be specified`}, schema: true},
		{rule: RuleStoreMalformed, doc: oci(stmt("a", "trustStores", `["ca:acme", "acme"]`)), ptr: "/trustPolicies/0/trustStores/1", at: `"acme"]`, stmt: "a", value: `"acme"`,
			msg: []string{`trust policy statement "a" has malformed trust store value "acme". The required format is <TrustStoreType>:<TrustStoreName>`}, schema: true},
		{rule: RuleStoreType, doc: oci(stmt("a", "trustStores", `["CA:acme"]`)), ptr: "/trustPolicies/0/trustStores/0", at: `"CA:acme"`, stmt: "a", value: `"CA:acme"`,
			msg: []string{`uses an unsupported trust store type "CA" in trust store value "CA:acme"`}, schema: true},
		{rule: RuleStoreName, doc: oci(stmt("a", "trustStores", `["ca:my store"]`)), ptr: "/trustPolicies/0/trustStores/0", at: `"ca:my store"`, stmt: "a",
			msg: []string{`uses an unsupported trust store name "my store" in trust store value "ca:my store". Named store name needs to follow [a-zA-Z0-9_.-]+ format`}, schema: true},
		{rule: RuleIdentityWildcardMixed, doc: oci(stmt("a", "trustedIdentities", `["x509.subject: C=US, ST=WA, O=acme", "*"]`)), ptr: "/trustPolicies/0/trustedIdentities", at: `["x509.subject: C=US, ST=WA, O=acme", "*"]`, stmt: "a",
			msg: []string{`uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values`}, schema: true},
		{rule: RuleIdentityEmpty, doc: oci(stmt("a", "trustedIdentities", `[""]`)), ptr: "/trustPolicies/0/trustedIdentities/0", at: `""]`, stmt: "a",
			msg: []string{`trust policy statement "a" has an empty trusted identity`}, schema: true},
		{rule: RuleIdentitySeparator, doc: oci(stmt("a", "trustedIdentities", `["C=US, ST=WA, O=acme"]`)), ptr: "/trustPolicies/0/trustedIdentities/0", at: `"C=US`, stmt: "a",
			msg: []string{`has trusted identity "C=US, ST=WA, O=acme" missing separator`}, schema: true},
		{rule: RuleIdentityX509Empty, doc: oci(stmt("a", "trustedIdentities", `["x509.subject:"]`)), ptr: "/trustPolicies/0/trustedIdentities/0", at: `"x509.subject:"`, stmt: "a",
			msg: []string{`has trusted identity "x509.subject:" without an identity value`}, schema: true},
		{rule: RuleIdentityDN, doc: oci(stmt("a", "trustedIdentities", `["x509.subject:C=US,C=IN"]`)), ptr: "/trustPolicies/0/trustedIdentities/0", at: `"x509.subject:C=US,C=IN"`, stmt: "a",
			msg: []string{`has trusted identity "x509.subject:C=US,C=IN" with invalid identity value: distinguished name (DN) "C=US,C=IN" has duplicate RDN attribute for "C", DN can only have unique RDN attributes`}},
		{rule: RuleIdentityKeyward, doc: oci(stmt("a", "trustedIdentities", `["keyward: subject=\"C=US, ST=WA, O=\u00e9\" san.url=x"]`)), ptr: "/trustPolicies/0/trustedIdentities/0", at: `san.url=x`, stmt: "a",
			value: `"keyward: subject=\"C=US, ST=WA, O=é\" san.url=x"`,
			msg:   []string{`has keyward identity "keyward: subject=\"C=US, ST=WA, O=é\" san.url=x" with an invalid clause at character 37: unknown key "san.url"`}},
		{rule: RuleIdentityKeyward, doc: oci(stmt("a", "trustedIdentities", `["x509.subject: C=US, ST=WA, O=a", "keyward: san.email=a@b.example san.uri~https://x/.*"]`)), ptr: "/trustPolicies/0/trustedIdentities/1", at: `san.uri~`, stmt: "a",
			msg: []string{`invalid clause at character 32: clause san.uri~... is a san.uri pattern, which needs an oidc.issuer clause`}},
		{rule: RuleIdentityOverlap, doc: oci(stmt("a", "trustedIdentities", `["x509.subject: C=US, ST=WA, O=acme, CN=b", "x509.subject: C=US, ST=WA, O=acme"]`)),
			ptr: "/trustPolicies/0/trustedIdentities/1", at: `"x509.subject: C=US, ST=WA, O=acme"]`, stmt: "a",
			msg: []string{`has overlapping x509 trustedIdentities, "x509.subject: C=US, ST=WA, O=acme" overlaps with "x509.subject: C=US, ST=WA, O=acme, CN=b"`}},
		{rule: RuleScopesMissing, doc: oci(stmt("a", "registryScopes", "[]")), ptr: "/trustPolicies/0/registryScopes", at: "[]", stmt: "a",
			msg: []string{`trust policy statement "a" has zero registry scopes, it must specify registry scopes with at least one value`}, schema: true},
		{rule: RuleScopeWildcardMixed, doc: oci(stmt("a", "registryScopes", `["r.io/a", "*"]`)), ptr: "/trustPolicies/0/registryScopes", at: `["r.io/a", "*"]`, stmt: "a",
			msg: []string{`uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values`}, schema: true},
		{rule: RuleScopeWildcardChars, doc: oci(stmt("a", "registryScopes", `["r.io/team/*"]`)), ptr: "/trustPolicies/0/registryScopes/0", at: `"r.io/team/*"`, stmt: "a", value: `"r.io/team/*"`,
			msg: []string{`registry scope "r.io/team/*" with wild card(s) is not valid, make sure it is a fully qualified repository`}, schema: true},
		{rule: RuleScopeInvalid, doc: oci(stmt("a", "registryScopes", `["r.io/App:v1"]`)), ptr: "/trustPolicies/0/registryScopes/0", at: `"r.io/App:v1"`, stmt: "a",
			msg: []string{`registry scope "r.io/App:v1" is not valid, make sure it is a fully qualified repository without the scheme, protocol or tag`}, schema: true},
		{rule: RuleScopeDuplicate, doc: oci(stmt("a", "registryScopes", `["r.io/x"]`), stmt("b", "registryScopes", `["r.io/y", "r.io/x"]`)),
			ptr: "/trustPolicies/1/registryScopes/1", at: `, "r.io/x"`, atOff: 2, stmt: "b",
			msg: []string{`registry scope "r.io/x" is present in multiple trust policy statements, one registry scope value can only be associated with one statement`}},
		{rule: RuleGlobalDuplicate, typ: TypeBlob, doc: blob(blobStmt("a", "globalPolicy", "true"), blobStmt("b", "globalPolicy", "true")),
			ptr: "/trustPolicies/1/globalPolicy", at: `true}` + "\n  ]", stmt: "b",
			msg: []string{"multiple blob trust policy statements have globalPolicy set to true. Only one trust policy statement can be marked as global policy"}, schema: false},
		{rule: RuleGlobalSkip, typ: TypeBlob, doc: blob(blobStmt("g", "globalPolicy", "true", "signatureVerification", `{"level": "skip"}`, "trustStores", "", "trustedIdentities", "")),
			ptr: "/trustPolicies/0/signatureVerification/level", at: `"skip"`, stmt: "g",
			msg: []string{"global blob trust policy statement cannot have verification level set to skip"}, schema: true},
	}
}

// position returns the 1-based line and column (in characters) of the
// first occurrence of sub in doc.
func position(t *testing.T, doc, sub string, skip int) (int, int) {
	t.Helper()
	if sub == "" {
		return 1, 1
	}
	i := strings.Index(doc, sub)
	if i < 0 {
		t.Fatalf("%q does not occur in the document", sub)
	}
	i += skip
	if strings.Count(doc, sub) > 1 {
		t.Fatalf("%q occurs more than once in the document", sub)
	}
	line := strings.Count(doc[:i], "\n") + 1
	col := utf8.RuneCountInString(doc[strings.LastIndex(doc[:i], "\n")+1:i]) + 1
	return line, col
}

// TestEveryRuleLocated checks, for every validation rule, that a document
// breaking it is reported with the rule, the JSON pointer, the line and
// column, the statement, the value and notation's message parts, and a fix.
func TestEveryRuleLocated(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range ruleCases() {
		covered[tc.rule] = true
		t.Run(tc.rule, func(t *testing.T) {
			typ := tc.typ
			if typ == TypeAuto {
				typ = TypeOCI
			}
			_, err := Parse([]byte(tc.doc), "policy.json", typ)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, want a *ValidationError", err)
			}
			if tc.schemaOnly {
				root, err := jsonpos.Parse([]byte(tc.doc))
				if err != nil {
					t.Fatal(err)
				}
				v := &validator{typ: typ, file: "policy.json", root: root, lines: jsonpos.NewLines([]byte(tc.doc))}
				ve = &ValidationError{Problems: v.schemaProblems()}
			}
			var p *Problem
			for i := range ve.Problems {
				if ve.Problems[i].Rule == tc.rule {
					p = &ve.Problems[i]
					break
				}
			}
			if p == nil {
				t.Fatalf("rule %s not reported; got:\n%v", tc.rule, ve)
			}
			line, col := 0, 0
			if tc.rule != RuleTooLarge {
				line, col = position(t, tc.doc, tc.at, tc.atOff)
			}
			if p.Pointer != tc.ptr || p.Line != line || p.Column != col {
				t.Errorf("at %s %d:%d, want %s %d:%d", p.Pointer, p.Line, p.Column, tc.ptr, line, col)
			}
			if p.Statement != tc.stmt {
				t.Errorf("statement %q, want %q", p.Statement, tc.stmt)
			}
			if tc.value != "" && p.Value != tc.value {
				t.Errorf("value %s, want %s", p.Value, tc.value)
			}
			for _, m := range tc.msg {
				if !strings.Contains(p.Message, m) {
					t.Errorf("message %q lacks %q", p.Message, m)
				}
			}
			if p.Fix == "" || p.Severity != SeverityError || p.File != "policy.json" {
				t.Errorf("fix %q, severity %q, file %q", p.Fix, p.Severity, p.File)
			}
			if !strings.HasPrefix(p.String(), fmt.Sprintf("policy.json:%d:%d: error: ", line, col)) && line > 0 {
				t.Errorf("String() = %s", p.String())
			}
		})
	}
	for _, r := range Rules() {
		if r.ID != RuleStoreUnusable && !covered[r.ID] {
			t.Errorf("rule %s has no test case", r.ID)
		}
	}
}

// TestSchemaAloneEnforcesRules validates the rule documents with the JSON
// Schema only, as an editor would: the schema must flag the same value for
// every rule it can express.
func TestSchemaAloneEnforcesRules(t *testing.T) {
	cs, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range ruleCases() {
		if !tc.schema {
			continue
		}
		t.Run(tc.rule, func(t *testing.T) {
			root, err := jsonpos.Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			s := cs.oci
			if tc.typ == TypeBlob {
				s = cs.blob
			}
			err = s.Validate(root.ToAny())
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("the schema accepts the document (%v)", err)
			}
			v := &validator{typ: tc.typ, root: root, lines: jsonpos.NewLines([]byte(tc.doc))}
			if v.typ == TypeAuto {
				v.typ = TypeOCI
			}
			var ptrs []string
			for _, p := range v.schemaProblems() {
				if p.Pointer == tc.ptr || strings.HasPrefix(tc.ptr, p.Pointer+"/") && p.Pointer != "" {
					return
				}
				ptrs = append(ptrs, p.Pointer+" "+p.Rule)
			}
			t.Errorf("the schema flags %v, not %s", ptrs, tc.ptr)
		})
	}
}

// TestSchemaTopLevelPicksTheType checks that the schema's entry point
// (what editors use) applies the blob rules to documents without
// registryScopes and the OCI rules otherwise.
func TestSchemaTopLevelPicksTheType(t *testing.T) {
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, strings.NewReader(string(Schema()))); err != nil {
		t.Fatal(err)
	}
	top, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	check := func(doc string, valid bool) {
		t.Helper()
		root, err := jsonpos.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := top.Validate(root.ToAny()); (err == nil) != valid {
			t.Errorf("valid=%v, want %v: %v\n%s", err == nil, valid, err, doc)
		}
	}
	check(oci(stmt("a")), true)
	check(blob(blobStmt("a", "globalPolicy", "true")), true)
	check(blob(blobStmt("a", "globalPolicy", "true"), blobStmt("b", "globalPolicy", "true")), false)
	check(oci(stmt("a", "globalPolicy", "true")), false)
	check(oci(stmt("a", "registryScopes", `["*"]`, "signatureVerification", `{"level": "skip"}`)), false)
}

// TestSchemaDescribesEveryProperty walks the schema: every property that
// editors show must have a description (directly or through its $ref).
func TestSchemaDescribesEveryProperty(t *testing.T) {
	cs, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := cs.doc.(map[string]any)["$id"].(string); id != SchemaID {
		t.Errorf("$id = %q, want %q", id, SchemaID)
	}
	if s, _ := cs.doc.(map[string]any)["$schema"].(string); s != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %q", s)
	}
	n := 0
	var walk func(v any, path string, constraint bool)
	walk = func(v any, path string, constraint bool) {
		switch t2 := v.(type) {
		case map[string]any:
			for k, c := range t2 {
				switch k {
				case "if", "then", "else", "not", "contains", "allOf":
					walk(c, path+"/"+k, true)
				case "properties":
					props, _ := c.(map[string]any)
					for name, ps := range props {
						if !constraint {
							n++
							m, _ := ps.(map[string]any)
							if d, _ := deref(cs.doc, m)["description"].(string); d == "" {
								t.Errorf("property %s/%s has no description", path, name)
							}
						}
						walk(ps, path+"/properties/"+name, constraint)
					}
				default:
					walk(c, path+"/"+k, constraint)
				}
			}
		case []any:
			for i, e := range t2 {
				walk(e, fmt.Sprintf("%s/%d", path, i), constraint)
			}
		}
	}
	walk(cs.doc, "", false)
	if n < 15 {
		t.Errorf("only %d properties found", n)
	}
}
