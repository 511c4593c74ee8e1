//go:build !cgo

package pkcs11key

// List refuses: loading a PKCS#11 module needs cgo.
func List(ListOptions) (*Inventory, error) { return nil, errNoCgo() }
