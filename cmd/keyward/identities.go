package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/spf13/cobra"

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/policy"
)

// maxIdentitiesInput bounds the certificate or signature file read by
// policy identities.
const maxIdentitiesInput = 4 << 20

// identitiesReport is the JSON output of policy identities.
type identitiesReport struct {
	File       string                `json:"file"`
	From       string                `json:"from"` // "certificate" or "signature"
	Subject    string                `json:"subject"`
	Identities []identity.Suggestion `json:"identities"`
}

func newPolicyIdentitiesCommand(e *env) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "identities FILE",
		Short: "Print the trusted identities that name a signing certificate",
		Long: `Print ready-to-paste trustedIdentities for a signing certificate: its
x509.subject (when notation can read the subject), and keyward: identities
pinning its key or the certificate, naming each of its SANs (with the OIDC
issuer of a Fulcio certificate), its Fulcio workflow fields and its
certificate policies. FILE is a certificate (PEM, the first one is the leaf,
or DER) or a JWS or COSE signature envelope, whose leaf is used (the
signature is not verified).`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageErrorf("--output %q is not supported: use text or json", output)
			}
			leaf, from, err := readLeaf(args[0])
			if err != nil {
				return err
			}
			r := identitiesReport{File: args[0], From: from, Subject: leaf.Subject.String()}
			if dn, err := policy.ParseDN(leaf.Subject.String()); err == nil {
				r.Identities = append(r.Identities, identity.Suggestion{Identity: policy.X509SubjectPrefix + ": " + dn.String(),
					Note: "any certificate from the trust stores whose subject has these attributes (notation's own identity)"})
			}
			r.Identities = append(r.Identities, identity.Suggest(leaf)...)
			if output == "json" {
				return writeJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stdout, "%s: %s with subject %q\n", safe(args[0]), from, safe(r.Subject))
			for _, s := range r.Identities {
				fmt.Fprintf(e.stdout, "  %s\n    %s\n", safe(s.Identity), safe(s.Note))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

// readLeaf reads the leaf certificate of a certificate file or of a
// signature envelope.
func readLeaf(path string) (*x509.Certificate, string, error) {
	data, err := bounded.ReadFile(path, maxIdentitiesInput, "certificate or signature")
	if err != nil {
		return nil, "", fmt.Errorf("policy identities: %w", err)
	}
	if b, _ := pem.Decode(data); b != nil && b.Type == "CERTIFICATE" {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("policy identities: %s: the first PEM certificate does not parse: %w", path, err)
		}
		return c, "certificate", nil
	}
	if c, err := x509.ParseCertificate(data); err == nil {
		return c, "certificate", nil
	}
	for _, mt := range []string{jws.MediaTypeEnvelope, cose.MediaTypeEnvelope} {
		if mt == jws.MediaTypeEnvelope && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			continue
		}
		env, err := signature.ParseEnvelope(mt, data)
		if err != nil {
			continue
		}
		content, err := env.Content()
		if err != nil || len(content.SignerInfo.CertificateChain) == 0 {
			continue
		}
		return content.SignerInfo.CertificateChain[0], "signature", nil
	}
	return nil, "", fmt.Errorf("policy identities: %s is neither a certificate (PEM or DER) nor a JWS or COSE signature envelope", path)
}
