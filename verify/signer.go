package verify

import (
	"github.com/notaryproject/notation-core-go/signature"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// algorithmNames are the specification's names of the signature
// algorithms (spec "Algorithm Selection").
var algorithmNames = map[signature.Algorithm]string{
	signature.AlgorithmPS256: "RSASSA-PSS-SHA-256",
	signature.AlgorithmPS384: "RSASSA-PSS-SHA-384",
	signature.AlgorithmPS512: "RSASSA-PSS-SHA-512",
	signature.AlgorithmES256: "ECDSA-SHA-256",
	signature.AlgorithmES384: "ECDSA-SHA-384",
	signature.AlgorithmES512: "ECDSA-SHA-512",
}

// describeSigner records who signed an envelope whose integrity verified;
// certs describes the certificates of its chain.
func describeSigner(c *signature.EnvelopeContent, mediaType string, p *payloadDocument, certs *certDescriptions) *Signer {
	si := &c.SignerInfo
	leaf := certs.of(si.CertificateChain[0])
	s := &Signer{
		Subject:              leaf.Subject,
		Issuer:               leaf.Issuer,
		SigningScheme:        string(si.SignedAttributes.SigningScheme),
		EnvelopeType:         mediaType,
		SignatureAlgorithm:   algorithmNames[si.SignatureAlgorithm],
		SigningAgent:         si.UnsignedAttributes.SigningAgent,
		SigningTime:          si.SignedAttributes.SigningTime,
		AuthenticSigningTime: si.SignedAttributes.SigningScheme == signature.SigningSchemeX509SigningAuthority,
	}
	if exp := si.SignedAttributes.Expiry; !exp.IsZero() {
		s.Expiry = &exp
	}
	s.Chain = make([]Certificate, 0, len(si.CertificateChain))
	for _, cert := range si.CertificateChain {
		s.Chain = append(s.Chain, *certs.of(cert))
	}
	if p != nil {
		d := ocispec.Descriptor{
			MediaType:   p.TargetArtifact.MediaType,
			Digest:      p.TargetArtifact.Digest,
			Size:        p.TargetArtifact.Size,
			Annotations: p.TargetArtifact.Annotations,
		}
		s.TargetArtifact = &d
	}
	return s
}
