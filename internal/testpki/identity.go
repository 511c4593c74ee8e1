package testpki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
)

// SAN kinds for [WithSAN] (GeneralName tags, RFC 5280 4.2.1.6).
const (
	SANEmail = 1
	SANDNS   = 2
	SANURI   = 6
)

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// WithSAN adds subject alternative names of one kind (SANEmail, SANDNS or
// SANURI), encoded exactly as given (Go's template fields would re-encode
// URIs). Several WithSAN options add to one extension.
func WithSAN(kind int, values ...string) Option {
	return func(c *config) {
		var names []asn1.RawValue
		idx := -1
		for i, e := range c.tmpl.ExtraExtensions {
			if e.Id.Equal(oidSubjectAltName) {
				idx = i
				var seq []asn1.RawValue
				if _, err := asn1.Unmarshal(e.Value, &seq); err == nil {
					names = seq
				}
			}
		}
		for _, v := range values {
			names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: kind, Bytes: []byte(v)})
		}
		der, err := asn1.Marshal(names)
		if err != nil {
			panic("testpki: encode subjectAltName: " + err.Error())
		}
		ext := pkix.Extension{Id: oidSubjectAltName, Value: der}
		if idx >= 0 {
			c.tmpl.ExtraExtensions[idx] = ext
		} else {
			c.tmpl.ExtraExtensions = append(c.tmpl.ExtraExtensions, ext)
		}
	}
}

// FulcioOID returns the Fulcio extension OID 1.3.6.1.4.1.57264.1.n.
func FulcioOID(n int) asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, n}
}

// WithFulcio adds the Fulcio extension 1.3.6.1.4.1.57264.1.n with value
// encoded as Fulcio does (sigstore/fulcio docs/oid-info.md): raw bytes for
// .1.1 to .1.6, a DER UTF8String from .1.8 on.
func WithFulcio(n int, value string) Option {
	v := []byte(value)
	if n >= 8 {
		der, err := asn1.MarshalWithParams(value, "utf8")
		if err != nil {
			panic("testpki: encode UTF8String: " + err.Error())
		}
		v = der
	}
	return WithExtension(FulcioOID(n), false, v)
}

// WithExtension adds an extension with a raw value.
func WithExtension(oid asn1.ObjectIdentifier, critical bool, value []byte) Option {
	return func(c *config) {
		c.tmpl.ExtraExtensions = append(c.tmpl.ExtraExtensions, pkix.Extension{Id: oid, Critical: critical, Value: value})
	}
}

// WithPolicies sets the certificatePolicies OIDs (dotted decimal).
func WithPolicies(oids ...string) Option {
	return func(c *config) {
		for _, s := range oids {
			oid, err := x509.ParseOID(s)
			if err != nil {
				panic("testpki: policy OID " + s + ": " + err.Error())
			}
			c.tmpl.Policies = append(c.tmpl.Policies, oid)
		}
	}
}
