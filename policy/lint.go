package policy

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/dn"
	"github.com/keyward/keyward/internal/jsonpos"
	"github.com/keyward/keyward/truststore"
)

// Lint rule identifiers, as found in Problem.Rule of lint findings.
const (
	LintWildcardIdentity   = "lint-wildcard-identity"
	LintGlobalAudit        = "lint-global-audit"
	LintGlobalSkip         = "lint-global-skip"
	LintSkipScope          = "lint-skip-scope"
	LintOverrideDowngrade  = "lint-override-downgrade"
	LintTSAUnused          = "lint-tsa-unused"
	LintTimestampNoTSA     = "lint-verify-timestamp-without-tsa"
	LintNoSigningStore     = "lint-no-signing-store"
	LintStoreMissing       = "lint-store-missing"
	LintStoreEmpty         = "lint-store-empty"
	LintStoreUnusable      = "lint-store-unusable"
	LintStoreExpired       = "lint-store-expired"
	LintStoreExpiring      = "lint-store-expiring"
	LintStoreNonCA         = "lint-store-non-ca"
	LintStoreIntermediate  = "lint-store-intermediate"
	LintBroadIdentity      = "lint-broad-identity"
	LintIdentityOverlap    = "lint-identity-overlap"
	LintPluginIdentityOnly = "lint-plugin-identity-only"
)

// LintRules lists the lint rules with their severity and what they find.
func LintRules() []LintRuleInfo {
	return []LintRuleInfo{
		{LintWildcardIdentity, SeverityWarning, "authenticity is enforced but trustedIdentities is [\"*\"]: anyone the trust stores' CAs certify can sign"},
		{LintGlobalAudit, SeverityWarning, "the \"*\" (or global blob) statement only logs authenticity: untrusted signatures pass everywhere else"},
		{LintGlobalSkip, SeverityWarning, "the \"*\" statement skips verification: every repository without a statement of its own is accepted unsigned"},
		{LintSkipScope, SeverityInfo, "a statement skips verification for the repositories it lists"},
		{LintOverrideDowngrade, SeverityWarning, "an override weakens authenticity or revocation (info for expiry and authenticTimestamp)"},
		{LintTSAUnused, SeverityWarning, "a tsa: store without a ca: store: timestamps are only verified for notary.x509 signatures, which need a ca: store"},
		{LintTimestampNoTSA, SeverityWarning, "verifyTimestamp is set but no tsa: store is listed, so no timestamp is ever verified"},
		{LintNoSigningStore, SeverityError, "no ca: or signingAuthority: store: every signature fails authenticity"},
		{LintStoreMissing, SeverityError, "a referenced trust store does not exist"},
		{LintStoreEmpty, SeverityError, "a referenced trust store holds no certificate"},
		{LintStoreUnusable, SeverityError, "a referenced trust store cannot be used (symlink, sub-folder, unreadable or invalid certificate)"},
		{LintStoreExpired, SeverityWarning, "a trust store certificate has expired or is not yet valid"},
		{LintStoreExpiring, SeverityInfo, "a trust store certificate expires within 30 days"},
		{LintStoreNonCA, SeverityWarning, "a trust store holds a non-CA certificate (notation accepts it only when self-signed)"},
		{LintStoreIntermediate, SeverityInfo, "a trust store holds an intermediate CA rather than a root"},
		{LintBroadIdentity, SeverityWarning, "an x509.subject identity with only C, ST and O trusts every certificate the organisation's CA issues"},
		{LintIdentityOverlap, SeverityWarning, "two x509.subject identities can match the same certificate (the spec's overlap, which notation only detects for subsets)"},
		{LintKeywardHostPattern, SeverityWarning, "a keyward san.uri pattern whose scheme://host/ is not a literal (an unescaped '.' accepts lookalike hosts)"},
		{LintKeywardAnyPath, SeverityWarning, "a keyward san.uri pattern that accepts any path on its host"},
		{LintKeywardCaseFold, SeverityWarning, "a keyward pattern with (?i): case matters in URI paths, e-mail local parts and Fulcio values"},
		{LintKeywardNoIssuer, SeverityWarning, "a keyward identity naming a SAN without oidc.issuer"},
		{LintKeywardIssuerOnly, SeverityWarning, "a keyward identity naming the OIDC issuer but no signer (no SAN, repository, workflow or key): every identity of that issuer matches"},
		{LintPluginIdentityOnly, SeverityInfo, "the trusted identities are all plugin identities: without a verification plugin notation rejects every signature"},
	}
}

// LintRuleInfo describes a lint rule.
type LintRuleInfo struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
}

// LintOptions configures [Lint].
type LintOptions struct {
	// TrustStore, if set, is read to check the stores the statements
	// reference.
	TrustStore *truststore.TrustStore
	// Now is the time certificates are judged at (time.Now when zero).
	Now time.Time
}

// expiringSoon is how close to its end a certificate's validity must be to
// be reported by lint-store-expiring.
const expiringSoon = 30 * 24 * time.Hour

// Lint returns the risky, though valid, settings of a document, each with
// a severity and a fix, in document order.
func Lint(d *Document, opts LintOptions) []Problem {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	l := &linter{d: d, now: now, ts: opts.TrustStore, stores: map[truststore.Ref]storeResult{}}
	for _, s := range d.statements {
		l.statement(s)
	}
	sortProblems(l.out)
	return l.out
}

type storeResult struct {
	store *truststore.Store
	err   error
}

type linter struct {
	d      *Document
	now    time.Time
	ts     *truststore.TrustStore
	stores map[truststore.Ref]storeResult
	out    []Problem
}

func (l *linter) add(s *Statement, sev Severity, rule, ptr, value, msg, fix string) {
	p := Problem{Rule: rule, Severity: sev, File: l.d.file, Pointer: ptr, Statement: s.name, Value: value, Message: msg, Fix: fix}
	p.Line, p.Column = l.d.Position(ptr)
	l.out = append(l.out, p)
}

func (l *linter) statement(s *Statement) {
	global := s.IsWildcardScope() || s.global
	if s.level == LevelSkip {
		if global {
			l.add(s, SeverityWarning, LintGlobalSkip, s.pointer+"/signatureVerification/level", `"skip"`,
				fmt.Sprintf("statement %q skips verification for every repository that no other statement lists: those artifacts are accepted unsigned", s.name),
				"use level audit to record unsigned artifacts without failing, or strict with trust stores and identities; list repositories that may stay unsigned in a skip statement of their own")
		} else {
			l.add(s, SeverityInfo, LintSkipScope, s.pointer+"/signatureVerification/level", `"skip"`,
				fmt.Sprintf("statement %q accepts artifacts from %s without verifying any signature", s.name, strings.Join(s.scopes, ", ")),
				"make sure these repositories may be deployed unsigned")
		}
		return
	}
	if global && s.Action(CheckAuthenticity) == ActionLog {
		where := "every repository that no other statement lists"
		if s.global {
			where = "every blob verified without a policy name"
		}
		l.add(s, SeverityWarning, LintGlobalAudit, s.pointer+"/signatureVerification", "",
			fmt.Sprintf("statement %q only logs authenticity failures for %s: signatures by anyone pass", s.name, where),
			"use level strict or permissive for the global statement, once signing covers those artifacts")
	}
	l.overrides(s)
	l.identities(s)
	l.timestamps(s)
	l.trustStores(s)
}

func (l *linter) overrides(s *Statement) {
	for _, c := range s.overrideOrder {
		base, a := LevelAction(s.level, c), s.overrides[c]
		if !a.weaker(base) {
			continue
		}
		sev := SeverityInfo
		why := ""
		switch c {
		case CheckAuthenticity:
			sev, why = SeverityWarning, ": a signature from an untrusted signer only logs a warning"
		case CheckRevocation:
			sev, why = SeverityWarning, ": a revoked signing certificate is accepted"
			if a == ActionLog {
				why = ": a revoked signing certificate only logs a warning"
			}
		case CheckExpiry:
			why = ": an expired signature only logs a warning"
		case CheckAuthenticTimestamp:
			why = ": a signature made outside its certificates' validity only logs a warning"
		}
		l.add(s, sev, LintOverrideDowngrade, jsonpos.Join(s.pointer+"/signatureVerification/override", string(c)), strconv.Quote(string(a)),
			fmt.Sprintf("the override weakens %s from %s (level %s) to %s%s", c, base, s.level, a, why),
			fmt.Sprintf("remove the %q override unless the downgrade is intended", c))
	}
}

func (l *linter) identities(s *Statement) {
	idsPtr := s.pointer + "/trustedIdentities"
	if s.TrustsAnyIdentity() {
		if s.Action(CheckAuthenticity) == ActionEnforce {
			l.add(s, SeverityWarning, LintWildcardIdentity, idsPtr+"/0", `"*"`,
				fmt.Sprintf("statement %q enforces authenticity (level %s) but trusts any identity: every certificate its trust stores' CAs issue, to anyone, can sign", s.name, s.level),
				`list the signers: "x509.subject: C=..., ST=..., O=..., CN=<signer>"; keep "*" only for stores that hold your own signing certificates`)
		}
		return
	}
	l.keywardIdentities(s)
	x509 := 0
	for j, id := range s.identities {
		if !id.IsX509Subject() {
			continue
		}
		x509++
		if id.dn.Len() == 3 {
			l.add(s, SeverityWarning, LintBroadIdentity, idsPtr+"/"+strconv.Itoa(j), strconv.Quote(id.raw),
				fmt.Sprintf("identity %q names only C, ST and O: it trusts every certificate the organisation's CA ever issues with these values", id.raw),
				"add the attributes that single out the signer, such as OU or CN")
		}
	}
	if x509 == 0 && len(s.identities) > 0 {
		l.add(s, SeverityInfo, LintPluginIdentityOnly, idsPtr, "",
			fmt.Sprintf("statement %q has no x509.subject identity: only a verification plugin with the TRUSTED_IDENTITY capability can accept its signatures", s.name),
			"make sure the signatures name a verification plugin, or add x509.subject identities")
	}
	// The spec's overlap: one certificate could match both. Subsets were
	// rejected by validation; these are the other overlaps.
	// dn.Overlapping compares only identities that could overlap.
	var x509IDs []DN
	var at []int // index in s.identities of each x509IDs entry
	for j, id := range s.identities {
		if id.IsX509Subject() {
			x509IDs = append(x509IDs, id.dn)
			at = append(at, j)
		}
	}
	dn.Overlapping(x509IDs, func(a, b int) {
		x, y := s.identities[at[a]], s.identities[at[b]]
		if x.dn.SubsetOf(y.dn) || y.dn.SubsetOf(x.dn) {
			return
		}
		l.add(s, SeverityWarning, LintIdentityOverlap, idsPtr+"/"+strconv.Itoa(at[b]), strconv.Quote(y.raw),
			fmt.Sprintf("identities %q and %q overlap: a certificate whose subject has %s matches both (the specification forbids overlapping identities; notation detects only subsets)", x.raw, y.raw, dn.Union(x.dn, y.dn)),
			"merge them, or add an attribute with different values to each so that no certificate matches both")
	})
}

func (l *linter) timestamps(s *Statement) {
	hasCA, hasSA, hasTSA := s.HasTrustStoreType(truststore.TypeCA), s.HasTrustStoreType(truststore.TypeSigningAuthority), s.HasTrustStoreType(truststore.TypeTSA)
	storesPtr := s.pointer + "/trustStores"
	if !hasCA && !hasSA {
		l.add(s, SeverityError, LintNoSigningStore, storesPtr, "",
			fmt.Sprintf("statement %q has no ca: or signingAuthority: trust store: every signature fails authenticity (\"no trusted certificates are found to verify authenticity\")", s.name),
			`add the store holding the signers' root CA, e.g. "ca:<name>"`)
	}
	if hasTSA && !hasCA {
		l.add(s, SeverityWarning, LintTSAUnused, storesPtr, "",
			fmt.Sprintf("statement %q lists a tsa: store but no ca: store: timestamps are verified only for notary.x509 signatures, whose signers must chain to a ca: store, so the tsa: store is never used", s.name),
			"remove the tsa: store, or add the ca: store of the signers whose signatures carry timestamps")
	}
	if !hasTSA && s.verifyTimestamp != TimestampDefault {
		l.add(s, SeverityWarning, LintTimestampNoTSA, s.pointer+"/signatureVerification/verifyTimestamp", strconv.Quote(string(s.verifyTimestamp)),
			fmt.Sprintf("verifyTimestamp is %q but statement %q lists no tsa: store: timestamps are never verified, and every signing certificate must be valid at verification time", s.verifyTimestamp, s.name),
			`add "tsa:<name>" to trustStores with the timestamp authority's root, or remove verifyTimestamp`)
	}
}

func (l *linter) load(ref truststore.Ref) storeResult {
	if r, ok := l.stores[ref]; ok {
		return r
	}
	st, err := l.ts.Load(ref)
	r := storeResult{store: st, err: err}
	l.stores[ref] = r
	return r
}

func (l *linter) trustStores(s *Statement) {
	if l.ts == nil {
		return
	}
	seen := map[truststore.Ref]bool{}
	for j, ref := range s.stores {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		ptr := s.pointer + "/trustStores/" + strconv.Itoa(j)
		val := strconv.Quote(ref.String())
		r := l.load(ref)
		if r.err != nil {
			var se *truststore.Error
			rule := LintStoreUnusable
			fix := "fix the store folder " + l.ts.Path(ref)
			if errors.As(r.err, &se) {
				switch se.Kind {
				case truststore.KindNotFound:
					rule = LintStoreMissing
					fix = fmt.Sprintf("create %s with the signers' root certificate (notation cert add --type %s --store %s <file>), or fix the reference", se.Path, ref.Type, ref.Name)
				case truststore.KindEmpty:
					rule = LintStoreEmpty
					fix = fmt.Sprintf("add the root certificate to %s (notation cert add --type %s --store %s <file>)", se.Path, ref.Type, ref.Name)
				case truststore.KindNotCA:
					rule = LintStoreNonCA
					fix = "keep only CA or self-signed certificates in the store; put the issuing root there instead of the leaf"
				case truststore.KindNotRegular:
					fix = fmt.Sprintf("move %s out of %s: a store holds certificate files only", se.File, se.Path)
				case truststore.KindNotDirectory:
					fix = fmt.Sprintf("make %s a real folder, not a symlink", se.Path)
				}
			}
			l.add(s, SeverityError, rule, ptr, val, fmt.Sprintf("trust store %s cannot be used, so verification fails: %v", ref, r.err), fix)
			continue
		}
		for _, f := range r.store.Files {
			for _, c := range f.Certificates {
				l.certificate(s, ref, ptr, val, f.Name, c)
			}
		}
	}
}

func (l *linter) certificate(s *Statement, ref truststore.Ref, ptr, val, file string, c *x509.Certificate) {
	subj := c.Subject.String()
	switch {
	case l.now.After(c.NotAfter):
		l.add(s, SeverityWarning, LintStoreExpired, ptr, val,
			fmt.Sprintf("certificate %q in %s (file %s) expired on %s", subj, ref, file, c.NotAfter.UTC().Format(time.RFC3339)),
			"replace it with the CA's current certificate; signatures chaining only to it verify only with a trusted timestamp")
	case l.now.Before(c.NotBefore):
		l.add(s, SeverityWarning, LintStoreExpired, ptr, val,
			fmt.Sprintf("certificate %q in %s (file %s) is not valid before %s", subj, ref, file, c.NotBefore.UTC().Format(time.RFC3339)),
			"check the certificate and the clock")
	case c.NotAfter.Sub(l.now) < expiringSoon:
		l.add(s, SeverityInfo, LintStoreExpiring, ptr, val,
			fmt.Sprintf("certificate %q in %s (file %s) expires on %s", subj, ref, file, c.NotAfter.UTC().Format(time.RFC3339)),
			"add the CA's next certificate to the store before then")
	}
	if !c.IsCA {
		l.add(s, SeverityWarning, LintStoreNonCA, ptr, val,
			fmt.Sprintf("certificate %q in %s (file %s) is not a CA: notation trusts it only as a self-signed signing certificate", subj, ref, file),
			"store the root CA of the signers; pin a single signer with a trusted identity instead")
	} else if !selfSigned(c) && ref.Type != truststore.TypeTSA {
		l.add(s, SeverityInfo, LintStoreIntermediate, ptr, val,
			fmt.Sprintf("certificate %q in %s (file %s) is an intermediate CA, not a root", subj, ref, file),
			"the specification recommends storing root certificates; an intermediate trusts only signers below it")
	}
}

// CheckTrustStores reads every store the document's statements reference
// and returns a problem (rule trust-store-unusable, severity error) at each
// reference to a store that is missing or that notation would refuse.
func CheckTrustStores(d *Document, ts *truststore.TrustStore) []Problem {
	var out []Problem
	results := map[truststore.Ref]error{}
	for _, s := range d.statements {
		for j, ref := range s.stores {
			err, done := results[ref]
			if !done {
				_, err = ts.Load(ref)
				results[ref] = err
			}
			if err == nil {
				continue
			}
			ptr := s.pointer + "/trustStores/" + strconv.Itoa(j)
			p := Problem{Rule: RuleStoreUnusable, Severity: SeverityError, File: d.file, Pointer: ptr, Statement: s.name,
				Value: strconv.Quote(ref.String()), Message: err.Error(),
				Fix: fmt.Sprintf("create or fix %s (notation cert add --type %s --store %s <file>), or correct the reference", ts.Path(ref), ref.Type, ref.Name)}
			p.Line, p.Column = d.Position(ptr)
			out = append(out, p)
		}
	}
	return out
}

// selfSigned reports whether c's signature verifies with its own key.
func selfSigned(c *x509.Certificate) bool {
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
