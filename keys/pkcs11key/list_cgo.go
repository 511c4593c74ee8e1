//go:build cgo

package pkcs11key

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// List loads the module and lists its tokens, their key pairs (each with the
// PKCS#11 URI that selects it) and their certificates. It logs in only when
// opts.Login asks for private objects or a token shows no key without login,
// and then only with a PIN from opts.PIN.
func List(opts ListOptions) (*Inventory, error) {
	if !filepath.IsAbs(opts.Module) {
		return nil, invalidf("PKCS#11 module %q is not an absolute path", opts.Module)
	}
	mc := moduleChoice{path: filepath.Clean(opts.Module), source: "--module"}
	if err := checkModuleFile(mc); err != nil {
		return nil, err
	}
	m, err := loadModule(mc)
	if err != nil {
		return nil, err
	}
	defer m.close()
	inv := &Inventory{Module: mc.path}
	info, err := m.ctx.GetInfo()
	if err != nil {
		return nil, ckrError("read the module information (C_GetInfo)", err, "")
	}
	inv.Library = LibraryInfo{
		Manufacturer: strings.TrimRight(info.ManufacturerID, " \x00"),
		Description:  strings.TrimRight(info.LibraryDescription, " \x00"),
		Version:      fmt.Sprintf("%d.%d", info.LibraryVersion.Major, info.LibraryVersion.Minor),
		Cryptoki:     fmt.Sprintf("%d.%d", info.CryptokiVersion.Major, info.CryptokiVersion.Minor),
	}
	all, err := m.tokens()
	if err != nil {
		return nil, err
	}
	var toks []token
	for _, t := range all {
		if opts.Token == "" || t.info.Label == opts.Token {
			toks = append(toks, t)
		}
	}
	if opts.Token != "" && len(toks) == 0 {
		label := opts.Token
		return nil, noToken(&URI{Token: &label}, mc.path, all)
	}
	shared := sharedLabels(all)
	for _, t := range toks {
		ti, err := listToken(m, t, opts, shared[t.info.Label])
		if err != nil {
			return nil, err
		}
		inv.Tokens = append(inv.Tokens, ti)
	}
	return inv, nil
}

func listToken(m *module, t token, opts ListOptions, labelShared bool) (TokenInventory, error) {
	ti := TokenInventory{
		SlotID:        uint64(t.slot),
		Label:         t.info.Label,
		Manufacturer:  t.info.ManufacturerID,
		Model:         t.info.Model,
		Serial:        t.info.SerialNumber,
		LoginRequired: t.loginRequired(),
	}
	s, err := m.openSession(t)
	if err != nil {
		return ti, err
	}
	defer s.close()
	cands, certs, err := s.scan(nil)
	if err != nil {
		return ti, err
	}
	// Private objects are needed when asked for, or when the token shows
	// nothing before login.
	if t.loginRequired() && (opts.Login || len(cands) == 0 && len(certs) == 0) {
		pin := ErrNoPIN.Error()
		var perr error = ErrNoPIN
		if opts.PIN != nil {
			pin, perr = opts.PIN(ti)
		}
		switch {
		case errors.Is(perr, ErrNoPIN):
			ti.Notes = append(ti.Notes, "not logged in: private keys, and objects the token shows only after login, are not listed; set "+EnvPIN+" or give --pin-source to list them")
		case perr != nil:
			return ti, perr
		default:
			if err := s.loginWith(pin, pinSource{desc: "the PIN given"}); err != nil {
				return ti, err
			}
			if cands, certs, err = s.scan(nil); err != nil {
				return ti, err
			}
		}
	} else if t.loginRequired() {
		ti.Notes = append(ti.Notes, "not logged in: private keys are not listed (use --login to check that each key has one)")
	}
	ti.LoggedIn = s.loggedIn
	privKnown := s.loggedIn || !t.loginRequired()
	now := time.Now()
	for _, c := range cands {
		e := KeyEntry{
			URI:        uriOf(c.keyPair, m.path, labelShared),
			Label:      c.label,
			ID:         c.id,
			KeyType:    keyDescription(c.pub),
			PrivateKey: PrivateUnknown,
		}
		if c.pubErr != nil {
			e.Unsupported = c.pubErr.Error()
		} else if spec, err := specName(c.pub); err != nil {
			e.Unsupported = err.Error()
		} else {
			e.KeySpec = spec
		}
		if privKnown {
			e.PrivateKey = PrivateAbsent
			if c.hasPrivate {
				e.PrivateKey = PrivatePresent
			}
		}
		if leaves := certsOf(c.keyPair, certs); len(leaves) > 0 {
			e.Certificate = pickLeaf(c.pub, leaves, now).cert
		}
		ti.Keys = append(ti.Keys, e)
	}
	sort.SliceStable(ti.Keys, func(i, j int) bool {
		if ti.Keys[i].Label != ti.Keys[j].Label {
			return ti.Keys[i].Label < ti.Keys[j].Label
		}
		return bytes.Compare(ti.Keys[i].ID, ti.Keys[j].ID) < 0
	})
	for _, c := range certs {
		ti.Certificates = append(ti.Certificates, CertEntry{Label: c.label, ID: c.id, Cert: c.cert})
	}
	sort.SliceStable(ti.Certificates, func(i, j int) bool { return ti.Certificates[i].Label < ti.Certificates[j].Label })
	return ti, nil
}

// certsOf returns the certificate objects of a key pair: those with its
// CKA_ID, or for a key without one, its label.
func certsOf(k keyPair, certs []certObject) []certObject {
	var out []certObject
	for _, c := range certs {
		if len(k.id) > 0 && bytes.Equal(c.id, k.id) || len(k.id) == 0 && c.label == k.label {
			out = append(out, c)
		}
	}
	return out
}
