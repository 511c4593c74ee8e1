package plugin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
	"github.com/notaryproject/notation-core-go/signature"
	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/crlbundle"
)

// Plugin config keys of verify-signature's revocation check (notation
// verify --plugin-config key=value).
const (
	// ConfigOCSPTimeout bounds each OCSP request (a Go duration; default
	// 2s, notation's).
	ConfigOCSPTimeout = "revocation_ocsp_timeout"
	// ConfigCRLTimeout bounds each CRL download (default 5s, notation's).
	ConfigCRLTimeout = "revocation_crl_timeout"
	// ConfigCRLBundle names a file of CRLs (PEM "X509 CRL" blocks or one
	// DER CRL, at most 64 MiB) for air-gapped verification: a certificate
	// whose issuer signed a CRL in the bundle is checked against it, with
	// no request to its OCSP responders or CRL distribution points; the
	// others are checked as without a bundle.
	ConfigCRLBundle = "revocation_crl_bundle"
)

// Revocation defaults and bounds (notation-core-go revocation: OCSP 2 s,
// CRL 5 s, CRLs of at most 32 MiB).
const (
	defaultOCSPTimeout = 2 * time.Second
	defaultCRLTimeout  = 5 * time.Second
	maxRevocationWait  = 5 * time.Minute
	maxCRLSize         = 32 << 20
)

func durationConfig(cfg map[string]string, key string, def time.Duration) (time.Duration, error) {
	v, ok := cfg[key]
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > maxRevocationWait {
		return 0, validationErrorf("plugin config %s=%q is not a duration between 0 and %s, such as 2s or 500ms", key, v, maxRevocationWait)
	}
	return d, nil
}

// revocation checks the signing chain (spec "Certificate Revocation
// Evaluation") with notation-core-go's revocation package: every
// certificate but the root, by OCSP falling back to CRL, or by CRL; a
// certificate with neither counts as good. Revoked or undetermined is a
// failure; only bad configuration is an error.
func (p *Plugin) revocation(ctx context.Context, req *pfw.VerifySignatureRequest, chain []*x509.Certificate) (*pfw.VerificationResult, error) {
	cfg := req.PluginConfig
	ocspTimeout, err := durationConfig(cfg, ConfigOCSPTimeout, defaultOCSPTimeout)
	if err != nil {
		return nil, err
	}
	crlTimeout, err := durationConfig(cfg, ConfigCRLTimeout, defaultCRLTimeout)
	if err != nil {
		return nil, err
	}
	var fetcher corecrl.Fetcher = &crlFetcher{client: &http.Client{Timeout: crlTimeout}}
	checked := chain
	if path, ok := cfg[ConfigCRLBundle]; ok {
		b, err := crlbundle.Read(path)
		if err != nil {
			var be *crlbundle.Error
			if errors.As(err, &be) {
				return nil, validationErrorf("plugin config %s=%q: %s", ConfigCRLBundle, path, be.Detail())
			}
			return nil, validationErrorf("plugin config %s=%q: %v", ConfigCRLBundle, path, err)
		}
		// Certificates whose issuer signed a bundled CRL are checked
		// against it alone; the others as without a bundle.
		prep := b.Prepare(chain, time.Now(), false)
		checked = prep.Chain
		fetcher = &crlbundle.Fetcher{CRLs: prep.CRLs, Next: fetcher}
	}
	v, err := revocation.NewWithOptions(revocation.Options{
		OCSPHTTPClient:   &http.Client{Timeout: ocspTimeout},
		CRLFetcher:       fetcher,
		CertChainPurpose: purpose.CodeSigning,
	})
	if err != nil {
		return nil, fmt.Errorf("create the revocation validator: %w", err)
	}
	var signingTime time.Time
	ca := req.Signature.CriticalAttributes
	if ca.SigningScheme == string(signature.SigningSchemeX509SigningAuthority) && ca.AuthenticSigningTime != nil {
		signingTime = *ca.AuthenticSigningTime
	}
	results, err := v.ValidateContext(ctx, revocation.ValidateContextOptions{CertChain: checked, AuthenticSigningTime: signingTime})
	if err != nil {
		return &pfw.VerificationResult{Reason: fmt.Sprintf("unable to check revocation status: %v", err)}, nil
	}
	return revocationResult(results, chain), nil
}

// revocationResult combines per-certificate results as notation-go v1.3.2
// does (verifier.revocationFinalResult): revoked if any is, else unknown
// if any is, else good; the reason names the certificate nearest the leaf.
func revocationResult(results []*result.CertRevocationResult, chain []*x509.Certificate) *pfw.VerificationResult {
	if len(results) != len(chain) {
		return &pfw.VerificationResult{Reason: fmt.Sprintf("unable to check revocation status: %d results for %d certificates", len(results), len(chain))}
	}
	var revoked, unknown string
	var notes []string
	for i := len(chain) - 1; i >= 0; i-- {
		r := results[i]
		if r == nil {
			unknown = chain[i].Subject.String()
			continue
		}
		for _, s := range r.ServerResults {
			if s != nil && s.Error != nil {
				notes = append(notes, fmt.Sprintf("%s %s: %v", s.RevocationMethod, s.Server, s.Error))
			}
		}
		switch r.Result {
		case result.ResultOK, result.ResultNonRevokable:
		case result.ResultRevoked:
			revoked = chain[i].Subject.String()
		default:
			unknown = chain[i].Subject.String()
		}
	}
	detail := ""
	if len(notes) > 0 {
		detail = " (" + strings.Join(notes, "; ") + ")"
	}
	switch {
	case revoked != "":
		return &pfw.VerificationResult{Reason: fmt.Sprintf("signing certificate with subject %q is revoked%s", revoked, detail)}
	case unknown != "":
		return &pfw.VerificationResult{Reason: fmt.Sprintf("signing certificate with subject %q revocation status is unknown%s", unknown, detail)}
	}
	return &pfw.VerificationResult{Success: true}
}

// crlFetcher is core's crl.Fetcher: an http or https download of at most
// 32 MiB.
type crlFetcher struct {
	client *http.Client
}

var _ corecrl.Fetcher = (*crlFetcher)(nil)

// Fetch returns the CRL at url.
func (f *crlFetcher) Fetch(ctx context.Context, url string) (*corecrl.Bundle, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("CRL distribution point %q: only http and https are supported", url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("CRL distribution point %q: %w", url, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download CRL: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download CRL %s: HTTP status %s", url, resp.Status)
	}
	data, err := bounded.ReadAll(resp.Body, maxCRLSize, "CRL")
	if err != nil {
		return nil, fmt.Errorf("download CRL %s: %w", url, err)
	}
	c, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("CRL %s does not parse: %w", url, err)
	}
	return &corecrl.Bundle{BaseCRL: c}, nil
}
