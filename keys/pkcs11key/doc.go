// Package pkcs11key signs with keys kept in PKCS#11 tokens (HSMs, smartcards,
// YubiKey/PIV, TPMs, cloud HSMs, SoftHSM): the keys.Backend for key ids in
// the RFC 7512 PKCS#11 URI form.
//
// # Key ids
//
//	pkcs11:token=release;object=signing-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin
//
// Path attributes (before '?', separated by ';') select the token (token,
// manufacturer, serial, model, slot-id) and the key (object: its CKA_LABEL,
// id: its CKA_ID as percent-encoded bytes, so the byte 0x01 is id=%01;
// type=private or nothing). Query attributes (after '?', separated by '&')
// say how to load the module (module-path, module-name) and where the PIN is
// (pin-source). Values are percent-decoded; unknown attributes are refused by
// name. pin-value is refused: the key id is visible in the signer's command
// line and in notation's signingkeys.json. `keyward keys list --module PATH`
// prints the URI of every key a module exposes.
//
// The URI must match exactly one key across the tokens it selects; no match
// or several matches is an error that lists the keys found.
//
// # Module
//
// The PKCS#11 library is, in order:
//  1. module-path in the key id: an absolute path;
//  2. module-name in the key id: a p11-kit module name (a
//     <name>.module file in ~/.config/pkcs11/modules, /etc/pkcs11/modules or
//     /usr/share/p11-kit/modules), or a library <name>.so or lib<name>.so in
//     the usual module directories (/usr/lib/<multiarch>/pkcs11,
//     /usr/lib/pkcs11, /usr/lib64/pkcs11, /usr/local/lib/pkcs11,
//     /usr/lib/<multiarch>/softhsm, /usr/lib/softhsm, and /usr/lib/<multiarch>,
//     /usr/lib64, /usr/lib, /usr/local/lib themselves);
//  3. plugin config pkcs11_module=<absolute path>;
//  4. the environment variable KEYWARD_PKCS11_MODULE (a machine-wide default).
//
// The key id and the plugin config must agree when both name a module, and
// module-path and module-name must name the same library file: a
// contradiction is refused rather than resolved silently. The environment
// variable is used only when neither names a module.
//
// # PIN
//
// The user PIN is read from pin-source in the key id (file:/path, file:///path
// or /path; the file must not be readable by group or others, one trailing
// newline is ignored), else from the environment variable KEYWARD_PKCS11_PIN.
// It never appears in a message, a log or a file keyward writes. Tokens with
// a protected authentication path (a PIN pad) log in without a PIN.
//
// # Login policy
//
// notation runs the plugin three times per signature. get-plugin-metadata
// does not load the module at all. describe-key only reports the key spec
// ([Backend.Describe]): with plugin config cert_chain it takes the public key
// from the chain file; otherwise from the public key remembered when the
// key id last signed (a cache of public keys in
// $XDG_CACHE_HOME/keyward/pkcs11, see keyCache); only the first time does it
// load the module and find the key's public key, without logging in and
// without reading the chain. generate-signature ([Backend.Open]) always
// loads the module once, opens one read-only session, finds the key and its
// chain among the token's public objects, refreshes the remembered public
// key, and logs in only to sign (CKU_USER, plus CKU_CONTEXT_SPECIFIC for
// keys with CKA_ALWAYS_AUTHENTICATE): loading the module and logging in are
// most of the time a software token takes, and a hardware token may count
// or prompt for a login. A token that hides even its public objects until
// login (CKA_PRIVATE public keys and certificates) is searched again after
// logging in, when a PIN is configured.
//
// Several notation processes may sign with one token at once. SoftHSM2's
// file store is not safe against a login in another process (each login
// rewrites the token file, and a reader can see no token, no object or
// CKR_GENERAL_ERROR), so opening the token is retried a few times, a few
// milliseconds apart, on those symptoms, and a login refused with
// CKR_GENERAL_ERROR or CKR_USER_PIN_NOT_INITIALIZED (returned before the PIN
// is checked) reopens the token and logs in again. A wrong PIN is never
// retried.
//
// Signing uses CKM_ECDSA over a digest computed here (returned to callers as
// ASN.1 DER, as crypto.Signer requires) and CKM_RSA_PKCS_PSS over a digest
// with MGF1 of the same hash and a salt as long as the hash. Mechanisms that
// hash on the token are not used: SoftHSM and many HSMs lack them.
//
// # Certificate chain
//
// Plugin config cert_chain=<PEM bundle, leaf first, ending with the root>
// overrides the token entirely. Otherwise the leaf is the token's X.509
// certificate object with the key's CKA_ID (or, for a key without one, its
// label), and the issuers up to the self-signed root come from the token's
// other certificate objects and from the PEM bundle in plugin config
// ca_certs=<path>. The chain then passes the same checks as every backend's
// (keys.CheckChain).
//
// # Errors
//
// A wrong PIN or a locked or expired PIN is ACCESS_DENIED. A missing module,
// token, key or certificate is VALIDATION_ERROR with the fix. Other PKCS#11
// failures are ERROR and name the return code (CKR_...).
//
// # Builds without cgo
//
// Loading a PKCS#11 module needs cgo. A binary built with CGO_ENABLED=0 still
// parses PKCS#11 key ids but refuses to open them, saying so.
package pkcs11key
