//go:build unix

package registryauth

import (
	"os/exec"
	"syscall"
)

// setProcessGroup runs the helper in a process group of its own and, when
// it is stopped, stops the group: a helper script's children (a sleep, a
// prompt) go with it and release its output.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
