// Package identity reads and matches keyward trusted identities, the
// "keyward:" prefix of a trust policy's trustedIdentities, which name signers
// by what their certificates carry beyond the subject DN notation matches:
//
//	keyward: <clause> <clause> ...   clause = key "=" value | key "~" pattern
//
// Clauses are ANDed; identities in a policy's list are ORed, as notation
// ORs them. "=" compares a normalised value; "~" matches an RE2 pattern
// compiled as ^(?:pattern)$, so it never matches a substring. Values are
// bare (no white space) or double-quoted with \" and \\ escapes. The keys:
//
//	san.uri        = ~   a URI SAN (scheme and host lower-cased)
//	san.email      = ~   an rfc822Name SAN (domain lower-cased)
//	san.dns        = ~   a dNSName SAN (lower-cased, no trailing dot, no *. expansion)
//	oidc.issuer    =     Fulcio 1.3.6.1.4.1.57264.1.8 (DER UTF8String), else .1.1
//	fulcio.<name>  = ~   Fulcio extensions .1.9 to .1.24 by documented name
//	spki.sha256    =     base64 SHA-256 of the DER SubjectPublicKeyInfo (RFC 7469 pin)
//	cert.sha256    =     hex SHA-256 of the certificate DER (notation's thumbprint)
//	policy         =     an OID of the certificatePolicies extension
//	subject        =     a DN, matched with notation's x509.subject subset rule
//
// An identity with a fulcio.* clause or a san.* pattern must have an
// oidc.issuer clause, and a certificate carrying a Fulcio issuer extension
// matches only identities that name its issuer: a workflow URI or an e-mail
// means nothing without who vouched for it. Unknown keys are errors.
//
// Sources: the Fulcio OIDs and their encodings are sigstore/fulcio
// docs/oid-info.md; the pitfalls this syntax closes (unanchored patterns,
// SAN types matched across, issuer-less subjects) are cosign's
// pkg/cosign/verify.go and sigstore/sigstore pkg/cryptoutils/sans.go.
package identity
