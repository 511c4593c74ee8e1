// Command rsswrap runs a command and writes its peak resident set size, in
// bytes, to the file $RSSWRAP_OUT; it exits with the command's status.
//
// On Linux a child's ru_maxrss starts from the resident size of the process
// it was forked from (exec records the old address space's high-water
// mark), so a test binary that is itself large cannot measure a small child
// directly. rsswrap is small: the peak it reports is the command's own.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rsswrap COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		os.Exit(2)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out := fmt.Sprint(int64(ru.Maxrss) * 1024) // kilobytes on Linux
		if err := os.WriteFile(os.Getenv("RSSWRAP_OUT"), []byte(out), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "rsswrap:", err)
			os.Exit(2)
		}
	}
	os.Exit(cmd.ProcessState.ExitCode())
}
