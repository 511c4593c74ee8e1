package verify

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
	"github.com/notaryproject/notation-core-go/signature"
	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/plugin"
)

// verificationPlugin is what the evaluation needs of a verification plugin:
// a plugin binary run through the protocol, or keyward itself in process.
type verificationPlugin interface {
	verifySignature(ctx context.Context, req *pfw.VerifySignatureRequest) (*pfw.VerifySignatureResponse, error)
}

// inProcessPlugin is keyward's own verification plugin (package plugin)
// called without a process: signatures that name keyward are judged by
// the same code the notation-keyward binary runs, so keyward verify and
// notation verify reach the same verdicts on keyward: identities.
type inProcessPlugin struct {
	p *plugin.Plugin
	e *evaluation
}

// inProcessPlugin returns keyward's in-process plugin when the signature names
// keyward.
func (e *evaluation) inProcessPlugin(name string) (inProcessPlugin, bool) {
	if name != plugin.Name {
		return inProcessPlugin{}, false
	}
	return inProcessPlugin{p: e.v.keyward.get(), e: e}, true
}

// sharedPlugin is the in-process plugin of a Verifier, made on first use
// and kept for the run, so that trusted identities are parsed once.
type sharedPlugin struct {
	once sync.Once
	p    *plugin.Plugin
}

func (s *sharedPlugin) get() *plugin.Plugin {
	s.once.Do(func() { s.p = plugin.New(nil) })
	return s.p
}

func (i inProcessPlugin) metadata(config map[string]string) (*pfw.GetMetadataResponse, error) {
	return i.p.Metadata(config)
}

// verifySignature runs the plugin's verify-signature. The revocation check
// is the Verifier's own (cached per chain for the run, with keyward
// verify's timeouts, CRL cache and offline CRL bundle, Options.CRLBundle)
// unless the plugin config names an offline CRL bundle, which only the
// plugin reads: 200 signatures by one certificate then cost one OCSP
// round, as with x509.subject identities. Without Options.CRLBundle, a
// request for REVOCATION_CHECK alone is the plugin's.
func (i inProcessPlugin) verifySignature(ctx context.Context, req *pfw.VerifySignatureRequest) (*pfw.VerifySignatureResponse, error) {
	caps := req.TrustPolicy.SignatureVerification
	_, bundle := req.PluginConfig[plugin.ConfigCRLBundle]
	rc := pfw.CapabilityRevocationCheckVerifier
	offline := i.e.v.bundle != nil
	if bundle || !slices.Contains(caps, rc) || (len(caps) < 2 && !offline) {
		return i.p.VerifySignature(ctx, req, i.e.content.SignerInfo.CertificateChain)
	}
	sub := *req
	sub.TrustPolicy.SignatureVerification = slices.DeleteFunc(slices.Clone(caps), func(c pfw.Capability) bool { return c == rc })
	onlyRevocation := len(sub.TrustPolicy.SignatureVerification) == 0
	if onlyRevocation {
		// The plugin still validates the request and reports the
		// attributes it processed; its identity verdict, not asked
		// for, is dropped.
		sub.TrustPolicy.SignatureVerification = []pfw.Capability{pfw.CapabilityTrustedIdentityVerifier}
	}
	resp, err := i.p.VerifySignature(ctx, &sub, i.e.content.SignerInfo.CertificateChain)
	if err != nil {
		return nil, err
	}
	if onlyRevocation {
		delete(resp.VerificationResults, pfw.CapabilityTrustedIdentityVerifier)
	}
	si := &i.e.content.SignerInfo
	var authenticSigningTime time.Time
	if si.SignedAttributes.SigningScheme == signature.SigningSchemeX509SigningAuthority {
		authenticSigningTime = si.SignedAttributes.SigningTime
	}
	r := &pfw.VerificationResult{Success: true}
	results, err := i.e.v.chainRevocation(ctx, purpose.CodeSigning, si.CertificateChain, authenticSigningTime)
	if err != nil {
		r = &pfw.VerificationResult{Reason: fmt.Sprintf("unable to check revocation status: %v", err)}
	} else {
		switch verdict, subject, detail := revocationVerdict(results, si.CertificateChain); verdict {
		case result.ResultRevoked:
			r = &pfw.VerificationResult{Reason: withDetail(fmt.Sprintf("signing certificate with subject %q is revoked", subject), detail)}
		case result.ResultUnknown:
			r = &pfw.VerificationResult{Reason: withDetail(fmt.Sprintf("signing certificate with subject %q revocation status is unknown", subject), detail)}
		}
	}
	resp.VerificationResults[rc] = r
	return resp, nil
}

func withDetail(msg string, detail error) string {
	if detail == nil {
		return msg
	}
	return msg + " (" + detail.Error() + ")"
}
