package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/jsonpos"
)

// The rules that decide which statement applies: registry scopes for OCI
// documents, the global statement for blob documents.

// checkScopes: notation-go validateRegistryScopes (spec "Registry scopes").
func (v *validator) checkScopes(raws []*rawStatement, statements []*Statement, doc *Document) {
	type use struct {
		stmt string
		ptr  string
		n    *jsonpos.Node
	}
	firstUse := map[string]use{}
	scopesOf := map[int][]string{}
	valid := map[int]bool{}
	for _, rs := range raws {
		ptr := rs.ptr + "/registryScopes"
		if broken(rs.scopes, jsonpos.KindArray) {
			continue
		}
		if arrayLen(rs.scopes) == 0 {
			v.add(v.at(Problem{Rule: RuleScopesMissing, Pointer: ptr, Statement: rs.name,
				Message: fmt.Sprintf("trust policy statement %q has zero registry scopes, it must specify registry scopes with at least one value", rs.name),
				Fix:     `list the repositories this statement applies to, e.g. "registryScopes": ["registry.example.com/team/app"], or ["*"] for every other repository`}, rs.scopes))
			continue
		}
		ok := true
		if len(rs.scopes.Elems) > 1 {
			for _, e := range rs.scopes.Elems {
				if e.Kind == jsonpos.KindString && e.Str == WildcardScope {
					ok = false
					v.add(v.at(Problem{Rule: RuleScopeWildcardMixed, Pointer: ptr, Statement: rs.name,
						Message: fmt.Sprintf("trust policy statement %q uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values", rs.name),
						Fix:     `move "*" into a statement of its own, or remove it`}, rs.scopes))
					break
				}
			}
		}
		var scopes []string
		for j, e := range rs.scopes.Elems {
			if e.Kind != jsonpos.KindString {
				ok = false
				continue
			}
			sptr := ptr + "/" + strconv.Itoa(j)
			if e.Str != WildcardScope {
				if err := CheckRegistryScope(e.Str); err != nil {
					ok = false
					rule := RuleScopeInvalid
					if err.(*ScopeError).Wildcard {
						rule = RuleScopeWildcardChars
					}
					v.add(v.at(Problem{Rule: rule, Pointer: sptr, Statement: rs.name,
						Message: err.Error(), Fix: scopeFix(e.Str)}, e))
				}
			}
			if u, dup := firstUse[e.Str]; dup {
				ok = false
				line, col := v.lines.Position(u.n.Off)
				v.add(v.at(Problem{Rule: RuleScopeDuplicate, Pointer: sptr, Statement: rs.name,
					Message: fmt.Sprintf("registry scope %q is present in multiple trust policy statements, one registry scope value can only be associated with one statement", e.Str),
					Fix:     fmt.Sprintf("keep %q in one statement only: it is already listed by statement %q at line %d, column %d", e.Str, u.stmt, line, col)}, e))
			} else {
				firstUse[e.Str] = use{stmt: rs.name, ptr: sptr, n: e}
			}
			scopes = append(scopes, e.Str)
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
		if !isKind(rs.global, jsonpos.KindBool) || !rs.global.Bool {
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
			lvl := rs.sv.Field("level", false)
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

// cutTag splits repo:tag at the last ':' after the last '/'; scopeFix uses
// it to suggest a scope for a registryScopes entry written with a tag.
func cutTag(s string) (repo, tag string, ok bool) {
	slash := strings.LastIndex(s, "/")
	colon := strings.LastIndex(s, ":")
	if colon <= slash || colon == len(s)-1 {
		return "", "", false
	}
	return s[:colon], s[colon+1:], true
}
