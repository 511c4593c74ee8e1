package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/jsonpos"
)

// validator checks one parsed document: the schema, then every rule
// notation-go v1.3.2 applies (and, for blob documents, the rules of
// notation-go's unreleased blob policy and the specification). Unlike
// notation it does not stop at the first problem.
type validator struct {
	typ      DocumentType
	file     string
	lines    *jsonpos.Lines
	root     *jsonpos.Node
	problems []Problem
	// alwaysSchema runs the schema validator on every document.
	alwaysSchema bool
}

// rawStatement is one statement as written, before its rules pass. A nil
// node is an absent property; a node of the wrong JSON type is left to the
// schema's type error and skipped by the rules that read it.
type rawStatement struct {
	index   int
	ptr     string
	n       *jsonpos.Node
	name    string
	nameOK  bool // name present and a string
	sv      *jsonpos.Node
	level   string
	levelOK bool // level present and a string
	scopes  *jsonpos.Node
	stores  *jsonpos.Node
	ids     *jsonpos.Node
	global  *jsonpos.Node
}

func (v *validator) add(p Problem) {
	p.Severity = SeverityError
	p.File = v.file
	v.problems = append(v.problems, p)
}

// at fills the position of a problem from a node, or from the nearest
// existing ancestor of the pointer when the value is missing.
func (v *validator) at(p Problem, n *jsonpos.Node) Problem {
	if n == nil {
		ptr := p.Pointer
		for n == nil && ptr != "" {
			ptr = ptr[:strings.LastIndexByte(ptr, '/')]
			n = jsonpos.Lookup(v.root, ptr)
		}
		if n == nil {
			n = v.root
		}
	} else if p.Value == "" {
		p.Value = renderValue(n)
	}
	p.Line, p.Column = v.lines.Position(n.Off)
	return p
}

func isKind(n *jsonpos.Node, k jsonpos.Kind) bool { return n != nil && n.Kind == k }

// broken reports a value present with the wrong JSON type.
func broken(n *jsonpos.Node, k jsonpos.Kind) bool { return n != nil && n.Kind != k }

// run applies the rules, then the schema. The schema validator (the
// slowest step) runs only when a rule failed or when the document's
// structure deviates from what the schema allows (see conforms): a document
// that passes every rule and conforms cannot fail the schema, which
// TestDifferentialNotation and FuzzLoad check on every input.
func (v *validator) run() *Document {
	v.checkDuplicateKeys(v.root, "")
	root := v.root
	doc := &Document{typ: v.typ, byName: map[string]*Statement{}, byScope: map[string]*Statement{}}
	if v.root.Kind == jsonpos.KindNull {
		// encoding/json decodes null into an empty document, which notation
		// then finds without a version or statements; say so too.
		v.root = &jsonpos.Node{Kind: jsonpos.KindObject, Off: v.root.Off}
	}
	if v.root.Kind == jsonpos.KindObject {
		doc.version = v.checkVersion()
		doc.statements = v.checkStatements(doc)
	}
	v.root = root
	if len(v.problems) > 0 || v.alwaysSchema || !conforms(v.root, v.typ) {
		v.problems = mergeProblems(v.problems, v.schemaProblems())
	}
	sortProblems(v.problems)
	return doc
}

// conforms reports whether a document has the structure the schema allows:
// only the properties it defines (with exact names), each of its JSON type,
// and strings where it expects them. Values (enumerations, patterns,
// counts) are the rules' business; together, conforms and the rules imply
// the schema.
func conforms(root *jsonpos.Node, typ DocumentType) bool {
	if !objectWith(root, "version", "trustPolicies") || !isKind(root.Field("version", false), jsonpos.KindString) {
		return false
	}
	tp, _, _ := root.Get("trustPolicies")
	if !isKind(tp, jsonpos.KindArray) {
		return false
	}
	statementKeys := []string{"name", "registryScopes", "signatureVerification", "trustStores", "trustedIdentities"}
	if typ == TypeBlob {
		statementKeys = []string{"name", "signatureVerification", "trustStores", "trustedIdentities", "globalPolicy"}
	}
	for _, s := range tp.Elems {
		if !objectWith(s, statementKeys...) {
			return false
		}
		for _, m := range s.Members {
			var ok bool
			switch m.Key {
			case "name":
				ok = m.Val.Kind == jsonpos.KindString
			case "globalPolicy":
				ok = m.Val.Kind == jsonpos.KindBool
			case "signatureVerification":
				ok = conformsSV(m.Val)
			default:
				ok = stringArray(m.Val)
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

func conformsSV(sv *jsonpos.Node) bool {
	if !objectWith(sv, "level", "override", "verifyTimestamp") {
		return false
	}
	for _, m := range sv.Members {
		switch m.Key {
		case "override":
			if m.Val.Kind != jsonpos.KindObject {
				return false
			}
			for _, o := range m.Val.Members {
				if o.Val.Kind != jsonpos.KindString {
					return false
				}
			}
		default:
			if m.Val.Kind != jsonpos.KindString {
				return false
			}
		}
	}
	return true
}

// objectWith reports whether n is an object whose keys are all in allowed.
func objectWith(n *jsonpos.Node, allowed ...string) bool {
	if n == nil || n.Kind != jsonpos.KindObject {
		return false
	}
	for _, m := range n.Members {
		if !contains(allowed, m.Key) {
			return false
		}
	}
	return true
}

func stringArray(n *jsonpos.Node) bool {
	if n.Kind != jsonpos.KindArray {
		return false
	}
	for _, e := range n.Elems {
		if e.Kind != jsonpos.KindString {
			return false
		}
	}
	return true
}

// checkDuplicateKeys reports repeated object keys: encoding/json (and so
// notation) silently keeps the last one, which hides the first.
func (v *validator) checkDuplicateKeys(n *jsonpos.Node, ptr string) {
	switch n.Kind {
	case jsonpos.KindObject:
		seen := make(map[string]int, len(n.Members))
		for _, m := range n.Members {
			if first, dup := seen[m.Key]; dup {
				line, col := v.lines.Position(first)
				v.add(v.atOffset(Problem{
					Rule:    RuleDuplicateKey,
					Pointer: jsonpos.Join(ptr, m.Key),
					Value:   strconv.Quote(m.Key),
					Message: fmt.Sprintf("duplicate key %q: notation would silently use only the last value", m.Key),
					Fix:     fmt.Sprintf("keep one %q (the first is at line %d, column %d)", m.Key, line, col),
				}, m.KeyOff))
			} else {
				seen[m.Key] = m.KeyOff
			}
			v.checkDuplicateKeys(m.Val, jsonpos.Join(ptr, m.Key))
		}
	case jsonpos.KindArray:
		for i, e := range n.Elems {
			v.checkDuplicateKeys(e, ptr+"/"+strconv.Itoa(i))
		}
	}
}

func (v *validator) atOffset(p Problem, off int) Problem {
	p.Line, p.Column = v.lines.Position(off)
	return p
}

// mergeProblems adds the schema's problems to the rules' problems, leaving
// out those at a pointer a rule already explains in notation's words.
func mergeProblems(rules, schema []Problem) []Problem {
	covered := make(map[string]bool, len(rules))
	for _, p := range rules {
		covered[p.Pointer] = true
		for _, c := range p.covers {
			covered[c] = true
		}
	}
	for _, p := range schema {
		if !covered[p.Pointer] {
			rules = append(rules, p)
		}
	}
	return rules
}
