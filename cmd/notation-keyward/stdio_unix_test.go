//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

func writeFD(fd int, s string) (int, error) { return syscall.Write(fd, []byte(s)) }

// TestIsolateStdio runs this test binary as a child whose standard
// descriptors are pipes: whatever the child prints on descriptors 1 and 2
// after isolate (as a C library would, with write(2)) must be swallowed,
// and only what goes to the returned writers must come out.
func TestIsolateStdio(t *testing.T) {
	if os.Getenv("KEYWARD_ISOLATE_CHILD") == "1" {
		out, errw, restore := isolate(os.Stdout, os.Stderr)
		os.Stdout.WriteString("noise via os.Stdout\n")
		os.Stderr.WriteString("noise via os.Stderr\n")
		_, _ = writeFD(1, "noise via fd 1\n")
		_, _ = writeFD(2, "noise via fd 2\n")
		out.Write([]byte(`{"response":true}`))
		errw.Write([]byte(`{"error":true}`))
		restore()
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIsolateStdio$")
	cmd.Env = append(os.Environ(), "KEYWARD_ISOLATE_CHILD=1")
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, errw.String())
	}
	if out.String() != `{"response":true}` {
		t.Errorf("child stdout = %q, want only the response", out.String())
	}
	if errw.String() != `{"error":true}` {
		t.Errorf("child stderr = %q, want only the error", errw.String())
	}
}
