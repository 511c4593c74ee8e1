//go:build !unix

package oci

// nonBlock is 0 where O_NONBLOCK does not exist; the type check before the
// open still refuses FIFOs.
const nonBlock = 0
