//go:build unix

package bounded

import "syscall"

// nonBlock makes opening a FIFO return at once instead of waiting for a
// writer; it has no effect on regular files.
const nonBlock = syscall.O_NONBLOCK
