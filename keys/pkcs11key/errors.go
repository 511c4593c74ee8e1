package pkcs11key

import "errors"

// ErrNoPIN tells [List] that no PIN is available: the token is listed
// without logging in.
var ErrNoPIN = errors.New("no PIN available")
