package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WaitBlocked waits until a thread of process pid sleeps in a kernel
// function whose name contains one of markers, as /proc/<pid>/task/*/wchan
// shows it: "pipe_read" for a read of an empty pipe, "wait_for_partner" for
// the open of a FIFO that has no writer. Tests use it to signal a child only
// once it is inside the blocking call. It reports false when timeout passes
// first or the kernel does not show wait channels.
func WaitBlocked(pid int, timeout time.Duration, markers ...string) bool {
	deadline := time.Now().Add(timeout)
	for {
		tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "wchan"))
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, m := range markers {
				if strings.Contains(string(b), m) {
					return true
				}
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
