package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unicode"
)

// Suggestion is a ready-to-paste keyward identity for a certificate, with
// what it pins.
type Suggestion struct {
	// Identity is the trusted identity string.
	Identity string `json:"identity"`
	// Note says what the identity trusts.
	Note string `json:"note"`
}

// Quote renders a clause value: bare when it can be, else double-quoted
// with \" and \\ escaped.
func Quote(v string) string {
	bare := v != "" && v[0] != '"' && !strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r < 0x20 || r == 0x7f })
	if bare {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// Suggest returns keyward identities that a policy author can paste for the
// leaf (signing) certificate: its key pin and thumbprint, each SAN (with
// the Fulcio issuer when the certificate carries one, as the matcher then
// requires), a workflow identity with the Fulcio source repository fields,
// and each certificate policy. Every suggestion parses and matches leaf.
func Suggest(leaf *x509.Certificate) []Suggestion {
	f := readLeaf(leaf)
	issuer := ""
	if f.hasIssuer && f.issuerErr == nil {
		issuer = KeyOIDCIssuer + "=" + Quote(f.issuer) + " "
	}
	id := func(clauses string) string { return Prefix + ": " + issuer + clauses }
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	cert := sha256.Sum256(leaf.Raw)
	out := []Suggestion{
		{id(KeySPKISHA256 + "=" + base64.StdEncoding.EncodeToString(spki[:])), "this certificate's key, in any certificate (survives renewal with the same key)"},
		{id(KeyCertSHA256 + "=" + hex.EncodeToString(cert[:])), "this certificate only"},
	}
	for _, s := range []struct {
		key, kind string
		vals      []string
	}{{KeySANURI, "URI", f.uris}, {KeySANEmail, "e-mail", f.emails}, {KeySANDNS, "DNS", f.dnss}} {
		for _, v := range s.vals {
			note := "any certificate from the trust stores with this " + s.kind + " SAN"
			if issuer != "" {
				note += ", vouched for by the OIDC issuer " + f.issuer
			}
			out = append(out, Suggestion{id(s.key + "=" + Quote(v)), note})
		}
	}
	if issuer != "" {
		var clauses []string
		for _, name := range []string{"source-repository-uri", "source-repository-ref", "build-signer-uri", "build-trigger", "runner-environment"} {
			oid, _ := FulcioOID(name)
			for _, e := range leaf.Extensions {
				if v, err := derUTF8String(e.Value); e.Id.Equal(oid) && err == nil {
					clauses = append(clauses, FulcioKeyPrefix+name+"="+Quote(v))
				}
			}
		}
		if len(clauses) > 0 {
			out = append(out, Suggestion{id(strings.Join(clauses, " ")), "any keyless certificate for this repository, ref, workflow, trigger and runner, from this issuer"})
		}
	}
	for _, p := range leaf.Policies {
		out = append(out, Suggestion{id(KeyPolicy + "=" + p.String()), "any certificate from the trust stores carrying this certificate policy"})
	}
	return out
}
