//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyward/keyward/internal/testenv"
)

// openPTY opens a pseudo-terminal pair: the master to read, the slave to
// give a process as its standard error.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open the slave: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestScanProgressOnTerminal runs keyward scan with its standard error on
// a terminal (issue 13: a progress bar on a terminal, with counts, rate and
// ETA): the progress line comes, with the final count, and standard output
// (a pipe) holds only the report.
func TestScanProgressOnTerminal(t *testing.T) {
	reg := testenv.StartDistribution(t)
	for i := range 6 {
		testenv.PushTagged(t, reg, "tty/app", fmt.Sprintf("v%d", i))
	}
	master, slave := openPTY(t)
	cmd := exec.Command(testenv.KeywardBinary(t), "scan", "--plain-http", "-o", "json", reg.Host)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("keyward scan: %v", err)
	}
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	var term bytes.Buffer
	io.Copy(&term, master) // ends with EIO once the slave is closed and drained
	got := term.String()
	if !strings.Contains(got, "scanned 6/6 artifacts") || !strings.Contains(got, "/s") {
		t.Errorf("the terminal shows %q; want the progress line with the final count and rate", got)
	}
	if strings.Contains(stdout.String(), "scanned") || strings.Count(stdout.String(), "\n") != 6 {
		t.Errorf("standard output %q: want the 6 records only", stdout.String())
	}
}
