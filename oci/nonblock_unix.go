//go:build unix

package oci

import "syscall"

// nonBlock makes opening a FIFO return at once; the type is also checked
// before the open.
const nonBlock = syscall.O_NONBLOCK
