package plugin

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
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
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/chainrevocation"
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
// does (internal/chainrevocation): revoked if any is, else unknown if any
// is, else good; the reason names the certificate nearest the leaf.
func revocationResult(results []*result.CertRevocationResult, chain []*x509.Certificate) *pfw.VerificationResult {
	v, err := chainrevocation.Combine(results, chain)
	if err != nil {
		return &pfw.VerificationResult{Reason: fmt.Sprintf("unable to check revocation status: %v", err)}
	}
	detail := ""
	if len(v.Notes) > 0 {
		notes := make([]string, len(v.Notes))
		for i, n := range v.Notes {
			notes[i] = fmt.Sprintf("%s %s: %v", n.Method, n.Server, n.Err)
		}
		detail = " (" + strings.Join(notes, "; ") + ")"
	}
	switch v.Result {
	case result.ResultRevoked:
		return &pfw.VerificationResult{Reason: fmt.Sprintf("signing certificate with subject %q is revoked%s", v.Subject, detail)}
	case result.ResultUnknown:
		return &pfw.VerificationResult{Reason: fmt.Sprintf("signing certificate with subject %q revocation status is unknown%s", v.Subject, detail)}
	}
	return &pfw.VerificationResult{Success: true}
}

// crlFetcher is core's crl.Fetcher: an http or https download of at most
// 32 MiB.
type crlFetcher struct {
	client *http.Client
}

var _ corecrl.Fetcher = (*crlFetcher)(nil)

// fetch downloads and parses the CRL at url.
func (f *crlFetcher) fetch(ctx context.Context, url string) (*x509.RevocationList, error) {
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
	return c, nil
}

// Fetch returns the CRL at url, with the delta CRL its Freshest CRL
// extension names (RFC 5280 5.2.6): a certificate revoked since the base
// CRL is listed in the delta only. As notation-core-go v1.3.0
// revocation/crl/fetcher.go does, the delta's URLs are tried in order and
// a delta that cannot be fetched fails the whole fetch.
func (f *crlFetcher) Fetch(ctx context.Context, url string) (*corecrl.Bundle, error) {
	base, err := f.fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	b := &corecrl.Bundle{BaseCRL: base}
	var urls []string
	for _, e := range base.Extensions {
		if e.Id.Equal(oidFreshestCRL) {
			if urls, err = distributionPointURIs(e.Value); err != nil {
				return nil, fmt.Errorf("CRL %s: its Freshest CRL extension: %w", url, err)
			}
		}
	}
	for i, u := range urls {
		if b.DeltaCRL, err = f.fetch(ctx, u); err == nil {
			break
		}
		if i == len(urls)-1 {
			return nil, fmt.Errorf("delta CRL of %s: %w", url, err)
		}
	}
	return b, nil
}

// oidFreshestCRL names a CRL's delta CRL (RFC 5280 5.2.6).
var oidFreshestCRL = asn1.ObjectIdentifier{2, 5, 29, 46}

// distributionPointURIs reads the URIs of the fullName of each
// DistributionPoint of a CRLDistributionPoints value (RFC 5280 4.2.1.13).
func distributionPointURIs(der []byte) ([]string, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("not a DER sequence of distribution points")
	}
	var urls []string
	for !seq.Empty() {
		var dp, name cryptobyte.String
		var hasName bool
		if !seq.ReadASN1(&dp, cbasn1.SEQUENCE) ||
			!dp.ReadOptionalASN1(&name, &hasName, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return nil, errors.New("a distribution point is malformed")
		}
		if !hasName {
			continue
		}
		var full cryptobyte.String
		var hasFull bool
		if !name.ReadOptionalASN1(&full, &hasFull, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return nil, errors.New("a distribution point name is malformed")
		}
		for hasFull && !full.Empty() {
			var gn cryptobyte.String
			var tag cbasn1.Tag
			if !full.ReadAnyASN1(&gn, &tag) {
				return nil, errors.New("a distribution point name is malformed")
			}
			if tag == cbasn1.Tag(6).ContextSpecific() {
				urls = append(urls, string(gn))
			}
		}
	}
	return urls, nil
}
