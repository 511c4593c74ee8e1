package chainrevocation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"testing"

	"github.com/notaryproject/notation-core-go/revocation/result"
)

func chainOf(names ...string) []*x509.Certificate {
	var c []*x509.Certificate
	for _, n := range names {
		c = append(c, &x509.Certificate{Subject: pkix.Name{CommonName: n}})
	}
	return c
}

func res(r result.Result, errs ...error) *result.CertRevocationResult {
	out := &result.CertRevocationResult{Result: r}
	for _, e := range errs {
		out.ServerResults = append(out.ServerResults, &result.ServerResult{Result: r, Server: "http://responder", Error: e, RevocationMethod: result.RevocationMethodOCSP})
	}
	return out
}

// TestCombine holds notation-go's precedence: revoked over unknown over
// good, naming the certificate nearest the leaf.
func TestCombine(t *testing.T) {
	chain := chainOf("leaf", "inter", "root")
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		results []*result.CertRevocationResult
		want    result.Result
		subject string
		notes   int
	}{
		{"all good", []*result.CertRevocationResult{res(result.ResultOK), res(result.ResultNonRevokable), res(result.ResultNonRevokable)}, result.ResultOK, "", 0},
		{"revoked beats unknown", []*result.CertRevocationResult{res(result.ResultUnknown, down), res(result.ResultRevoked), res(result.ResultNonRevokable)}, result.ResultRevoked, "CN=inter", 1},
		{"unknown nearest the leaf", []*result.CertRevocationResult{res(result.ResultUnknown, down), res(result.ResultUnknown, down), res(result.ResultNonRevokable)}, result.ResultUnknown, "CN=leaf", 2},
		{"missing result is unknown", []*result.CertRevocationResult{res(result.ResultOK), nil, res(result.ResultNonRevokable)}, result.ResultUnknown, "CN=inter", 0},
	} {
		v, err := Combine(tc.results, chain)
		if err != nil || v.Result != tc.want || v.Subject != tc.subject || len(v.Notes) != tc.notes {
			t.Errorf("%s: %+v, %v", tc.name, v, err)
		}
		if len(v.Notes) == 2 && (v.Notes[0].Index != 1 || v.Notes[1].Index != 0) {
			t.Errorf("%s: notes are not root first: %+v", tc.name, v.Notes)
		}
	}
	if v, err := Combine([]*result.CertRevocationResult{res(result.ResultOK)}, chain); err == nil || v.Result != result.ResultUnknown {
		t.Errorf("mismatched results: %+v, %v", v, err)
	}
}
