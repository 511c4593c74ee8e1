package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/jsonpos"
)

// SchemaID is the stable $id of trustpolicy.schema.json. It is a name, not
// a location keyward fetches: the schema is embedded.
const SchemaID = "https://raw.githubusercontent.com/keyward/keyward/main/trustpolicy.schema.json"

// Schema returns the JSON Schema (draft 2020-12) for trust policy
// documents, trustpolicy.schema.json from the repository root.
func Schema() []byte { return keyward.TrustPolicySchema() }

// compiledSchema holds the compiled schema for each document type and the
// schema's own JSON, read to describe errors.
type compiledSchema struct {
	oci, blob *jsonschema.Schema
	doc       any
}

// loadSchema compiles the embedded schema once; the result is read-only.
var loadSchema = sync.OnceValues(func() (*compiledSchema, error) {
	raw := keyward.TrustPolicySchema()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("keyward does not load schemas from the network (%s)", u)
	}
	if err := c.AddResource(SchemaID, bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	oci, err := c.Compile(SchemaID + "#/$defs/ociDocument")
	if err != nil {
		return nil, err
	}
	blob, err := c.Compile(SchemaID + "#/$defs/blobDocument")
	if err != nil {
		return nil, err
	}
	if _, err := c.Compile(SchemaID); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	return &compiledSchema{oci: oci, blob: blob, doc: doc}, nil
})

// schemaProblems validates the document against the schema of its type and
// turns each failed keyword into a located problem.
func (v *validator) schemaProblems() []Problem {
	cs, err := loadSchema()
	if err != nil {
		return []Problem{{Rule: RuleSchemaInternal, Severity: SeverityError, File: v.file,
			Message: "the embedded trust policy schema does not compile: " + err.Error()}}
	}
	s := cs.oci
	if v.typ == TypeBlob {
		s = cs.blob
	}
	err = s.Validate(v.root.ToAny())
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Rule: RuleSchemaInternal, Severity: SeverityError, File: v.file, Message: "schema validation failed: " + err.Error()}}
	}
	var leaves []*jsonschema.ValidationError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	var out []Problem
	seen := map[string]bool{}
	for _, leaf := range leaves {
		for _, p := range v.schemaProblem(cs, leaf) {
			key := p.Rule + "\x00" + p.Pointer
			if seen[key] {
				continue
			}
			seen[key] = true
			p.Severity = SeverityError
			p.File = v.file
			out = append(out, p)
		}
	}
	return out
}

// schemaProblem describes one failed schema keyword.
func (v *validator) schemaProblem(cs *compiledSchema, e *jsonschema.ValidationError) []Problem {
	ptr := instancePointer(e.InstanceLocation)
	n := jsonpos.Lookup(v.root, ptr)
	kw, parent := schemaKeyword(cs.doc, e.AbsoluteKeywordLocation)
	stmt := v.statementName(ptr)
	base := Problem{Pointer: ptr, Statement: stmt}
	if strings.Contains(e.KeywordLocation, "/propertyNames/") {
		key := ""
		if toks := jsonpos.Tokens(ptr); len(toks) > 0 {
			key = toks[len(toks)-1]
		}
		p := base
		p.Rule, p.Value = RuleSchemaPropertyName, strconv.Quote(key)
		allowed := enumStrings(parent)
		p.Message = fmt.Sprintf("property %q is not allowed here", key)
		p.Fix = "use one of " + strings.Join(allowed, ", ") + didYouMean(key, allowed)
		return []Problem{v.keyProblem(p, ptr)}
	}
	switch kw {
	case "additionalProperties":
		if n == nil || n.Kind != jsonpos.KindObject {
			break
		}
		allowed := propertyNames(parent)
		var out []Problem
		for _, m := range n.Members {
			if contains(allowed, m.Key) {
				continue
			}
			p := base
			p.Rule = RuleUnknownProperty
			p.Pointer = jsonpos.Join(ptr, m.Key)
			p.Value = strconv.Quote(m.Key)
			p.Message = fmt.Sprintf("unknown property %q in %s: notation ignores unknown properties, so this setting has no effect", m.Key, describe(ptr))
			p.Fix = "remove it or correct its spelling" + didYouMean(m.Key, allowed) + "; allowed here: " + strings.Join(allowed, ", ")
			for _, a := range allowed {
				if strings.EqualFold(a, m.Key) {
					// encoding/json matches keys case-insensitively.
					p.Message = fmt.Sprintf("property %q in %s differs from %q only in case: notation reads it as %q, keyward requires the exact name", m.Key, describe(ptr), a, a)
					p.Fix = fmt.Sprintf("rename it %q", a)
				}
			}
			out = append(out, v.atOffset(p, m.KeyOff))
		}
		return out
	case "required":
		if n == nil || n.Kind != jsonpos.KindObject {
			break
		}
		var out []Problem
		for _, name := range stringList(mapGet(parent, "required")) {
			if _, _, ok := n.Get(name); ok {
				continue
			}
			p := base
			p.Rule = RuleSchemaRequired
			p.Pointer = jsonpos.Join(ptr, name)
			p.Message = fmt.Sprintf("missing required property %q in %s", name, describe(ptr))
			p.Fix = "add " + strconv.Quote(name) + ": " + propertyDescription(cs.doc, parent, name)
			out = append(out, v.at(p, nil))
		}
		return out
	case "type":
		p := base
		p.Rule = RuleSchemaType
		want := strings.Join(stringList(mapGet(parent, "type")), " or ")
		got := "missing"
		if n != nil {
			got = n.Kind.String()
		}
		p.Message = fmt.Sprintf("%s must be %s %s, not %s", describe(ptr), article(want), want, withArticle(got))
		p.Fix = schemaFix(parent)
		return []Problem{v.at(p, n)}
	case "enum":
		p := base
		p.Rule = RuleSchemaEnum
		allowed := enumStrings(parent)
		p.Message = fmt.Sprintf("%s is %s, not one of %s", describe(ptr), renderValue(n), strings.Join(quoteAll(allowed), ", "))
		p.Fix = "use one of " + strings.Join(quoteAll(allowed), ", ")
		if n != nil && n.Kind == jsonpos.KindString {
			p.Fix += didYouMean(n.Str, allowed)
		}
		return []Problem{v.at(p, n)}
	case "pattern":
		p := base
		p.Rule = RuleSchemaPattern
		p.Message = fmt.Sprintf("%s %s does not have the required format", describe(ptr), renderValue(n))
		p.Fix = schemaFix(parent)
		return []Problem{v.at(p, n)}
	}
	p := base
	p.Rule = "schema-" + kw
	p.Message = fmt.Sprintf("%s: %s (schema keyword %s)", describe(ptr), e.Message, kw)
	p.Fix = schemaFix(parent)
	return []Problem{v.at(p, n)}
}

// keyProblem places a problem about an object key at the key.
func (v *validator) keyProblem(p Problem, ptr string) Problem {
	toks := jsonpos.Tokens(ptr)
	if len(toks) == 0 {
		return v.at(p, nil)
	}
	parentPtr := jsonpos.Join("", toks[:len(toks)-1]...)
	obj := jsonpos.Lookup(v.root, parentPtr)
	if obj != nil && obj.Kind == jsonpos.KindObject {
		for i := len(obj.Members) - 1; i >= 0; i-- {
			if obj.Members[i].Key == toks[len(toks)-1] {
				return v.atOffset(p, obj.Members[i].KeyOff)
			}
		}
	}
	return v.at(p, nil)
}

// statementName returns the name of the statement a pointer is in.
func (v *validator) statementName(ptr string) string {
	toks := jsonpos.Tokens(ptr)
	if len(toks) < 2 || toks[0] != "trustPolicies" {
		return ""
	}
	s := jsonpos.Lookup(v.root, "/trustPolicies/"+toks[1])
	if name, _, ok := s.Get("name"); ok && name.Kind == jsonpos.KindString {
		return name.Str
	}
	return ""
}

// instancePointer turns the validator's instance location (tokens
// URL-path-escaped) into an RFC 6901 pointer.
func instancePointer(loc string) string {
	if loc == "" {
		return ""
	}
	var toks []string
	for _, t := range strings.Split(strings.TrimPrefix(loc, "/"), "/") {
		if u, err := url.PathUnescape(t); err == nil {
			t = u
		}
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		toks = append(toks, t)
	}
	return jsonpos.Join("", toks...)
}

// schemaKeyword resolves an absolute keyword location to the keyword's name
// and the schema object that holds it.
func schemaKeyword(doc any, abs string) (string, map[string]any) {
	_, frag, _ := strings.Cut(abs, "#")
	toks := jsonpos.Tokens(frag)
	if len(toks) == 0 {
		return "", nil
	}
	parent, _ := resolve(doc, jsonpos.Join("", toks[:len(toks)-1]...)).(map[string]any)
	return toks[len(toks)-1], parent
}

func resolve(doc any, ptr string) any {
	cur := doc
	for _, t := range jsonpos.Tokens(ptr) {
		if u, err := url.PathUnescape(t); err == nil {
			t = u
		}
		switch c := cur.(type) {
		case map[string]any:
			cur = c[t]
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// deref follows a local $ref.
func deref(doc any, s map[string]any) map[string]any {
	for i := 0; i < 8 && s != nil; i++ {
		ref, ok := s["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#") {
			return s
		}
		if _, has := s["description"]; has {
			return s
		}
		s, _ = resolve(doc, strings.TrimPrefix(ref, "#")).(map[string]any)
	}
	return s
}

func mapGet(m map[string]any, k string) any {
	if m == nil {
		return nil
	}
	return m[k]
}

func stringList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func enumStrings(s map[string]any) []string {
	var out []string
	list, _ := mapGet(s, "enum").([]any)
	for _, e := range list {
		if str, ok := e.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// propertyNames lists the properties a schema object declares.
func propertyNames(s map[string]any) []string {
	props, _ := mapGet(s, "properties").(map[string]any)
	var out []string
	for k := range props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func propertyDescription(doc any, parent map[string]any, name string) string {
	props, _ := mapGet(parent, "properties").(map[string]any)
	ps, _ := props[name].(map[string]any)
	if d, ok := mapGet(deref(doc, ps), "description").(string); ok {
		return d
	}
	return "see the schema (keyward policy schema)"
}

// schemaFix is the description of the schema the value failed, which
// says what the value must be.
func schemaFix(s map[string]any) string {
	if d, ok := mapGet(s, "description").(string); ok {
		return "expected: " + d
	}
	return "see the schema (keyward policy schema)"
}

// describe names the value at a pointer for messages.
func describe(ptr string) string {
	toks := jsonpos.Tokens(ptr)
	if len(toks) == 0 {
		return "the document"
	}
	last := toks[len(toks)-1]
	i, err := strconv.Atoi(last)
	switch {
	case err == nil && len(toks) == 2 && toks[0] == "trustPolicies":
		return fmt.Sprintf("statement #%d", i+1)
	case err == nil && len(toks) > 1:
		return fmt.Sprintf("element %d of %q", i, toks[len(toks)-2])
	}
	return strconv.Quote(last)
}

func withArticle(kind string) string {
	if kind == "null" || kind == "missing" {
		return kind
	}
	return article(kind) + " " + kind
}

func article(word string) string {
	if word == "" {
		return ""
	}
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
