//go:build cgo

package pkcs11key

import (
	"bytes"
	"crypto"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// pairRef identifies a key pair on a token: by CKA_ID when it has one,
// otherwise by label (PKCS#11 v2.40 §4.4: CKA_ID ties a key pair and its
// certificate together).
func pairRef(id []byte, label string) string {
	if len(id) > 0 {
		return "id:" + string(id)
	}
	return "label:" + label
}

// candidate is a key pair found on a token, with the error that keeps it
// from signing, if any.
type candidate struct {
	keyPair
	pubErr     error
	hasPrivate bool // a private key object was seen (only known after login)
}

// groupPairs merges the key objects and certificates of one token into key
// pairs. Public key objects give the public key; a certificate stands in for
// a missing public key object (some tokens store none); a private key object
// alone is a pair too (RSA private keys carry their public key). CA
// certificates are not key pairs.
func groupPairs(tok token, pubs, privs []keyObject, certs []certObject) []candidate {
	var out []candidate
	index := map[string]int{}
	add := func(id []byte, label string, pub crypto.PublicKey, pubErr error, from string, private bool) {
		ref := pairRef(id, label)
		if i, ok := index[ref]; ok {
			c := &out[i]
			if c.pub == nil && pub != nil {
				c.pub, c.pubErr, c.from = pub, nil, from
			}
			if c.label == "" {
				c.label = label
			}
			c.hasPrivate = c.hasPrivate || private
			return
		}
		index[ref] = len(out)
		out = append(out, candidate{
			keyPair:    keyPair{tok: tok, id: bytes.Clone(id), label: label, pub: pub, from: from},
			pubErr:     pubErr,
			hasPrivate: private,
		})
	}
	for _, k := range pubs {
		add(k.id, k.label, k.pub, k.pubErr, "public key object", false)
	}
	for _, c := range certs {
		if c.cert.IsCA || len(c.id) == 0 && c.label == "" {
			continue
		}
		add(c.id, c.label, c.cert.PublicKey, nil, "certificate object", false)
	}
	for _, k := range privs {
		add(k.id, k.label, k.pub, k.pubErr, "private key object", true)
	}
	for i := range out {
		if out[i].pub == nil && out[i].pubErr == nil {
			out[i].pubErr = fmt.Errorf("its public key is unknown: the token has neither a public key object nor a certificate with this id")
		}
	}
	return out
}

// scan reads the key pairs of a token matching filter (nil: all), with the
// private keys when the session is logged in.
func (s *session) scan(filter []*pkcs11.Attribute) ([]candidate, []certObject, error) {
	pubs, err := s.keyObjects(pkcs11.CKO_PUBLIC_KEY, filter)
	if err != nil {
		return nil, nil, err
	}
	certs, err := s.certObjects(filter)
	if err != nil {
		return nil, nil, err
	}
	var privs []keyObject
	if s.loggedIn || !s.tok.loginRequired() {
		if privs, err = s.keyObjects(pkcs11.CKO_PRIVATE_KEY, filter); err != nil {
			return nil, nil, err
		}
	}
	return groupPairs(s.tok, pubs, privs, certs), certs, nil
}

// uriOf returns the PKCS#11 URI that selects the pair: the token by label
// (and serial when another token has the same label), the key by label and
// id, and the module path.
func uriOf(k keyPair, modulePath string, labelShared bool) string {
	u := URI{ModulePath: modulePath}
	label := k.tok.info.Label
	u.Token = &label
	if labelShared {
		serial := k.tok.info.SerialNumber
		u.Serial = &serial
	}
	if k.label != "" {
		l := k.label
		u.Object = &l
	}
	if len(k.id) > 0 {
		u.ID, u.HasID = k.id, true
	}
	return u.String()
}

// listCandidates formats candidates for an error message, one a line.
func listCandidates(cands []candidate, modulePath string, shared map[string]bool) string {
	var b strings.Builder
	for _, c := range cands {
		spec := "unsupported key"
		if c.pubErr == nil {
			if s, err := specName(c.pub); err == nil {
				spec = s
			}
		}
		fmt.Fprintf(&b, "\n  %s (%s, label %q, id %s)", uriOf(c.keyPair, modulePath, shared[c.tok.info.Label]), spec, c.label, hexID(c.id))
	}
	return b.String()
}

// sharedLabels returns the token labels used by more than one token.
func sharedLabels(toks []token) map[string]bool {
	n := map[string]int{}
	for _, t := range toks {
		n[t.info.Label]++
	}
	out := map[string]bool{}
	for l, c := range n {
		if c > 1 {
			out[l] = true
		}
	}
	return out
}
