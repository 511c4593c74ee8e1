package plugin

import (
	"context"
	"crypto/x509"

	"sort"
	"strconv"

	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/internal/version"
)

// ConfigVerificationPlugin (plugin config "verification_plugin=true", in
// envelope mode) makes keyward name itself as the signature's verification
// plugin, so that notation hands it the trusted identities at verify time.
const ConfigVerificationPlugin = "verification_plugin"

// The signed critical attributes that name a verification plugin
// (specification plugin-extensibility.md "Verification plugin"; notation-go
// v1.3.2 verifier/verifier.go reads them).
const (
	AttrVerificationPlugin           = "io.cncf.notary.verificationPlugin"
	AttrVerificationPluginMinVersion = "io.cncf.notary.verificationPluginMinVersion"
)

// parseVerificationPlugin reads verification_plugin: "true" or "false".
// Only an envelope keyward builds can carry the attributes: in raw mode
// notation builds the envelope and adds no verification plugin attribute
// (notation-go v1.3.2 signer/signer.go).
func parseVerificationPlugin(cfg map[string]string, mode string) (bool, error) {
	v, ok := cfg[ConfigVerificationPlugin]
	if !ok {
		return false, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil || (v != "true" && v != "false") {
		return false, validationErrorf("plugin config %s=%q is not supported: use %s=true or %s=false", ConfigVerificationPlugin, v, ConfigVerificationPlugin, ConfigVerificationPlugin)
	}
	if on && mode != ModeEnvelope {
		return false, validationErrorf("plugin config %s=true needs %s=%s: in raw mode notation builds the envelope and cannot add the signed critical attribute %s that makes it call keyward at verify time",
			ConfigVerificationPlugin, ConfigSigningMode, ModeEnvelope, AttrVerificationPlugin)
	}
	return on, nil
}

// verifierCapabilities are the SIGNATURE_VERIFIER capabilities keyward
// declares: with TRUSTED_IDENTITY notation skips its own x509.subject check
// and with REVOCATION_CHECK its own revocation check, for signatures that
// name keyward (notation-go v1.3.2 verifier/verifier.go processSignature).
var verifierCapabilities = []pfw.Capability{pfw.CapabilityTrustedIdentityVerifier, pfw.CapabilityRevocationCheckVerifier}

// verifySignature judges a signature notation has verified for integrity,
// authenticity against the trust store, expiry and timestamps, on what
// notation left to keyward: the trusted identities (keyward: and
// x509.subject: entries, on the leaf certificateChain[0]) and revocation.
// chain, when not nil, is the request's certificateChain already parsed.
func (p *Plugin) verifySignature(ctx context.Context, req *pfw.VerifySignatureRequest, chain []*x509.Certificate) (*pfw.VerifySignatureResponse, error) {
	if err := checkContract("verify-signature", req.ContractVersion); err != nil {
		return nil, err
	}
	ca := req.Signature.CriticalAttributes
	switch {
	case ca.ContentType == "":
		return nil, validationErrorf("verify-signature request: signature.criticalAttributes.contentType cannot be empty")
	case ca.SigningScheme == "":
		return nil, validationErrorf("verify-signature request: signature.criticalAttributes.signingScheme cannot be empty")
	case len(req.Signature.CertificateChain) == 0:
		return nil, validationErrorf("verify-signature request: signature.certificateChain cannot be empty: keyward judges identities on its first (leaf) certificate")
	case len(req.TrustPolicy.SignatureVerification) == 0:
		return nil, validationErrorf("verify-signature request: trustPolicy.signatureVerification cannot be empty: ask for %s and/or %s", verifierCapabilities[0], verifierCapabilities[1])
	}
	if ca.ContentType != PayloadType {
		return nil, validationErrorf("verify-signature request: signature content type %q is not supported: keyward verifies %q payloads", ca.ContentType, PayloadType)
	}
	processed, err := checkAttributes(req)
	if err != nil {
		return nil, err
	}
	if chain == nil {
		chain = make([]*x509.Certificate, len(req.Signature.CertificateChain))
		for i, der := range req.Signature.CertificateChain {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, validationErrorf("verify-signature request: signature.certificateChain[%d] is not a DER certificate: %v", i, err)
			}
			chain[i] = c
		}
	}
	results := make(map[pfw.Capability]*pfw.VerificationResult, len(req.TrustPolicy.SignatureVerification))
	for _, c := range req.TrustPolicy.SignatureVerification {
		if _, dup := results[c]; dup {
			continue
		}
		switch c {
		case pfw.CapabilityTrustedIdentityVerifier:
			v := p.ids.Evaluate(req.TrustPolicy.TrustedIdentities, chain[0])
			results[c] = &pfw.VerificationResult{Success: v.OK, Reason: v.Reason}
		case pfw.CapabilityRevocationCheckVerifier:
			r, err := p.revocation(ctx, req, chain)
			if err != nil {
				return nil, err
			}
			results[c] = r
		default:
			return nil, validationErrorf("verify-signature request: trustPolicy.signatureVerification names %q, which keyward does not offer: it offers %s and %s",
				c, verifierCapabilities[0], verifierCapabilities[1])
		}
	}
	return &pfw.VerifySignatureResponse{VerificationResults: results, ProcessedAttributes: processed}, nil
}

// checkAttributes refuses extended signed attributes keyward does not
// understand and returns those it processed. notation sends every extended
// attribute but the verification plugin pair, critical or not, and fails
// verification unless the plugin lists each as processed (notation-go
// v1.3.2 verifier/verifier.go processPluginResponse): keyward's envelopes
// carry none, so any other is one keyward cannot vouch for.
func checkAttributes(req *pfw.VerifySignatureRequest) ([]any, error) {
	known := func(k string) bool { return k == AttrVerificationPlugin || k == AttrVerificationPluginMinVersion }
	ext := req.Signature.CriticalAttributes.ExtendedAttributes
	var unknown []string
	for k := range ext {
		if !known(k) {
			unknown = append(unknown, k)
		}
	}
	for _, k := range req.Signature.UnprocessedAttributes {
		if !known(k) {
			if _, ok := ext[k]; !ok {
				unknown = append(unknown, k)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, validationErrorf("verify-signature request: the signature has critical attributes keyward %s does not understand: %q; keyward signs with none, so this signature was made by another tool: verify it with the plugin that made it",
			version.Version, unknown)
	}
	if v, ok := ext[AttrVerificationPlugin]; ok && v != Name {
		return nil, validationErrorf("verify-signature request: the signature names verification plugin %v, not %s", v, Name)
	}
	processed := []any{}
	for _, k := range req.Signature.UnprocessedAttributes {
		processed = append(processed, k)
	}
	return processed, nil
}

// verificationPluginAttributes returns the critical attributes that name
// keyward as the verification plugin, at its current version.
func verificationPluginAttributes() map[string]string {
	return map[string]string{AttrVerificationPlugin: Name, AttrVerificationPluginMinVersion: version.Version}
}

// Metadata answers get-plugin-metadata for a plugin config, in process.
func (p *Plugin) Metadata(config map[string]string) (*pfw.GetMetadataResponse, error) {
	return p.metadata(&pfw.GetMetadataRequest{PluginConfig: config})
}

// VerifySignature answers verify-signature in process, as the plugin binary
// does: keyward verify calls it for signatures that name keyward, without a
// plugin process. Errors carry the protocol code ([*Error]).
//
// chain, when not nil, is req's certificateChain already parsed (by the
// caller's envelope verification), which saves parsing it again; it must
// hold the same certificates.
func (p *Plugin) VerifySignature(ctx context.Context, req *pfw.VerifySignatureRequest, chain []*x509.Certificate) (*pfw.VerifySignatureResponse, error) {
	if chain != nil && len(chain) != len(req.Signature.CertificateChain) {
		return nil, toError(validationErrorf("verify-signature: %d parsed certificates for a chain of %d", len(chain), len(req.Signature.CertificateChain)))
	}
	resp, err := p.verifySignature(ctx, req, chain)
	if err != nil {
		return nil, toError(err)
	}
	return resp, nil
}
