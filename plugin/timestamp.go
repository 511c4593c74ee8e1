package plugin

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/tspclient-go"

	"github.com/keyward/keyward/keys"
)

// Plugin config keys for RFC 3161 timestamps in envelope mode. In raw mode
// notation timestamps the signature itself (notation sign --timestamp-url
// --timestamp-root-cert); in envelope mode notation passes no timestamp
// settings to the plugin and adds no countersignature, so the plugin must
// (plugin-extensibility.md: the plugin owns any timestamp countersignature).
const (
	// ConfigTimestampURL is the RFC 3161 Timestamping Authority URL.
	ConfigTimestampURL = "timestamp_url"
	// ConfigTimestampRootCert is the file (PEM or DER) holding the TSA's
	// root certificate, which the timestamp's chain must end in.
	ConfigTimestampRootCert = "timestamp_root_cert"
)

// Timeouts notation v1.3.2 uses when it timestamps (cmd/notation/sign.go)
// and checks the revocation of the TSA's chain.
const (
	timestampTimeout = 15 * time.Second
	ocspTimeout      = 2 * time.Second
	crlTimeout       = 5 * time.Second
)

// maxRootCertFile bounds the timestamp root certificate file.
const maxRootCertFile = 256 << 10

// checkTimestampOptions checks the timestamp keys of o without I/O.
func checkTimestampOptions(o options) error {
	if o.tsaURL == "" && o.tsaRoot == "" {
		return nil
	}
	if o.tsaURL == "" || o.tsaRoot == "" {
		return validationErrorf("plugin config %s and %s go together: name the TSA and the file holding its root certificate", ConfigTimestampURL, ConfigTimestampRootCert)
	}
	if o.mode != ModeEnvelope {
		return validationErrorf("plugin config %s applies to %s=%s: in raw mode notation timestamps the signature, so pass --timestamp-url and --timestamp-root-cert to notation sign instead",
			ConfigTimestampURL, ConfigSigningMode, ModeEnvelope)
	}
	if o.scheme != signature.SigningSchemeX509 {
		return validationErrorf("plugin config %s cannot be used with %s=%s: timestamps are defined only for the %s signing scheme",
			ConfigTimestampURL, ConfigSigningScheme, o.scheme, signature.SigningSchemeX509)
	}
	u, err := url.Parse(o.tsaURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return validationErrorf("plugin config %s=%q is not an http or https URL of an RFC 3161 Timestamping Authority", ConfigTimestampURL, o.tsaURL)
	}
	return nil
}

// timestamping returns the timestamper, TSA roots and TSA chain revocation
// check for a sign request, as notation sign sets them for
// --timestamp-url, or nils without timestamp config.
func timestamping(o options) (tspclient.Timestamper, *x509.CertPool, revocation.Validator, error) {
	if o.tsaURL == "" {
		return nil, nil, nil, nil
	}
	root, err := readTimestampRoot(o.tsaRoot)
	if err != nil {
		return nil, nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	ts, err := tspclient.NewHTTPTimestamper(&http.Client{Timeout: timestampTimeout}, o.tsaURL)
	if err != nil {
		return nil, nil, nil, validationErrorf("plugin config %s=%q: %v", ConfigTimestampURL, o.tsaURL, err)
	}
	fetcher, err := corecrl.NewHTTPFetcher(&http.Client{Timeout: crlTimeout})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("timestamping: crl fetcher: %w", err)
	}
	rev, err := revocation.NewWithOptions(revocation.Options{
		OCSPHTTPClient:   &http.Client{Timeout: ocspTimeout},
		CRLFetcher:       fetcher,
		CertChainPurpose: purpose.Timestamping,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("timestamping: revocation validator: %w", err)
	}
	return ts, pool, rev, nil
}

// readTimestampRoot reads the one root certificate of the TSA, PEM or DER,
// with notation sign's rules for --timestamp-root-cert.
func readTimestampRoot(path string) (*x509.Certificate, error) {
	what := "plugin config " + ConfigTimestampRootCert + " file"
	data, err := keys.ReadFile(what, path, maxRootCertFile, false)
	if err != nil {
		return nil, err
	}
	// PEM when a PEM block decodes, else DER, as notation reads
	// --timestamp-root-cert (notation-core-go x509.ReadCertificateFile).
	var certs []*x509.Certificate
	if block, _ := pem.Decode(data); block != nil {
		certs, err = keys.ParseCertificatesPEM(data, fmt.Sprintf("%s %q", what, path))
	} else if certs, err = x509.ParseCertificates(data); err != nil {
		err = validationErrorf("%s %q is neither PEM nor DER certificates: %v", what, path, err)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case len(certs) == 0:
		return nil, validationErrorf("%s %q holds no certificate: it must hold the TSA's root certificate, PEM or DER", what, path)
	case len(certs) > 1:
		return nil, validationErrorf("%s %q holds %d certificates: it must hold only the TSA's root certificate", what, path, len(certs))
	}
	c := certs[0]
	if !bytes.Equal(c.RawSubject, c.RawIssuer) || c.CheckSignatureFrom(c) != nil {
		return nil, validationErrorf("%s %q: certificate %q is not a root certificate (self-signed): give the root of the TSA's chain", what, path, c.Subject)
	}
	return c, nil
}

// timestampError says which TSA failed and how, for an error of
// notation-core-go's timestamping.
func timestampError(o options, err error) error {
	var te *signature.TimestampError
	if !errors.As(err, &te) {
		return err
	}
	return fmt.Errorf("timestamping at %s=%s (trusting %s=%s): %w", ConfigTimestampURL, o.tsaURL, ConfigTimestampRootCert, o.tsaRoot, err)
}
