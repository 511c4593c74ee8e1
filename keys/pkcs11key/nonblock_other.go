//go:build !unix

package pkcs11key

// nonBlock is zero where O_NONBLOCK does not exist; openPrivate refuses
// non-regular files before opening them.
const nonBlock = 0
