package identity

import (
	"encoding/asn1"
	"sort"
)

// Prefix is the trusted-identity prefix keyward owns: notation splits an
// identity at its first ':' and hands identities of prefixes it does not
// know to the verification plugin (notation-go v1.3.2
// verifier/trustpolicy/trustpolicy.go validateTrustedIdentities).
const Prefix = "keyward"

// Op is a clause operator.
type Op byte

// The operators.
const (
	// OpExact compares the normalised value for equality.
	OpExact Op = '='
	// OpRegex matches an RE2 pattern compiled as ^(?:value)$.
	OpRegex Op = '~'
)

// String returns "=" or "~".
func (o Op) String() string { return string(rune(o)) }

// The clause keys (the fulcio.* keys are listed by [FulcioNames]).
const (
	KeySANURI     = "san.uri"
	KeySANEmail   = "san.email"
	KeySANDNS     = "san.dns"
	KeyOIDCIssuer = "oidc.issuer"
	KeySPKISHA256 = "spki.sha256"
	KeyCertSHA256 = "cert.sha256"
	KeyPolicy     = "policy"
	KeySubject    = "subject"
	// FulcioKeyPrefix introduces a Fulcio extension key, fulcio.<name>.
	FulcioKeyPrefix = "fulcio."
)

// Bounds on what an identity may hold. RE2 matches in linear time, but the
// compiled program still grows with the pattern (formats research B4.8).
const (
	// MaxIdentityLen bounds a whole identity string, in bytes.
	MaxIdentityLen = 8192
	// MaxPatternLen bounds one "~" pattern, in bytes.
	MaxPatternLen = 1024
	// MaxClauses bounds the clauses of one identity.
	MaxClauses = 32
)

// fulcioOIDArc is 1.3.6.1.4.1.57264.1, the arc of Fulcio's certificate
// extensions (sigstore/fulcio docs/oid-info.md).
var fulcioOIDArc = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1}

func fulcioOID(n int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier(nil), fulcioOIDArc...), n)
}

var (
	// oidIssuerV1 (.1.1) holds the OIDC issuer as raw bytes (deprecated
	// but still emitted: fulcio pkg/certificate/extensions.go).
	oidIssuerV1 = fulcioOID(1)
	// oidIssuerV2 (.1.8) holds the OIDC issuer as a DER UTF8String.
	oidIssuerV2 = fulcioOID(8)
	// oidSAN is subjectAltName (RFC 5280 4.2.1.6).
	oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// fulcioNames maps the documented names of Fulcio extensions
// 1.3.6.1.4.1.57264.1.9 to .1.24 (sigstore/fulcio docs/oid-info.md) to
// their last arc. All are DER UTF8Strings.
var fulcioNames = map[string]int{
	"build-signer-uri":                   9,
	"build-signer-digest":                10,
	"runner-environment":                 11,
	"source-repository-uri":              12,
	"source-repository-digest":           13,
	"source-repository-ref":              14,
	"source-repository-identifier":       15,
	"source-repository-owner-uri":        16,
	"source-repository-owner-identifier": 17,
	"build-config-uri":                   18,
	"build-config-digest":                19,
	"build-trigger":                      20,
	"run-invocation-uri":                 21,
	"source-repository-visibility":       22,
	"deployment-environment":             23,
	"token-subject":                      24,
}

// FulcioNames returns the names usable after "fulcio.", in OID order.
func FulcioNames() []string {
	out := make([]string, 0, len(fulcioNames))
	for n := range fulcioNames {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return fulcioNames[out[i]] < fulcioNames[out[j]] })
	return out
}

// FulcioOID returns the extension OID of a fulcio.<name> key's name.
func FulcioOID(name string) (asn1.ObjectIdentifier, bool) {
	n, ok := fulcioNames[name]
	if !ok {
		return nil, false
	}
	return fulcioOID(n), true
}

// Keys returns every clause key, fulcio.* keys included.
func Keys() []string {
	out := []string{KeySANURI, KeySANEmail, KeySANDNS, KeyOIDCIssuer}
	for _, n := range FulcioNames() {
		out = append(out, FulcioKeyPrefix+n)
	}
	return append(out, KeySPKISHA256, KeyCertSHA256, KeyPolicy, KeySubject)
}

// allowsRegex reports whether key accepts "~" (only SANs and Fulcio
// extensions: formats research B5 rule 1).
func allowsRegex(key string) bool {
	switch key {
	case KeySANURI, KeySANEmail, KeySANDNS:
		return true
	}
	_, ok := fulcioKey(key)
	return ok
}

func fulcioKey(key string) (string, bool) {
	if len(key) <= len(FulcioKeyPrefix) || key[:len(FulcioKeyPrefix)] != FulcioKeyPrefix {
		return "", false
	}
	name := key[len(FulcioKeyPrefix):]
	_, ok := fulcioNames[name]
	return name, ok
}

func knownKey(key string) bool {
	switch key {
	case KeySANURI, KeySANEmail, KeySANDNS, KeyOIDCIssuer, KeySPKISHA256, KeyCertSHA256, KeyPolicy, KeySubject:
		return true
	}
	_, ok := fulcioKey(key)
	return ok
}
