package policy

import (
	"github.com/keyward/keyward/identity"

	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/dn"
	"github.com/keyward/keyward/internal/jsonpos"
	"github.com/keyward/keyward/truststore"
)

// The rules of a statement's trust stores and trusted identities
// (notation-go v1.3.2 verifier/trustpolicy/trustpolicy.go,
// validateTrustStore and validateTrustedIdentities).

// checkTrustStores: notation-go validateTrustStore, for every value.
func (v *validator) checkTrustStores(rs *rawStatement) []truststore.Ref {
	if !isKind(rs.stores, jsonpos.KindArray) {
		return nil
	}
	var refs []truststore.Ref
	for j, e := range rs.stores.Elems {
		if e.Kind != jsonpos.KindString {
			continue
		}
		ptr := rs.ptr + "/trustStores/" + strconv.Itoa(j)
		t, name, ok := strings.Cut(e.Str, ":")
		switch {
		case !ok:
			v.add(v.at(Problem{Rule: RuleStoreMalformed, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q has malformed trust store value %q. The required format is <TrustStoreType>:<TrustStoreName>", rs.name, e.Str),
				Fix:     storeRefFix(e.Str)}, e))
		case !truststore.Type(t).Valid():
			v.add(v.at(Problem{Rule: RuleStoreType, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q uses an unsupported trust store type %q in trust store value %q", rs.name, t, e.Str),
				Fix:     "use the type ca, signingAuthority or tsa (case-sensitive)" + didYouMean(t, []string{"ca", "signingAuthority", "tsa"})}, e))
		case !truststore.ValidName(name):
			v.add(v.at(Problem{Rule: RuleStoreName, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q uses an unsupported trust store name %q in trust store value %q. Named store name needs to follow [a-zA-Z0-9_.-]+ format", rs.name, name, e.Str),
				Fix:     "name the store (and its folder) with letters, digits, '_', '.' and '-' only"}, e))
		default:
			refs = append(refs, truststore.Ref{Type: truststore.Type(t), Name: name})
		}
	}
	return refs
}

// checkIdentities: notation-go validateTrustedIdentities and the DN rules
// of internal/pkix (spec "Trusted Identities Constraints").
func (v *validator) checkIdentities(rs *rawStatement) []Identity {
	if !isKind(rs.ids, jsonpos.KindArray) {
		return nil
	}
	idsPtr := rs.ptr + "/trustedIdentities"
	name := rs.name
	if len(rs.ids.Elems) > 1 {
		for _, e := range rs.ids.Elems {
			if e.Kind == jsonpos.KindString && e.Str == WildcardIdentity {
				v.add(v.at(Problem{Rule: RuleIdentityWildcardMixed, Pointer: idsPtr, Statement: name,
					Message: fmt.Sprintf("trust policy statement %q uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values", name),
					Fix:     `keep either ["*"] (any signer the trust stores vouch for) or the list of x509.subject identities`}, rs.ids))
				break
			}
		}
	}
	type parsed struct {
		j   int // index in trustedIdentities
		raw string
		dn  DN
	}
	var ids []Identity
	var dns []parsed
	for j, e := range rs.ids.Elems {
		if e.Kind != jsonpos.KindString {
			continue
		}
		ptr := idsPtr + "/" + strconv.Itoa(j)
		id := e.Str
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
	// Overlap: notation-go v1.3.2 validateOverlappingDNs
	// (verifier/trustpolicy/trustpolicy.go) refuses a statement where one
	// DN is a subset of another. Each pair is reported once, at the later
	// identity, oriented as notation prints it: "earlier overlaps with
	// later" when the earlier is a subset of the later, else the reverse.
	// dn.Subsets finds the pairs without comparing every pair.
	list := make([]DN, len(dns))
	for i, d := range dns {
		list[i] = d.dn
	}
	dn.Subsets(list, func(sub, sup int) {
		if sub > sup && list[sup].SubsetOf(list[sub]) {
			return // reported when sup, the earlier, is the subset
		}
		x, y := dns[sub], dns[sup]
		later := dns[max(sub, sup)]
		v.add(v.at(Problem{Rule: RuleIdentityOverlap, Pointer: idsPtr + "/" + strconv.Itoa(later.j), Statement: name,
			Message: fmt.Sprintf("trust policy statement %q has overlapping x509 trustedIdentities, %q overlaps with %q", name, x.raw, y.raw),
			Fix:     fmt.Sprintf("remove one of them: every certificate %q matches is also matched by %q", y.raw, x.raw)}, rs.ids.Elems[later.j]))
	})
	return ids
}

func dnFix(e *DNError) string {
	switch e.Kind {
	case DNUnsupportedHex:
		return "write the attribute value as text: notation does not read '#'-encoded (BER) values"
	case DNMultiValued:
		return "separate attributes with ',' instead of '+': multi-valued RDNs are not supported"
	case DNDuplicate:
		return fmt.Sprintf("keep one %s attribute: a trusted identity can give each attribute once", e.Attribute)
	case DNMissingMandatory:
		return fmt.Sprintf("add %s=<value>: trusted identities need C, ST (or S) and O", e.Attribute)
	}
	return `write an RFC 4514 DN such as "C=US, ST=WA, O=example, CN=signer", escaping ',', '+', ';', '"', '\', '<', '>' and '=' in values with '\'`
}

// storeRefFix suggests a "<type>:<name>" for a value without ':'.
func storeRefFix(s string) string {
	if truststore.Type(s).Valid() {
		return fmt.Sprintf(`write "%s:<name>", naming the folder truststore/x509/%s/<name>`, s, s)
	}
	return fmt.Sprintf(`write "<type>:<name>" with type ca, signingAuthority or tsa, e.g. "ca:%s"`, s)
}
