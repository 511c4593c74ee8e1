//go:build !linux

package testenv

import "syscall"

// dieWithParent has no equivalent outside Linux; t.Cleanup still stops the
// child when the test ends.
func dieWithParent() *syscall.SysProcAttr { return nil }
