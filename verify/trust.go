package verify

import (
	"context"
	"crypto/x509"

	"github.com/keyward/keyward/truststore"
)

// storeEntry is a trust store's certificates, or why it cannot be used.
type storeEntry struct {
	certs []*x509.Certificate
	err   error
}

// storeCertificates returns the certificates of the statement's stores of
// type typ, each store once and in the statement's order; the first store
// that cannot be read is the error (notation-go
// loadX509TrustStoresWithType). Each store is read once per Verifier.
func (v *Verifier) storeCertificates(ctx context.Context, st Statement, typ truststore.Type) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	seen := make(map[truststore.Ref]bool)
	for _, ref := range st.TrustStores() {
		if ref.Type != typ || seen[ref] {
			continue
		}
		seen[ref] = true
		e := v.stores.get(ctx, ref, func() (storeEntry, bool) {
			certs, err := v.opts.TrustStore.Certificates(ref)
			return storeEntry{certs, err}, true
		})
		if e.err != nil {
			return nil, e.err
		}
		out = append(out, e.certs...)
	}
	return out, nil
}

// hasStoreType reports whether the statement names a store of type typ.
func hasStoreType(st Statement, typ truststore.Type) bool {
	for _, ref := range st.TrustStores() {
		if ref.Type == typ {
			return true
		}
	}
	return false
}
