package serve

import (
	"unique"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/verify"
)

// compact returns a copy of a verdict to keep in the cache whose strings
// are interned (unique.Make): the check messages, signer names, statement
// and media types that thousands of verdicts of one signer and policy
// repeat are then held once. The result given is not changed (callers may
// be reading it).
func compact(r *verify.ReferenceResult) *verify.ReferenceResult {
	out := *r
	out.Reference = in(r.Reference)
	out.Scope = in(r.Scope)
	out.Tag = in(r.Tag)
	out.Statement = in(r.Statement)
	if r.Artifact != nil {
		a := *r.Artifact
		a.MediaType = in(a.MediaType)
		a.ArtifactType = in(a.ArtifactType)
		a.Annotations = nil
		if len(r.Artifact.Annotations) > 0 {
			a.Annotations = make(map[string]string, len(r.Artifact.Annotations))
			for k, v := range r.Artifact.Annotations {
				a.Annotations[in(k)] = in(v)
			}
		}
		out.Artifact = &ocispec.Descriptor{}
		*out.Artifact = a
	}
	if r.Error != nil {
		e := *r.Error
		e.Message = in(e.Message)
		out.Error = &e
	}
	out.Signatures = make([]*verify.Result, len(r.Signatures))
	for i, s := range r.Signatures {
		if s == nil {
			continue
		}
		c := *s
		c.Signature = in(c.Signature)
		c.MediaType = in(c.MediaType)
		c.Statement = in(c.Statement)
		c.Checks = make([]verify.CheckResult, len(s.Checks))
		for j, ch := range s.Checks {
			ch.Message = in(ch.Message)
			ch.Detail = in(ch.Detail)
			c.Checks[j] = ch
		}
		if s.Signer != nil {
			sg := *s.Signer
			sg.Subject = in(sg.Subject)
			sg.Issuer = in(sg.Issuer)
			sg.SigningScheme = in(sg.SigningScheme)
			sg.EnvelopeType = in(sg.EnvelopeType)
			sg.SignatureAlgorithm = in(sg.SignatureAlgorithm)
			sg.SigningAgent = in(sg.SigningAgent)
			sg.VerificationPlugin = in(sg.VerificationPlugin)
			sg.VerificationPluginMinVersion = in(sg.VerificationPluginMinVersion)
			sg.Chain = make([]verify.Certificate, len(s.Signer.Chain))
			for k, cert := range s.Signer.Chain {
				cert.Subject = in(cert.Subject)
				cert.Issuer = in(cert.Issuer)
				cert.SerialNumber = in(cert.SerialNumber)
				cert.SHA256 = in(cert.SHA256)
				cert.SHA1 = in(cert.SHA1)
				sg.Chain[k] = cert
			}
			if s.Signer.Timestamp != nil {
				ts := *s.Signer.Timestamp
				ts.Authority = in(ts.Authority)
				sg.Timestamp = &ts
			}
			if s.Signer.TargetArtifact != nil {
				ta := *s.Signer.TargetArtifact
				ta.MediaType = in(ta.MediaType)
				ta.ArtifactType = in(ta.ArtifactType)
				sg.TargetArtifact = &ta // annotations shared, never changed
			}
			c.Signer = &sg
		}
		out.Signatures[i] = &c
	}
	return &out
}

// in interns s.
func in(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
