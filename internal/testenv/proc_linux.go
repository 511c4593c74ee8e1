package testenv

import "syscall"

// dieWithParent makes the kernel kill a child when the test binary dies, so
// that a crashed or timed-out test leaks no registry. (Pdeathsig follows
// the thread that started the child; Go keeps threads alive unless a
// goroutine exits while locked to one, which this package never does.)
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
