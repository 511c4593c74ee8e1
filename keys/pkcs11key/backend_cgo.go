//go:build cgo

package pkcs11key

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/keyward/keyward/keys"
)

// Open finds the one key the URI names and assembles its certificate
// chain, without logging in unless the token hides its public objects.
//
// With plugin config cert_chain the chain and the public key come from the
// file and Open does not load the module at all: describe-key then costs
// what a file key costs, and only signing opens the token. Without it Open
// loads the module, finds the key and reads the chain from the token. Either
// way the key logs in when it first signs; Close ends the session and
// unloads the module.
func (b Backend) Open(_ context.Context, keyID string, cfg keys.Config) (*keys.Key, error) {
	u, mc, cc, pin, err := b.configure(keyID, cfg)
	if err != nil {
		return nil, err
	}
	sg := &signer{b: b, uri: u, module: mc, pin: pin}
	if cc.certChain != "" {
		chain, err := keys.ReadChain(cc.certChain)
		if err != nil {
			return nil, err
		}
		// The token is opened by the first Sign, which checks that its
		// key is the leaf's.
		sg.fileLeaf, sg.pub = chain[0], chain[0].PublicKey
		return &keys.Key{Signer: sg, Chain: chain, ChainSource: fmt.Sprintf("%s file %q", keys.ConfigCertChain, cc.certChain), Close: sg.close}, nil
	}
	var caCerts []*x509.Certificate
	if cc.caCerts != "" {
		if caCerts, err = readCACerts(cc.caCerts); err != nil {
			return nil, err
		}
	}
	if err := sg.openToken(); err != nil {
		return nil, err
	}
	sg.pub = sg.key.pub
	b.cache().store(cacheName(u, mc.path), sg.pub)
	chain, source, err := tokenChain(sg.s, sg.key, caCerts, cc.caCerts)
	if err != nil {
		sg.close()
		return nil, err
	}
	return &keys.Key{Signer: sg, Chain: chain, ChainSource: source, Close: sg.close}, nil
}

// Describe returns the public key of the key the URI names, for
// describe-key, which only reports the key spec: with plugin config
// cert_chain the chain file's leaf, without loading the module; otherwise
// the public key remembered when the key last signed (see keyCache), or else
// the token's, found without logging in and without reading the chain. The
// configuration is checked as by Open.
func (b Backend) Describe(_ context.Context, keyID string, cfg keys.Config) (crypto.PublicKey, error) {
	u, mc, cc, pin, err := b.configure(keyID, cfg)
	if err != nil {
		return nil, err
	}
	if cc.certChain != "" {
		chain, err := keys.ReadChain(cc.certChain)
		if err != nil {
			return nil, err
		}
		return chain[0].PublicKey, nil
	}
	cache, name := b.cache(), cacheName(u, mc.path)
	if pub, ok := cache.load(name); ok {
		return pub, nil
	}
	sg := &signer{b: b, uri: u, module: mc, pin: pin}
	if err := sg.openToken(); err != nil {
		return nil, err
	}
	defer sg.close()
	if sg.key.pub != nil {
		cache.store(name, sg.key.pub)
	}
	return sg.key.pub, nil
}

var _ keys.Describer = Backend{}

// configure checks what Open and Describe are given, before any module is
// loaded: the key URI, the module, the chain settings and the PIN source.
func (b Backend) configure(keyID string, cfg keys.Config) (*URI, moduleChoice, chainConfig, pinSource, error) {
	u, err := ParseURI(keyID)
	if err != nil {
		return nil, moduleChoice{}, chainConfig{}, pinSource{}, err
	}
	mc, err := b.resolveModule(u, cfg)
	if err != nil {
		return nil, moduleChoice{}, chainConfig{}, pinSource{}, err
	}
	cc, err := readChainConfig(cfg)
	if err != nil {
		return nil, moduleChoice{}, chainConfig{}, pinSource{}, err
	}
	pin, err := b.resolvePIN(u)
	if err != nil {
		return nil, moduleChoice{}, chainConfig{}, pinSource{}, err
	}
	return u, mc, cc, pin, nil
}

// openToken loads the module and finds the key, keeping a session on its
// token.
//
// SoftHSM2's file store is not safe against a login in another process:
// each login rewrites the token file, and a process reading the token at
// that moment may see no token, no object or CKR_GENERAL_ERROR. Concurrent
// notation sign processes against one token do exactly that, so opening is
// retried a few times, briefly, on those symptoms. A token that really lacks
// the key costs the retries (about 30 ms) before the error.
func (k *signer) openToken() error {
	var err error
	for attempt := 1; ; attempt++ {
		err = k.openTokenOnce()
		if err == nil || !transient(err) || attempt == openAttempts {
			return err
		}
		time.Sleep(time.Duration(attempt*attempt) * openRetryDelay)
	}
}

// Retries of openToken.
const (
	openAttempts   = 4
	openRetryDelay = 3 * time.Millisecond
)

// transient reports whether err may be a token seen while another process
// rewrote it (see openToken).
func transient(err error) bool {
	var nf *notFound
	return isCode(err, pkcs11.CKR_GENERAL_ERROR) || errors.As(err, &nf)
}

func (k *signer) openTokenOnce() error {
	m, err := loadModule(k.module)
	if err != nil {
		return err
	}
	var fileChain []*x509.Certificate
	if k.fileLeaf != nil {
		fileChain = []*x509.Certificate{k.fileLeaf}
	}
	key, s, err := k.b.findKey(m, k.uri, k.pin, fileChain)
	if err != nil {
		m.close()
		return err
	}
	if k.fileLeaf != nil {
		type equaler interface{ Equal(crypto.PublicKey) bool }
		if pub, ok := key.pub.(equaler); !ok || !pub.Equal(k.fileLeaf.PublicKey) {
			s.close()
			m.close()
			return invalidf("the %s is not the key of the leaf certificate (subject %q) in plugin config %s: put the certificate issued for this key first in the bundle, or fix the key id",
				key.describe(), k.fileLeaf.Subject.String(), keys.ConfigCertChain)
		}
	}
	k.s, k.key = s, key
	return nil
}

// findKey finds the one key pair u names among the tokens it selects and
// returns it with an open session on its token.
func (b Backend) findKey(m *module, u *URI, pin pinSource, fileChain []*x509.Certificate) (keyPair, *session, error) {
	all, err := m.tokens()
	if err != nil {
		return keyPair{}, nil, err
	}
	var toks []token
	for _, t := range all {
		if t.matches(u) {
			toks = append(toks, t)
		}
	}
	if len(toks) == 0 {
		return keyPair{}, nil, noToken(u, m.path, all)
	}
	shared := sharedLabels(all)

	var sessions []*session
	closeAll := func(keep *session) {
		for _, s := range sessions {
			if s != keep {
				s.close()
			}
		}
	}
	var found []candidate
	var foundIn []*session
	search := func(s *session) error {
		cands, _, err := s.scan(objectFilter(u))
		if err != nil {
			return err
		}
		for _, c := range cands {
			found = append(found, c)
			foundIn = append(foundIn, s)
		}
		return nil
	}
	for _, t := range toks {
		s, err := m.openSession(t)
		if err != nil {
			closeAll(nil)
			return keyPair{}, nil, err
		}
		sessions = append(sessions, s)
		if err := search(s); err != nil {
			closeAll(nil)
			return keyPair{}, nil, err
		}
	}
	// A token may hide its public objects until login (CKA_PRIVATE=true):
	// search again logged in, when there is a PIN to log in with.
	if len(found) == 0 && pin.configured() {
		for _, s := range sessions {
			if !s.tok.loginRequired() {
				continue
			}
			if err := s.login(pin, b.getenv); err != nil {
				closeAll(nil)
				return keyPair{}, nil, err
			}
			if err := search(s); err != nil {
				closeAll(nil)
				return keyPair{}, nil, err
			}
		}
	}
	switch {
	case len(found) == 0:
		err := b.noKey(u, m.path, sessions, shared, pin)
		closeAll(nil)
		return keyPair{}, nil, err
	case len(found) > 1:
		closeAll(nil)
		return keyPair{}, nil, invalidf("PKCS#11 key id selects %d keys (%s); it must select one. Add object=<label> or id=<percent-encoded id> (and token=, serial= if tokens share a label). The keys:%s",
			len(found), u.describe(), listCandidates(found, m.path, shared))
	}
	c, s := found[0], foundIn[0]
	closeAll(s)
	if c.pub == nil && fileChain != nil {
		// An EC private key object alone does not carry its public key:
		// take the cert_chain leaf's. The signature's self-verification
		// (keys.Key.SignMessage) catches a leaf of another key.
		c.pub, c.pubErr, c.from = fileChain[0].PublicKey, nil, "cert_chain leaf"
	}
	if c.pubErr != nil {
		s.close()
		return keyPair{}, nil, invalidf("%s cannot sign for notation: %v", c.describe(), c.pubErr)
	}
	if _, err := keys.SpecOf(c.pub); err != nil {
		s.close()
		return keyPair{}, nil, invalidf("%s: %v", c.describe(), err)
	}
	if len(c.id) == 0 && c.label == "" {
		s.close()
		return keyPair{}, nil, invalidf("%s has neither CKA_ID nor CKA_LABEL, so its private key cannot be found: set an id on the key pair", c.describe())
	}
	return c.keyPair, s, nil
}

// noToken explains that no token matches, listing the tokens present.
func noToken(u *URI, modulePath string, all []token) error {
	if len(all) == 0 {
		return notFoundf("PKCS#11 module %q shows no token: insert or connect the token (for SoftHSM, create one with softhsm2-util --init-token and check SOFTHSM2_CONF)", modulePath)
	}
	var b strings.Builder
	for _, t := range all {
		fmt.Fprintf(&b, "\n  token=%s (manufacturer %q, model %q, serial %q, slot-id %d)",
			escape(t.info.Label, false), t.info.ManufacturerID, t.info.Model, t.info.SerialNumber, t.slot)
	}
	return notFoundf("no token of PKCS#11 module %q matches the key id (%s); the tokens present:%s", modulePath, u.describe(), b.String())
}

// noKey explains that no key matches, listing the keys of the selected
// tokens.
func (b Backend) noKey(u *URI, modulePath string, sessions []*session, shared map[string]bool, pin pinSource) error {
	var all []candidate
	hidden := false
	var names []string
	for _, s := range sessions {
		names = append(names, s.tok.String())
		cands, _, err := s.scan(nil)
		if err != nil {
			return err
		}
		all = append(all, cands...)
		if s.tok.loginRequired() && !s.loggedIn {
			hidden = true
		}
	}
	msg := fmt.Sprintf("no key on %s matches the key id (%s)", strings.Join(names, ", "), u.describe())
	if len(all) == 0 {
		msg += "; the token shows no keys"
	} else {
		msg += "; the keys found:" + listCandidates(all, modulePath, shared)
	}
	if u.HasID && isHexText(u.ID) {
		msg += fmt.Sprintf("\nNote: id is percent-encoded bytes: id=%s means the bytes %q; for the byte value 0x%s write id=%s",
			string(u.ID), u.ID, string(u.ID), percentHex(string(u.ID)))
	}
	if hidden && !pin.configured() {
		msg += fmt.Sprintf("\nNote: keys that the token shows only after login are not listed: configure the PIN (pin-source=file:/path in the key id, or %s) to search them too", EnvPIN)
	}
	return notFoundf("%s", msg)
}

// tokenChain assembles the chain from the token's certificate objects and
// the ca_certs bundle.
func tokenChain(s *session, key keyPair, caCerts []*x509.Certificate, caPath string) ([]*x509.Certificate, string, error) {
	by := "id " + hexID(key.id)
	var cands []certObject
	var err error
	if len(key.id) > 0 {
		if cands, err = s.certObjects([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, key.id)}); err != nil {
			return nil, "", err
		}
	}
	if len(cands) == 0 && key.label != "" {
		by = fmt.Sprintf("label %q", key.label)
		if cands, err = s.certObjects([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, key.label)}); err != nil {
			return nil, "", err
		}
	}
	if len(cands) == 0 {
		return nil, "", invalidf("%s has no certificate on the token: store the leaf certificate with the key's id (e.g. pkcs11-tool --module <module> --token-label %q --login --write-object leaf.der --type cert --id %s --label %q), or set plugin config %s=<PEM bundle: leaf first, ending with the root>",
			key.describe(), key.tok.info.Label, hexID(key.id), key.label, keys.ConfigCertChain)
	}
	now := time.Now()
	leaf := pickLeaf(key.pub, cands, now)
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := key.pub.(equaler); ok && !k.Equal(leaf.cert.PublicKey) {
		return nil, "", invalidf("the certificate object with %s on %s (subject %q) certifies another key than the %s: replace it with the certificate issued for this key, or set plugin config %s",
			by, key.tok, leaf.cert.Subject.String(), key.describe(), keys.ConfigCertChain)
	}
	where := fmt.Sprintf("the certificate objects of %s", key.tok)
	if caPath != "" {
		where += fmt.Sprintf(" or %s file %q", ConfigCACerts, caPath)
	}
	var allCerts []certObject
	allRead := false
	find := func(c *x509.Certificate) ([]*x509.Certificate, error) {
		var out []*x509.Certificate
		for _, ca := range caCerts {
			if string(ca.RawSubject) == string(c.RawIssuer) {
				out = append(out, ca)
			}
		}
		objs, err := s.certObjects([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, c.RawIssuer)})
		if err != nil {
			return nil, err
		}
		if len(objs) == 0 {
			// Not every tool sets CKA_SUBJECT: compare the parsed
			// subjects of every certificate object, read once.
			if !allRead {
				if allCerts, err = s.certObjects(nil); err != nil {
					return nil, err
				}
				allRead = true
			}
			objs = allCerts
		}
		for _, o := range objs {
			if string(o.cert.RawSubject) == string(c.RawIssuer) {
				out = append(out, o.cert)
			}
		}
		return out, nil
	}
	chain, err := buildChain(leaf.cert, find, now, where)
	if err != nil {
		return nil, "", err
	}
	source := fmt.Sprintf("%s (leaf: the certificate object with %s)", where, by)
	return chain, source, nil
}
