package oci

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/bounded"
)

// MaxCAFileSize bounds a file of extra registry CA certificates
// (keyward verify --ca-file, keyward serve's registry.caFile).
const MaxCAFileSize = 4 << 20

// ErrNoCertificate is wrapped by [RootCAsWithFile] for a file that holds no
// PEM certificate.
var ErrNoCertificate = errors.New("holds no PEM certificate")

// RootCAsWithFile returns the system's roots and the PEM CA certificates of
// path, a regular file of at most MaxCAFileSize bytes: the pool registry
// TLS certificates may chain to. Errors wrap internal/bounded's or
// [ErrNoCertificate].
func RootCAsWithFile(path string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := bounded.ReadFile(path, MaxCAFileSize, path)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %w", path, ErrNoCertificate)
	}
	return pool, nil
}

// IsLocalhost reports a registry host notation reaches over plain HTTP
// without being told: localhost, with or without a port.
func IsLocalhost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	return h == "localhost"
}

// NewTransport returns the HTTP transport [NewRemote] builds from o
// (connections per host, TLS roots, header timeout), for callers that
// share one between Remotes through RemoteOptions.Transport.
func NewTransport(o RemoteOptions) http.RoundTripper {
	conns := o.MaxConnsPerHost
	if conns <= 0 {
		conns = 16
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.requestTimeout(),
		MaxIdleConns:          conns * 4,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// requestTimeout is RequestTimeout or its default.
func (o RemoteOptions) requestTimeout() time.Duration {
	if o.RequestTimeout <= 0 {
		return DefaultRequestTimeout
	}
	return o.RequestTimeout
}
