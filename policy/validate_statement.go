package policy

import (
	"fmt"
	"strconv"

	"github.com/keyward/keyward/internal/jsonpos"
)

// The rules of one statement that notation-go v1.3.2 applies in
// verifier/trustpolicy/trustpolicy.go (Document.Validate and
// validatePolicyCore): version, names, level, overrides and verifyTimestamp.

// checkVersion: spec "version ... MUST be 1.0"; notation-go Document.Validate.
func (v *validator) checkVersion() string {
	n := v.root.Field("version", false)
	if broken(n, jsonpos.KindString) {
		return ""
	}
	noun := v.typ.noun()
	switch {
	case n == nil || n.Str == "":
		msg := noun + " document has empty version, version must be specified"
		v.add(v.at(Problem{Rule: RuleVersionMissing, Pointer: "/version", Message: msg,
			Fix: `add "version": "1.0" at the top of the document`}, n))
		return ""
	case n.Str != "1.0":
		v.add(v.at(Problem{Rule: RuleVersionUnsupported, Pointer: "/version",
			Message: fmt.Sprintf("%s document uses unsupported version %q", noun, n.Str),
			Fix:     `use "version": "1.0", the only version notation supports`}, n))
		return ""
	}
	return n.Str
}

func (v *validator) checkStatements(doc *Document) []*Statement {
	tp := v.root.Field("trustPolicies", true)
	if broken(tp, jsonpos.KindArray) {
		return nil
	}
	if tp == nil || len(tp.Elems) == 0 {
		v.add(v.at(Problem{Rule: RuleStatementsMissing, Pointer: "/trustPolicies",
			Message: v.typ.noun() + " document can not have zero trust policy statements",
			Fix:     `add at least one statement to "trustPolicies"`}, tp))
		return nil
	}
	raws := make([]*rawStatement, 0, len(tp.Elems))
	for i, e := range tp.Elems {
		if e.Kind != jsonpos.KindObject {
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

func (v *validator) readStatement(i int, n *jsonpos.Node) *rawStatement {
	rs := &rawStatement{index: i, ptr: "/trustPolicies/" + strconv.Itoa(i), n: n}
	if name := n.Field("name", false); name != nil && name.Kind == jsonpos.KindString {
		rs.name, rs.nameOK = name.Str, true
	}
	rs.sv = n.Field("signatureVerification", false)
	if isKind(rs.sv, jsonpos.KindObject) {
		if l := rs.sv.Field("level", false); l != nil && l.Kind == jsonpos.KindString {
			rs.level, rs.levelOK = l.Str, true
		}
	}
	rs.scopes = n.Field("registryScopes", true)
	rs.stores = n.Field("trustStores", true)
	rs.ids = n.Field("trustedIdentities", true)
	rs.global = n.Field("globalPolicy", false)
	return rs
}

// checkNames: every statement needs a name, unique in the document
// (notation-go Document.Validate and validatePolicyCore).
func (v *validator) checkNames(raws []*rawStatement) {
	first := map[string]*rawStatement{}
	for _, rs := range raws {
		nameNode := rs.n.Field("name", false)
		if broken(nameNode, jsonpos.KindString) {
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

func (rs *rawStatement) position(v *validator) (int, int) { return v.lines.Position(rs.n.Off) }

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
	if !broken(rs.sv, jsonpos.KindObject) {
		levelNode := rs.sv.Field("level", false)
		switch {
		case broken(levelNode, jsonpos.KindString):
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
	if levelKnown && !broken(rs.stores, jsonpos.KindArray) && !broken(rs.ids, jsonpos.KindArray) {
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

func arrayLen(n *jsonpos.Node) int {
	if n == nil {
		return 0
	}
	return len(n.Elems)
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
	ov := rs.sv.Field("override", true)
	if ov == nil || ov.Kind != jsonpos.KindObject || len(ov.Members) == 0 {
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
	for i := len(ov.Members) - 1; i >= 0; i-- { // the last of repeated keys wins
		m := ov.Members[i]
		if seen[m.Key] {
			continue
		}
		seen[m.Key] = true
		ptr := jsonpos.Join(ovPtr, m.Key)
		c := Check(m.Key)
		if !c.Valid() {
			v.add(v.at(Problem{Rule: RuleOverrideCheck, Pointer: ptr, Statement: rs.name, Value: strconv.Quote(m.Key),
				Message: invalidSV("verification type %q in custom signature verification is not supported, supported values are %q", m.Key, Checks()),
				Fix:     "override one of authenticity, authenticTimestamp, expiry or revocation" + didYouMean(m.Key, checkNames())}, m.Val))
			continue
		}
		if m.Val.Kind != jsonpos.KindString {
			continue
		}
		a := Action(m.Val.Str)
		switch {
		case !a.Valid():
			v.add(v.at(Problem{Rule: RuleOverrideAction, Pointer: ptr, Statement: rs.name,
				Message: invalidSV("verification action %q in custom signature verification is not supported, supported values are %q", m.Val.Str, Actions()),
				Fix:     "use enforce or log (revocation also accepts skip)" + didYouMean(m.Val.Str, []string{"enforce", "log", "skip"})}, m.Val))
		case c == CheckIntegrity:
			v.add(v.at(Problem{Rule: RuleOverrideIntegrity, Pointer: ptr, Statement: rs.name,
				Message: invalidSV("%q verification can not be overridden in custom signature verification", m.Key),
				Fix:     `remove "integrity": it is always enforced (except at level skip)`}, m.Val))
		case c != CheckRevocation && a == ActionSkip:
			v.add(v.at(Problem{Rule: RuleOverrideSkip, Pointer: ptr, Statement: rs.name,
				Message: invalidSV("%q verification can not be skipped in custom signature verification", m.Key),
				Fix:     fmt.Sprintf("use %q: log to record failures without failing verification; only revocation can be skipped", m.Key)}, m.Val))
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
	n := rs.sv.Field("verifyTimestamp", false)
	if n == nil || n.Kind != jsonpos.KindString {
		return ""
	}
	o := TimestampOption(n.Str)
	if !o.Valid() {
		v.add(v.at(Problem{Rule: RuleVerifyTimestamp, Pointer: rs.ptr + "/signatureVerification/verifyTimestamp", Statement: rs.name,
			Message: invalidSV("verifyTimestamp must be %q or %q, but got %q", TimestampAlways, TimestampAfterCertExpiry, n.Str),
			Fix:     `use "always" (the default) or "afterCertExpiry"` + didYouMean(n.Str, []string{"always", "afterCertExpiry"})}, n))
		return ""
	}
	return o
}
