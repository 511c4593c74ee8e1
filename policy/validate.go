package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward/identity"
)

// validator checks one parsed document: the schema, then every rule
// notation-go v1.3.2 applies (and, for blob documents, the rules of
// notation-go's unreleased blob policy and the specification). Unlike
// notation it does not stop at the first problem.
type validator struct {
	typ      DocumentType
	file     string
	lines    *lineIndex
	root     *node
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
	n       *node
	name    string
	nameOK  bool // name present and a string
	sv      *node
	level   string
	levelOK bool // level present and a string
	scopes  *node
	stores  *node
	ids     *node
	global  *node
}

func (v *validator) add(p Problem) {
	p.Severity = SeverityError
	p.File = v.file
	v.problems = append(v.problems, p)
}

// at fills the position of a problem from a node, or from the nearest
// existing ancestor of the pointer when the value is missing.
func (v *validator) at(p Problem, n *node) Problem {
	if n == nil {
		ptr := p.Pointer
		for n == nil && ptr != "" {
			ptr = ptr[:strings.LastIndexByte(ptr, '/')]
			n = nodeAt(v.root, ptr)
		}
		if n == nil {
			n = v.root
		}
	} else if p.Value == "" {
		p.Value = renderValue(n)
	}
	p.Line, p.Column = v.lines.position(n.off)
	return p
}

func isKind(n *node, k kind) bool { return n != nil && n.kind == k }

// broken reports a value present with the wrong JSON type.
func broken(n *node, k kind) bool { return n != nil && n.kind != k }

// run applies the rules, then the schema. The schema validator (the
// slowest step) runs only when a rule failed or when the document's
// structure deviates from what the schema allows (see conforms): a document
// that passes every rule and conforms cannot fail the schema, which
// TestDifferentialNotation and FuzzLoad check on every input.
func (v *validator) run() *Document {
	v.checkDuplicateKeys(v.root, "")
	root := v.root
	doc := &Document{typ: v.typ, byName: map[string]*Statement{}, byScope: map[string]*Statement{}}
	if v.root.kind == kindNull {
		// encoding/json decodes null into an empty document, which notation
		// then finds without a version or statements; say so too.
		v.root = &node{kind: kindObject, off: v.root.off}
	}
	if v.root.kind == kindObject {
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
func conforms(root *node, typ DocumentType) bool {
	if !objectWith(root, "version", "trustPolicies") || !isKind(root.field("version", false), kindString) {
		return false
	}
	tp, _, _ := root.get("trustPolicies")
	if !isKind(tp, kindArray) {
		return false
	}
	statementKeys := []string{"name", "registryScopes", "signatureVerification", "trustStores", "trustedIdentities"}
	if typ == TypeBlob {
		statementKeys = []string{"name", "signatureVerification", "trustStores", "trustedIdentities", "globalPolicy"}
	}
	for _, s := range tp.elems {
		if !objectWith(s, statementKeys...) {
			return false
		}
		for _, m := range s.members {
			var ok bool
			switch m.key {
			case "name":
				ok = m.val.kind == kindString
			case "globalPolicy":
				ok = m.val.kind == kindBool
			case "signatureVerification":
				ok = conformsSV(m.val)
			default:
				ok = stringArray(m.val)
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

func conformsSV(sv *node) bool {
	if !objectWith(sv, "level", "override", "verifyTimestamp") {
		return false
	}
	for _, m := range sv.members {
		switch m.key {
		case "override":
			if m.val.kind != kindObject {
				return false
			}
			for _, o := range m.val.members {
				if o.val.kind != kindString {
					return false
				}
			}
		default:
			if m.val.kind != kindString {
				return false
			}
		}
	}
	return true
}

// objectWith reports whether n is an object whose keys are all in allowed.
func objectWith(n *node, allowed ...string) bool {
	if n == nil || n.kind != kindObject {
		return false
	}
	for _, m := range n.members {
		if !contains(allowed, m.key) {
			return false
		}
	}
	return true
}

func stringArray(n *node) bool {
	if n.kind != kindArray {
		return false
	}
	for _, e := range n.elems {
		if e.kind != kindString {
			return false
		}
	}
	return true
}

// checkDuplicateKeys reports repeated object keys: encoding/json (and so
// notation) silently keeps the last one, which hides the first.
func (v *validator) checkDuplicateKeys(n *node, ptr string) {
	switch n.kind {
	case kindObject:
		seen := make(map[string]int, len(n.members))
		for _, m := range n.members {
			if first, dup := seen[m.key]; dup {
				line, col := v.lines.position(first)
				v.add(v.atOffset(Problem{
					Rule:    RuleDuplicateKey,
					Pointer: pointerJoin(ptr, m.key),
					Value:   strconv.Quote(m.key),
					Message: fmt.Sprintf("duplicate key %q: notation would silently use only the last value", m.key),
					Fix:     fmt.Sprintf("keep one %q (the first is at line %d, column %d)", m.key, line, col),
				}, m.keyOff))
			} else {
				seen[m.key] = m.keyOff
			}
			v.checkDuplicateKeys(m.val, pointerJoin(ptr, m.key))
		}
	case kindArray:
		for i, e := range n.elems {
			v.checkDuplicateKeys(e, ptr+"/"+strconv.Itoa(i))
		}
	}
}

func (v *validator) atOffset(p Problem, off int) Problem {
	p.Line, p.Column = v.lines.position(off)
	return p
}

// checkVersion: spec "version ... MUST be 1.0"; notation-go Document.Validate.
func (v *validator) checkVersion() string {
	n := v.root.field("version", false)
	if broken(n, kindString) {
		return ""
	}
	noun := v.typ.noun()
	switch {
	case n == nil || n.str == "":
		msg := noun + " document has empty version, version must be specified"
		v.add(v.at(Problem{Rule: RuleVersionMissing, Pointer: "/version", Message: msg,
			Fix: `add "version": "1.0" at the top of the document`}, n))
		return ""
	case n.str != "1.0":
		v.add(v.at(Problem{Rule: RuleVersionUnsupported, Pointer: "/version",
			Message: fmt.Sprintf("%s document uses unsupported version %q", noun, n.str),
			Fix:     `use "version": "1.0", the only version notation supports`}, n))
		return ""
	}
	return n.str
}

func (v *validator) checkStatements(doc *Document) []*Statement {
	tp := v.root.field("trustPolicies", true)
	if broken(tp, kindArray) {
		return nil
	}
	if tp == nil || len(tp.elems) == 0 {
		v.add(v.at(Problem{Rule: RuleStatementsMissing, Pointer: "/trustPolicies",
			Message: v.typ.noun() + " document can not have zero trust policy statements",
			Fix:     `add at least one statement to "trustPolicies"`}, tp))
		return nil
	}
	raws := make([]*rawStatement, 0, len(tp.elems))
	for i, e := range tp.elems {
		if e.kind != kindObject {
			continue // the schema reports the type
		}
		raws = append(raws, v.readStatement(i, e))
	}

	v.checkNames(raws)
	statements := make([]*Statement, 0, len(raws))
	for _, rs := range raws {
		if s := v.checkCore(rs); s != nil {
			statements = append(statements, s)
		}
	}
	if v.typ == TypeOCI {
		v.checkScopes(raws, statements, doc)
	} else {
		v.checkGlobal(raws, statements, doc)
	}
	for _, s := range statements {
		doc.byName[s.name] = s
	}
	return statements
}

func (v *validator) readStatement(i int, n *node) *rawStatement {
	rs := &rawStatement{index: i, ptr: "/trustPolicies/" + strconv.Itoa(i), n: n}
	if name := n.field("name", false); name != nil && name.kind == kindString {
		rs.name, rs.nameOK = name.str, true
	}
	rs.sv = n.field("signatureVerification", false)
	if isKind(rs.sv, kindObject) {
		if l := rs.sv.field("level", false); l != nil && l.kind == kindString {
			rs.level, rs.levelOK = l.str, true
		}
	}
	rs.scopes = n.field("registryScopes", true)
	rs.stores = n.field("trustStores", true)
	rs.ids = n.field("trustedIdentities", true)
	rs.global = n.field("globalPolicy", false)
	return rs
}

// checkNames: every statement needs a name, unique in the document
// (notation-go Document.Validate and validatePolicyCore).
func (v *validator) checkNames(raws []*rawStatement) {
	first := map[string]*rawStatement{}
	for _, rs := range raws {
		nameNode := rs.n.field("name", false)
		if broken(nameNode, kindString) {
			continue
		}
		ptr := rs.ptr + "/name"
		if !rs.nameOK || rs.name == "" {
			v.add(v.at(Problem{Rule: RuleNameMissing, Pointer: ptr,
				Message: "a trust policy statement is missing a name, every statement requires a name",
				Fix:     fmt.Sprintf(`give statement #%d a unique "name"`, rs.index+1)}, nameNode))
			continue
		}
		if f, dup := first[rs.name]; dup {
			fl, fc := f.position(v)
			v.add(v.at(Problem{Rule: RuleNameDuplicate, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("multiple %s statements use the same name %q, statement names must be unique", v.typ.noun(), rs.name),
				Fix:     fmt.Sprintf("rename this statement; %q is already the name of statement #%d at line %d, column %d", rs.name, f.index+1, fl, fc)}, nameNode))
			continue
		}
		first[rs.name] = rs
	}
}

func (rs *rawStatement) position(v *validator) (int, int) { return v.lines.position(rs.n.off) }

// checkCore applies notation-go's validatePolicyCore: level and overrides,
// verifyTimestamp, trust stores and trusted identities. It returns the
// statement when none of these rules failed.
func (v *validator) checkCore(rs *rawStatement) *Statement {
	before := len(v.problems)
	name := rs.name
	st := &Statement{index: rs.index, name: name, pointer: rs.ptr}
	st.line, st.column = rs.position(v)
	svPtr := rs.ptr + "/signatureVerification"
	invalidSV := func(format string, args ...any) string {
		return fmt.Sprintf("trust policy statement %q has invalid signatureVerification: ", name) + fmt.Sprintf(format, args...)
	}

	// Level (spec "Signature Verification details").
	levelKnown := false
	if !broken(rs.sv, kindObject) {
		levelNode := rs.sv.field("level", false)
		switch {
		case broken(levelNode, kindString):
		case !rs.levelOK || rs.level == "":
			v.add(v.at(Problem{Rule: RuleLevelMissing, Pointer: svPtr + "/level", Statement: name,
				Message: invalidSV("signature verification level is empty or missing in the trust policy statement"),
				Fix:     `set "signatureVerification": {"level": "strict"} (or permissive, audit, skip)`,
				covers:  []string{svPtr}}, levelNode))
		case !Level(rs.level).Valid():
			v.add(v.at(Problem{Rule: RuleLevelInvalid, Pointer: svPtr + "/level", Statement: name,
				Message: invalidSV("invalid signature verification level %q", rs.level),
				Fix:     "use one of strict, permissive, audit or skip (case-sensitive)" + didYouMean(rs.level, levelNames())}, levelNode))
		default:
			levelKnown = true
			st.level = Level(rs.level)
		}
		st.overrides, st.overrideOrder = v.checkOverride(rs, st.level, levelKnown, invalidSV)
		st.verifyTimestamp = v.checkVerifyTimestamp(rs, invalidSV)
	}

	// Trust stores and identities against the level.
	if levelKnown && !broken(rs.stores, kindArray) && !broken(rs.ids, kindArray) {
		nStores, nIDs := arrayLen(rs.stores), arrayLen(rs.ids)
		storesPtr, idsPtr := rs.ptr+"/trustStores", rs.ptr+"/trustedIdentities"
		if st.level == LevelSkip {
			if nStores > 0 || nIDs > 0 {
				ptr, n := storesPtr, rs.stores
				if nStores == 0 {
					ptr, n = idsPtr, rs.ids
				}
				v.add(v.at(Problem{Rule: RuleSkipWithTrust, Pointer: ptr, Statement: name,
					Message: fmt.Sprintf("trust policy statement %q is set to skip signature verification but configured with trust stores and/or trusted identities, remove them if signature verification needs to be skipped", name),
					Fix:     `remove "trustStores" and "trustedIdentities" from this statement, or choose a level other than skip`,
					covers:  []string{storesPtr, idsPtr}}, n))
			}
		} else if nStores == 0 || nIDs == 0 {
			ptr, n := storesPtr, rs.stores
			if nStores > 0 {
				ptr, n = idsPtr, rs.ids
			}
			v.add(v.at(Problem{Rule: RuleTrustMissing, Pointer: ptr, Statement: name,
				Message: fmt.Sprintf("trust policy statement %q is either missing trust stores or trusted identities, both must be specified", name),
				Fix:     `list the trust stores ("trustStores": ["ca:<name>"]) and the trusted identities ("trustedIdentities": ["x509.subject: C=..., ST=..., O=..."]) of this statement`,
				covers:  []string{storesPtr, idsPtr}}, n))
		}
	}
	st.stores = v.checkTrustStores(rs)
	st.identities = v.checkIdentities(rs)
	if len(v.problems) > before || !levelKnown || !rs.nameOK || rs.name == "" {
		return nil
	}
	return st
}

func arrayLen(n *node) int {
	if n == nil {
		return 0
	}
	return len(n.elems)
}

func levelNames() []string {
	var out []string
	for _, l := range Levels() {
		out = append(out, string(l))
	}
	return out
}

// checkOverride: notation-go SignatureVerification.GetVerificationLevel.
// For each key the first failing check is reported, in notation's order.
func (v *validator) checkOverride(rs *rawStatement, level Level, levelKnown bool, invalidSV func(string, ...any) string) (map[Check]Action, []Check) {
	ov := rs.sv.field("override", true)
	if ov == nil || ov.kind != kindObject || len(ov.members) == 0 {
		return nil, nil
	}
	ovPtr := rs.ptr + "/signatureVerification/override"
	if levelKnown && level == LevelSkip {
		v.add(v.at(Problem{Rule: RuleOverrideOnSkip, Pointer: ovPtr, Statement: rs.name,
			Message: invalidSV("signature verification level %q can't be used to customize signature verification", level),
			Fix:     `remove "override": a skip statement runs no check`}, ov))
	}
	out := map[Check]Action{}
	var order []Check
	seen := map[string]bool{}
	for i := len(ov.members) - 1; i >= 0; i-- { // the last of repeated keys wins
		m := ov.members[i]
		if seen[m.key] {
			continue
		}
		seen[m.key] = true
		ptr := pointerJoin(ovPtr, m.key)
		c := Check(m.key)
		if !c.Valid() {
			v.add(v.at(Problem{Rule: RuleOverrideCheck, Pointer: ptr, Statement: rs.name, Value: strconv.Quote(m.key),
				Message: invalidSV("verification type %q in custom signature verification is not supported, supported values are %q", m.key, Checks()),
				Fix:     "override one of authenticity, authenticTimestamp, expiry or revocation" + didYouMean(m.key, checkNames())}, m.val))
			continue
		}
		if m.val.kind != kindString {
			continue
		}
		a := Action(m.val.str)
		switch {
		case !a.Valid():
			v.add(v.at(Problem{Rule: RuleOverrideAction, Pointer: ptr, Statement: rs.name,
				Message: invalidSV("verification action %q in custom signature verification is not supported, supported values are %q", m.val.str, Actions()),
				Fix:     "use enforce or log (revocation also accepts skip)" + didYouMean(m.val.str, []string{"enforce", "log", "skip"})}, m.val))
		case c == CheckIntegrity:
			v.add(v.at(Problem{Rule: RuleOverrideIntegrity, Pointer: ptr, Statement: rs.name,
				Message: invalidSV("%q verification can not be overridden in custom signature verification", m.key),
				Fix:     `remove "integrity": it is always enforced (except at level skip)`}, m.val))
		case c != CheckRevocation && a == ActionSkip:
			v.add(v.at(Problem{Rule: RuleOverrideSkip, Pointer: ptr, Statement: rs.name,
				Message: invalidSV("%q verification can not be skipped in custom signature verification", m.key),
				Fix:     fmt.Sprintf("use %q: log to record failures without failing verification; only revocation can be skipped", m.key)}, m.val))
		default:
			out[c] = a
			order = append(order, c)
		}
	}
	// order was built from the end; restore document order.
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return out, order
}

func checkNames() []string {
	var out []string
	for _, c := range Checks()[1:] {
		out = append(out, string(c))
	}
	return out
}

// checkVerifyTimestamp: notation-go validatePolicyCore.
func (v *validator) checkVerifyTimestamp(rs *rawStatement, invalidSV func(string, ...any) string) TimestampOption {
	n := rs.sv.field("verifyTimestamp", false)
	if n == nil || n.kind != kindString {
		return ""
	}
	o := TimestampOption(n.str)
	if !o.Valid() {
		v.add(v.at(Problem{Rule: RuleVerifyTimestamp, Pointer: rs.ptr + "/signatureVerification/verifyTimestamp", Statement: rs.name,
			Message: invalidSV("verifyTimestamp must be %q or %q, but got %q", TimestampAlways, TimestampAfterCertExpiry, n.str),
			Fix:     `use "always" (the default) or "afterCertExpiry"` + didYouMean(n.str, []string{"always", "afterCertExpiry"})}, n))
		return ""
	}
	return o
}

// checkTrustStores: notation-go validateTrustStore, for every value.
func (v *validator) checkTrustStores(rs *rawStatement) []StoreRef {
	if !isKind(rs.stores, kindArray) {
		return nil
	}
	var refs []StoreRef
	for j, e := range rs.stores.elems {
		if e.kind != kindString {
			continue
		}
		ptr := rs.ptr + "/trustStores/" + strconv.Itoa(j)
		t, name, ok := strings.Cut(e.str, ":")
		switch {
		case !ok:
			v.add(v.at(Problem{Rule: RuleStoreMalformed, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q has malformed trust store value %q. The required format is <TrustStoreType>:<TrustStoreName>", rs.name, e.str),
				Fix:     storeRefFix(e.str)}, e))
		case !StoreType(t).Valid():
			v.add(v.at(Problem{Rule: RuleStoreType, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q uses an unsupported trust store type %q in trust store value %q", rs.name, t, e.str),
				Fix:     "use the type ca, signingAuthority or tsa (case-sensitive)" + didYouMean(t, []string{"ca", "signingAuthority", "tsa"})}, e))
		case !ValidStoreName(name):
			v.add(v.at(Problem{Rule: RuleStoreName, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q uses an unsupported trust store name %q in trust store value %q. Named store name needs to follow [a-zA-Z0-9_.-]+ format", rs.name, name, e.str),
				Fix:     "name the store (and its folder) with letters, digits, '_', '.' and '-' only"}, e))
		default:
			refs = append(refs, StoreRef{Type: StoreType(t), Name: name})
		}
	}
	return refs
}

// checkIdentities: notation-go validateTrustedIdentities and the DN rules
// of internal/pkix (spec "Trusted Identities Constraints").
func (v *validator) checkIdentities(rs *rawStatement) []Identity {
	if !isKind(rs.ids, kindArray) {
		return nil
	}
	idsPtr := rs.ptr + "/trustedIdentities"
	name := rs.name
	if len(rs.ids.elems) > 1 {
		for _, e := range rs.ids.elems {
			if e.kind == kindString && e.str == WildcardIdentity {
				v.add(v.at(Problem{Rule: RuleIdentityWildcardMixed, Pointer: idsPtr, Statement: name,
					Message: fmt.Sprintf("trust policy statement %q uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values", name),
					Fix:     `keep either ["*"] (any signer the trust stores vouch for) or the list of x509.subject identities`}, rs.ids))
				break
			}
		}
	}
	type parsed struct {
		j   int
		raw string
		dn  DN
	}
	var ids []Identity
	var dns []parsed
	for j, e := range rs.ids.elems {
		if e.kind != kindString {
			continue
		}
		ptr := idsPtr + "/" + strconv.Itoa(j)
		id := e.str
		if id == "" {
			v.add(v.at(Problem{Rule: RuleIdentityEmpty, Pointer: ptr, Statement: name,
				Message: fmt.Sprintf("trust policy statement %q has an empty trusted identity", name),
				Fix:     `remove the empty string, or write "x509.subject: C=<country>, ST=<state>, O=<organization>[, ...]"`}, e))
			continue
		}
		if id == WildcardIdentity {
			ids = append(ids, Identity{raw: id})
			continue
		}
		prefix, value, ok := strings.Cut(id, ":")
		if !ok {
			v.add(v.at(Problem{Rule: RuleIdentitySeparator, Pointer: ptr, Statement: name,
				Message: fmt.Sprintf("trust policy statement %q has trusted identity %q missing separator", name, id),
				Fix:     fmt.Sprintf(`prefix the identity with its type and ':', e.g. "x509.subject:%s"`, id)}, e))
			continue
		}
		if prefix != X509SubjectPrefix {
			// Other prefixes are for verification plugins; notation
			// accepts them unchecked. keyward checks its own.
			if prefix == identity.Prefix {
				v.checkKeywardIdentity(name, ptr, e)
			}
			ids = append(ids, Identity{raw: id, prefix: prefix, value: value})
			continue
		}
		if value == "" {
			v.add(v.at(Problem{Rule: RuleIdentityX509Empty, Pointer: ptr, Statement: name,
				Message: fmt.Sprintf("trust policy statement %q has trusted identity %q without an identity value", name, id),
				Fix:     `write the signer's distinguished name after "x509.subject:", e.g. "x509.subject: C=US, ST=WA, O=example"`}, e))
			continue
		}
		dn, err := ParseDN(value)
		if err != nil {
			v.add(v.at(Problem{Rule: RuleIdentityDN, Pointer: ptr, Statement: name,
				Message: fmt.Sprintf("trust policy statement %q has trusted identity %q with invalid identity value: %v", name, id, err),
				Fix:     dnFix(err.(*DNError))}, e))
			continue
		}
		ids = append(ids, Identity{raw: id, prefix: prefix, value: value, dn: dn})
		dns = append(dns, parsed{j: j, raw: id, dn: dn})
	}
	// Overlap: notation-go validateOverlappingDNs reports a pair where one
	// DN is a subset of the other; each pair is reported once, oriented as
	// notation would print it.
	for b := 1; b < len(dns); b++ {
		for a := 0; a < b; a++ {
			x, y := dns[a], dns[b]
			if !x.dn.SubsetOf(y.dn) {
				if !y.dn.SubsetOf(x.dn) {
					continue
				}
				x, y = y, x
			}
			p := v.at(Problem{Rule: RuleIdentityOverlap, Pointer: idsPtr + "/" + strconv.Itoa(dns[b].j), Statement: name,
				Message: fmt.Sprintf("trust policy statement %q has overlapping x509 trustedIdentities, %q overlaps with %q", name, x.raw, y.raw),
				Fix:     fmt.Sprintf("remove one of them: every certificate %q matches is also matched by %q", y.raw, x.raw)}, rs.ids.elems[dns[b].j])
			v.add(p)
		}
	}
	return ids
}

func dnFix(e *DNError) string {
	switch e.Kind {
	case "unsupported-hex":
		return "write the attribute value as text: notation does not read '#'-encoded (BER) values"
	case "multi-valued":
		return "separate attributes with ',' instead of '+': multi-valued RDNs are not supported"
	case "duplicate":
		return fmt.Sprintf("keep one %s attribute: a trusted identity can give each attribute once", e.Attribute)
	case "missing-mandatory":
		return fmt.Sprintf("add %s=<value>: trusted identities need C, ST (or S) and O", e.Attribute)
	}
	return `write an RFC 4514 DN such as "C=US, ST=WA, O=example, CN=signer", escaping ',', '+', ';', '"', '\', '<', '>' and '=' in values with '\'`
}

// checkScopes: notation-go validateRegistryScopes (spec "Registry scopes").
func (v *validator) checkScopes(raws []*rawStatement, statements []*Statement, doc *Document) {
	type use struct {
		stmt string
		ptr  string
		n    *node
	}
	firstUse := map[string]use{}
	scopesOf := map[int][]string{}
	valid := map[int]bool{}
	for _, rs := range raws {
		ptr := rs.ptr + "/registryScopes"
		if broken(rs.scopes, kindArray) {
			continue
		}
		if arrayLen(rs.scopes) == 0 {
			v.add(v.at(Problem{Rule: RuleScopesMissing, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q has zero registry scopes, it must specify registry scopes with at least one value", rs.name),
				Fix:     `list the repositories this statement applies to, e.g. "registryScopes": ["registry.example.com/team/app"], or ["*"] for every other repository`}, rs.scopes))
			continue
		}
		ok := true
		if len(rs.scopes.elems) > 1 {
			for _, e := range rs.scopes.elems {
				if e.kind == kindString && e.str == WildcardScope {
					ok = false
					v.add(v.at(Problem{Rule: RuleScopeWildcardMixed, Pointer: ptr, Statement: rs.name,
						Message: fmt.Sprintf("trust policy statement %q uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values", rs.name),
						Fix:     `move "*" into a statement of its own, or remove it`}, rs.scopes))
					break
				}
			}
		}
		var scopes []string
		for j, e := range rs.scopes.elems {
			if e.kind != kindString {
				ok = false
				continue
			}
			sptr := ptr + "/" + strconv.Itoa(j)
			if e.str != WildcardScope {
				if err := CheckRegistryScope(e.str); err != nil {
					ok = false
					rule := RuleScopeInvalid
					if err.(*ScopeError).Wildcard {
						rule = RuleScopeWildcardChars
					}
					v.add(v.at(Problem{Rule: rule, Pointer: sptr, Statement: rs.name,
						Message: err.Error(), Fix: scopeFix(e.str)}, e))
				}
			}
			if u, dup := firstUse[e.str]; dup {
				ok = false
				line, col := v.lines.position(u.n.off)
				v.add(v.at(Problem{Rule: RuleScopeDuplicate, Pointer: sptr, Statement: rs.name,
					Message: fmt.Sprintf("registry scope %q is present in multiple trust policy statements, one registry scope value can only be associated with one statement", e.str),
					Fix:     fmt.Sprintf("keep %q in one statement only: it is already listed by statement %q at line %d, column %d", e.str, u.stmt, line, col)}, e))
			} else {
				firstUse[e.str] = use{stmt: rs.name, ptr: sptr, n: e}
			}
			scopes = append(scopes, e.str)
		}
		scopesOf[rs.index] = scopes
		valid[rs.index] = ok
	}
	for _, s := range statements {
		if !valid[s.index] {
			continue
		}
		s.scopes = scopesOf[s.index]
		for _, sc := range s.scopes {
			if sc == WildcardScope {
				doc.wildcard = s
			} else {
				doc.byScope[sc] = s
			}
		}
	}
}

// scopeFix suggests a corrected registry scope.
func scopeFix(scope string) string {
	s := scope
	for _, p := range []string{"https://", "http://", "oci://", "docker://"} {
		s = strings.TrimPrefix(s, p)
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[:i]
	}
	if repo, _, ok := cutTag(s); ok {
		s = repo
	}
	if d, r, ok := strings.Cut(s, "/"); ok {
		s = d + "/" + strings.ToLower(r)
	}
	s = strings.TrimSuffix(s, "/")
	if strings.Contains(scope, "*") {
		return `list each repository exactly (scopes have no wildcards or prefixes), or use "*" alone for every repository no other statement lists`
	}
	if s != scope && CheckRegistryScope(s) == nil {
		return fmt.Sprintf("write the repository only, without scheme, tag or digest, in lowercase: %q", s)
	}
	return `write host[:port]/repository in lowercase, without scheme, tag or digest, e.g. "registry.example.com/team/app"`
}

// checkGlobal: the blob rules (notation-go main BlobDocument.Validate; the
// specification forbids a global skip statement).
func (v *validator) checkGlobal(raws []*rawStatement, statements []*Statement, doc *Document) {
	var first *rawStatement
	byIndex := map[int]*Statement{}
	for _, s := range statements {
		byIndex[s.index] = s
	}
	for _, rs := range raws {
		if !isKind(rs.global, kindBool) || !rs.global.boolean {
			continue
		}
		ptr := rs.ptr + "/globalPolicy"
		if first != nil {
			fl, fc := first.position(v)
			v.add(v.at(Problem{Rule: RuleGlobalDuplicate, Pointer: ptr, Statement: rs.name,
				Message: "multiple blob trust policy statements have globalPolicy set to true. Only one trust policy statement can be marked as global policy",
				Fix:     fmt.Sprintf("remove \"globalPolicy\" here: statement %q at line %d, column %d is already the global policy", first.name, fl, fc),
				covers:  []string{"/trustPolicies"}}, rs.global))
			delete(byIndex, rs.index)
		} else {
			first = rs
		}
		if rs.levelOK && Level(rs.level) == LevelSkip {
			lvl := rs.sv.field("level", false)
			v.add(v.at(Problem{Rule: RuleGlobalSkip, Pointer: rs.ptr + "/signatureVerification/level", Statement: rs.name,
				Message: "global blob trust policy statement cannot have verification level set to skip",
				Fix:     `give the global policy a verifying level (strict, permissive or audit), or make it a named statement without "globalPolicy"`}, lvl))
			delete(byIndex, rs.index)
		}
		if s := byIndex[rs.index]; s != nil && first == rs {
			s.global = true
			doc.global = s
		}
	}
}

// storeRefFix suggests a "<type>:<name>" for a value without ':'.
func storeRefFix(s string) string {
	if StoreType(s).Valid() {
		return fmt.Sprintf(`write "%s:<name>", naming the folder truststore/x509/%s/<name>`, s, s)
	}
	return fmt.Sprintf(`write "<type>:<name>" with type ca, signingAuthority or tsa, e.g. "ca:%s"`, s)
}

// didYouMean suggests the option closest to s, if one is close.
func didYouMean(s string, options []string) string {
	best, bestD := "", 1<<30
	for _, o := range options {
		if strings.EqualFold(s, o) {
			return fmt.Sprintf(" (did you mean %q?)", o)
		}
		if d := editDistance(strings.ToLower(s), strings.ToLower(o)); d < bestD {
			best, bestD = o, d
		}
	}
	if best == "" || len(s) < 3 || bestD > max(2, len(best)/4) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between short strings.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
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
