package testenv

import "syscall"

// ChildProcAttr returns the process attributes testenv gives the processes
// it starts: on Linux, the kernel kills the child when the test binary
// dies, so that a crashed or timed-out test leaks no server. Packages that
// start servers of their own (k8senv) use it too.
func ChildProcAttr() *syscall.SysProcAttr { return dieWithParent() }

// Tail returns the last n lines of a file (at most 8 KiB of them), for
// error messages about a process that failed; a file that cannot be read
// gives a note saying so.
func Tail(path string, n int) string { return tail(path, n) }

// ProcessDir returns this test process's scratch directory under
// os.TempDir, created on first use. [Cleanup] removes it, and a later test
// process removes it if this one died first, so that servers started for
// the whole test binary leave nothing behind.
func ProcessDir() (string, error) { return processDir() }
