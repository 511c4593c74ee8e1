//go:build cgo

package pkcs11key

import (
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/keyward/keyward/keys"
)

// module is a loaded and initialized PKCS#11 library.
type module struct {
	path string
	ctx  *pkcs11.Ctx
	refs int // guarded by loaded.mu
	// owner is false when other code of the process initialized the
	// library; close then leaves it initialized.
	owner bool
}

// loaded holds the modules this process has initialized. C_Initialize and
// C_Finalize act on the whole process (PKCS#11 v2.40 §5.4): a second
// C_Initialize fails with CKR_CRYPTOKI_ALREADY_INITIALIZED and one
// C_Finalize ends every session of the library. So two keys of one module
// open at once (a long-lived process, parallel tests) share one
// initialization, and the last to close finalizes it.
var loaded = struct {
	mu      sync.Mutex
	modules map[string]*module
}{modules: map[string]*module{}}

// loadModule dlopens the library and calls C_Initialize, or shares the
// initialization of a key already open. This is the one place a module is
// loaded: get-plugin-metadata never gets here.
func loadModule(m moduleChoice) (*module, error) {
	loaded.mu.Lock()
	defer loaded.mu.Unlock()
	if mod, ok := loaded.modules[m.path]; ok {
		mod.refs++
		return mod, nil
	}
	release, err := probeModule(m)
	if err != nil {
		return nil, err
	}
	defer release()
	ctx := pkcs11.New(m.path)
	if ctx == nil {
		return nil, invalidf("PKCS#11 module %q (%s) could not be loaded: it is not a shared library of this platform (%s), or a library it needs is missing; check it with `ldd %s`",
			m.path, m.source, multiarch(), m.path)
	}
	owner := true
	if err := ctx.Initialize(); err != nil {
		if !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, ckrError(fmt.Sprintf("initialize PKCS#11 module %q (C_Initialize)", m.path), err, "")
		}
		// Initialized by other code of this process (not through
		// loadModule): use it, and leave finalizing to that code.
		owner = false
	}
	mod := &module{path: m.path, ctx: ctx, refs: 1, owner: owner}
	loaded.modules[m.path] = mod
	return mod, nil
}

// close releases one reference; the last finalizes and unloads the
// library, which closes its sessions.
func (m *module) close() {
	loaded.mu.Lock()
	defer loaded.mu.Unlock()
	if m.refs == 0 {
		return
	}
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(loaded.modules, m.path)
	if m.owner {
		_ = m.ctx.Finalize()
	}
	m.ctx.Destroy()
}

// token is a slot with a token present.
type token struct {
	slot uint
	info pkcs11.TokenInfo
}

func (t token) loginRequired() bool { return t.info.Flags&pkcs11.CKF_LOGIN_REQUIRED != 0 }
func (t token) pinPad() bool        { return t.info.Flags&pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH != 0 }

// String names the token for messages.
func (t token) String() string {
	return fmt.Sprintf("token %q (serial %q, slot %d)", t.info.Label, t.info.SerialNumber, t.slot)
}

// tokens lists the slots that hold a token.
func (m *module) tokens() ([]token, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return nil, ckrError("list the module's slots (C_GetSlotList)", err, "")
	}
	var out []token
	for _, s := range slots {
		info, err := m.ctx.GetTokenInfo(s)
		if err != nil {
			if isCode(err, pkcs11.CKR_TOKEN_NOT_PRESENT) || isCode(err, pkcs11.CKR_TOKEN_NOT_RECOGNIZED) {
				continue
			}
			return nil, ckrError(fmt.Sprintf("read the token in slot %d (C_GetTokenInfo)", s), err, "")
		}
		if info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue // a blank token (SoftHSM's free slot): nothing to sign with
		}
		out = append(out, token{slot: s, info: info})
	}
	return out, nil
}

// matches reports whether t has the token attributes of u.
func (t token) matches(u *URI) bool {
	eq := func(want *string, have string) bool { return want == nil || *want == have }
	return eq(u.Token, t.info.Label) && eq(u.Manufacturer, t.info.ManufacturerID) &&
		eq(u.Serial, t.info.SerialNumber) && eq(u.Model, t.info.Model) &&
		(u.SlotID == nil || *u.SlotID == uint64(t.slot))
}

// session is a read-only session on one token.
type session struct {
	m        *module
	tok      token
	h        pkcs11.SessionHandle
	loggedIn bool
}

func (m *module) openSession(t token) (*session, error) {
	h, err := m.ctx.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return nil, ckrError(fmt.Sprintf("open a session with %s (C_OpenSession)", t), err, t.info.Label)
	}
	return &session{m: m, tok: t, h: h}, nil
}

func (s *session) close() {
	if s != nil {
		_ = s.m.ctx.CloseSession(s.h)
	}
}

// login logs the user in with the PIN from src. A token with a PIN pad logs
// in without one.
func (s *session) login(src pinSource, getenv func(string) string) error {
	if s.loggedIn {
		return nil
	}
	var pin string
	switch {
	case src.configured():
		p, err := src.read(getenv)
		if err != nil {
			return err
		}
		pin = p
	case s.tok.pinPad():
		// CKF_PROTECTED_AUTHENTICATION_PATH: the PIN is entered on the
		// device; C_Login takes none.
	default:
		return invalidf("%s needs the user PIN to sign: add pin-source=file:/path/to/pin to the key id's query (a file only you can read, chmod 600) or export %s in notation's environment",
			s.tok, EnvPIN)
	}
	return s.loginWith(pin, src)
}

// loginWith logs the user in with pin; src names its source in messages.
func (s *session) loginWith(pin string, src pinSource) error {
	if s.loggedIn {
		return nil
	}
	err := s.m.ctx.Login(s.h, pkcs11.CKU_USER, pin)
	if err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return loginError(s.tok, src, err)
	}
	s.loggedIn = true
	return nil
}

// loginError explains a refused login without repeating the PIN. The
// error wraps the pkcs11.Error, so that callers can tell the codes apart.
func loginError(t token, src pinSource, err error) error {
	code, ok := asCode(err)
	if !ok {
		return fmt.Errorf("log in to %s: %w", t, err)
	}
	name := ckrName(err)
	denied := func(format string, args ...any) error {
		return keys.WithKind(keys.KindAccessDenied, &p11Error{msg: fmt.Sprintf(format, args...), code: pkcs11.Error(code)})
	}
	switch code {
	case pkcs11.CKR_PIN_INCORRECT:
		return denied("PKCS#11 login to %s was refused: the PIN from %s is wrong (%s); correct it before retrying, as tokens lock the PIN after a few wrong attempts", t, src, name)
	case pkcs11.CKR_PIN_LOCKED:
		return denied("PKCS#11 login to %s was refused: the user PIN is locked (%s); have the security officer unlock or reset it (e.g. pkcs11-tool --unlock-pin, or softhsm2-util for SoftHSM)", t, name)
	case pkcs11.CKR_PIN_EXPIRED:
		return denied("PKCS#11 login to %s was refused: the user PIN has expired (%s); change it with the token's tools, then update %s", t, name, src)
	case pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
		return denied("PKCS#11 login to %s was refused: the PIN from %s has characters or a length the token does not accept (%s)", t, src, name)
	case pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
		return denied("PKCS#11 login to %s was refused: the token has no user PIN yet (%s); initialize it (e.g. pkcs11-tool --init-pin)", t, name)
	}
	return ckrError(fmt.Sprintf("log in to %s (C_Login)", t), err, t.info.Label)
}

// find returns the objects matching template, at most limit of them.
func (s *session) find(template []*pkcs11.Attribute, limit int) ([]pkcs11.ObjectHandle, error) {
	if err := s.m.ctx.FindObjectsInit(s.h, template); err != nil {
		return nil, ckrError(fmt.Sprintf("search %s (C_FindObjectsInit)", s.tok), err, s.tok.info.Label)
	}
	var out []pkcs11.ObjectHandle
	var ferr error
	for len(out) < limit {
		hs, _, err := s.m.ctx.FindObjects(s.h, 64)
		if err != nil {
			ferr = ckrError(fmt.Sprintf("search %s (C_FindObjects)", s.tok), err, s.tok.info.Label)
			break
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	if err := s.m.ctx.FindObjectsFinal(s.h); err != nil && ferr == nil {
		ferr = ckrError(fmt.Sprintf("search %s (C_FindObjectsFinal)", s.tok), err, s.tok.info.Label)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, ferr
}

// attrs reads attributes of an object. An attribute the object does not
// have (or hides) is returned as nil rather than failing the whole read.
func (s *session) attrs(h pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = pkcs11.NewAttribute(t, nil)
	}
	got, err := s.m.ctx.GetAttributeValue(s.h, h, tmpl)
	if err != nil {
		if !isCode(err, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID) && !isCode(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			return nil, ckrError(fmt.Sprintf("read object attributes on %s (C_GetAttributeValue)", s.tok), err, s.tok.info.Label)
		}
		// One attribute is missing: read them one at a time.
		out := map[uint][]byte{}
		for _, t := range types {
			a, err := s.m.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(t, nil)})
			if err == nil && len(a) == 1 {
				out[t] = a[0].Value
			}
		}
		return out, nil
	}
	out := make(map[uint][]byte, len(got))
	for _, a := range got {
		out[a.Type] = a.Value
	}
	return out, nil
}

// keyObject is a public or private key object.
type keyObject struct {
	handle pkcs11.ObjectHandle
	class  uint
	id     []byte
	label  string
	// pub is the public key; nil with pubErr set when the key's type or
	// size is not one notation signs with, or (private keys) unreadable.
	pub    crypto.PublicKey
	pubErr error
}

// keys returns the key objects of class matching the template extra.
func (s *session) keyObjects(class uint, extra []*pkcs11.Attribute) ([]keyObject, error) {
	tmpl := append([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}, extra...)
	hs, err := s.find(tmpl, maxObjectsListed)
	if err != nil {
		return nil, err
	}
	out := make([]keyObject, 0, len(hs))
	for _, h := range hs {
		a, err := s.attrs(h, pkcs11.CKA_ID, pkcs11.CKA_LABEL, pkcs11.CKA_KEY_TYPE)
		if err != nil {
			return nil, err
		}
		k := keyObject{handle: h, class: class, id: a[pkcs11.CKA_ID], label: string(a[pkcs11.CKA_LABEL])}
		k.pub, k.pubErr = s.publicKey(h, a[pkcs11.CKA_KEY_TYPE])
		out = append(out, k)
	}
	return out, nil
}

// ckkECEdwards is CKK_EC_EDWARDS (PKCS#11 v3.0), which miekg/pkcs11 v1.1.2
// does not define.
const ckkECEdwards = 0x40

// publicKey reads the public key of a key object. For private keys only RSA
// gives it (CKA_MODULUS, CKA_PUBLIC_EXPONENT); an EC private key object does
// not carry its point.
func (s *session) publicKey(h pkcs11.ObjectHandle, keyType []byte) (crypto.PublicKey, error) {
	kt, ok := ulong(keyType)
	if !ok {
		return nil, errors.New("the key object has no readable CKA_KEY_TYPE")
	}
	switch kt {
	case pkcs11.CKK_RSA:
		a, err := s.attrs(h, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return nil, err
		}
		if a[pkcs11.CKA_MODULUS] == nil {
			return nil, errors.New("the RSA key object has no readable modulus")
		}
		return rsaPublicKey(a[pkcs11.CKA_MODULUS], a[pkcs11.CKA_PUBLIC_EXPONENT])
	case pkcs11.CKK_EC:
		a, err := s.attrs(h, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT)
		if err != nil {
			return nil, err
		}
		if a[pkcs11.CKA_EC_POINT] == nil {
			return nil, errors.New("the EC key object has no readable point")
		}
		return ecPublicKey(a[pkcs11.CKA_EC_PARAMS], a[pkcs11.CKA_EC_POINT])
	case ckkECEdwards:
		return nil, errors.New("EdDSA keys are not supported: notation signs with RSA or EC P-256/P-384/P-521 keys")
	}
	return nil, fmt.Errorf("key type 0x%x is not supported: notation signs with RSA or EC keys", kt)
}

// certObjects returns the X.509 certificate objects matching extra.
func (s *session) certObjects(extra []*pkcs11.Attribute) ([]certObject, error) {
	tmpl := append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
	}, extra...)
	hs, err := s.find(tmpl, maxObjectsListed)
	if err != nil {
		return nil, err
	}
	out := make([]certObject, 0, len(hs))
	for _, h := range hs {
		a, err := s.attrs(h, pkcs11.CKA_ID, pkcs11.CKA_LABEL, pkcs11.CKA_VALUE)
		if err != nil {
			return nil, err
		}
		c, err := x509.ParseCertificate(a[pkcs11.CKA_VALUE])
		if err != nil {
			// A certificate object keyward cannot parse cannot be part of
			// a chain notation accepts; skip it rather than fail on a
			// token that also holds unrelated objects.
			continue
		}
		out = append(out, certObject{id: a[pkcs11.CKA_ID], label: string(a[pkcs11.CKA_LABEL]), cert: c})
	}
	return out, nil
}

// objectFilter is the CKA_LABEL / CKA_ID part of a search template for u.
func objectFilter(u *URI) []*pkcs11.Attribute {
	var t []*pkcs11.Attribute
	if u.Object != nil {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, *u.Object))
	}
	if u.HasID {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, u.ID))
	}
	return t
}

// ulong decodes a CK_ULONG attribute value (native byte order and size).
func ulong(b []byte) (uint, bool) {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b)), true
	case 4:
		return uint(binary.NativeEndian.Uint32(b)), true
	}
	return 0, false
}

// asCode returns the CK_RV of a PKCS#11 error.
func asCode(err error) (uint, bool) {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e), true
	}
	return 0, false
}

func isCode(err error, code uint) bool {
	c, ok := asCode(err)
	return ok && c == code
}

// ckrName returns the CKR_ name of a PKCS#11 error, or its hex value for a
// vendor-defined code.
func ckrName(err error) string {
	code, ok := asCode(err)
	if !ok {
		return err.Error()
	}
	// miekg/pkcs11 formats "pkcs11: 0x%X: CKR_NAME".
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg[i+2:], "CKR_") {
		return msg[i+2:]
	}
	if code >= pkcs11.CKR_VENDOR_DEFINED {
		return fmt.Sprintf("CKR_VENDOR_DEFINED+0x%X", code-pkcs11.CKR_VENDOR_DEFINED)
	}
	return fmt.Sprintf("CKR 0x%08X", code)
}

// ckrError classifies a failed PKCS#11 call: missing token or unusable key
// → KindInvalid with the fix, refused PIN → KindAccessDenied, a full token
// → KindBusy, anything else unclassified (ERROR). The message names the
// operation and the CKR_ code. label names the token, if known.
func ckrError(op string, err error, label string) error {
	code, ok := asCode(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	name := ckrName(err)
	wrap := func(kind keys.ErrorKind, format string, args ...any) error {
		e := &p11Error{msg: fmt.Sprintf("%s failed with %s", op, name) + fmt.Sprintf(format, args...), code: pkcs11.Error(code)}
		if kind == keys.KindInternal {
			return e
		}
		return keys.WithKind(kind, e)
	}
	switch code {
	case pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_SLOT_ID_INVALID:
		return wrap(keys.KindInvalid, ": the token %q is not present; insert or connect it and retry", label)
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE,
		pkcs11.CKR_USER_PIN_NOT_INITIALIZED, pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_FUNCTION_REJECTED:
		return wrap(keys.KindAccessDenied, ": the token refused access")
	case pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED:
		return wrap(keys.KindInvalid, ": the key may not sign (its CKA_SIGN attribute is false); use a key generated with signing allowed")
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_KEY_SIZE_RANGE:
		return wrap(keys.KindInvalid, ": the token cannot sign with this key the way notation requires (ECDSA over a digest, or RSASSA-PSS with MGF1 and a salt as long as the hash)")
	case pkcs11.CKR_SESSION_COUNT, pkcs11.CKR_DEVICE_MEMORY:
		return wrap(keys.KindBusy, ": the token is busy; retry later")
	}
	return wrap(keys.KindInternal, "")
}
