//go:build unix

package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// isolate points the process's standard output and error descriptors at
// /dev/null and returns writers to where they pointed before, plus a func that
// undoes the switch. Writers that are not the process's own standard
// descriptors (tests pass buffers) are returned unchanged.
func isolate(stdout, stderr io.Writer) (io.Writer, io.Writer, func()) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return stdout, stderr, func() {}
	}
	var undo []func()
	swap := func(w io.Writer, fd int) io.Writer {
		f, ok := w.(*os.File)
		if !ok || int(f.Fd()) != fd {
			return w
		}
		saved, err := unix.Dup(fd)
		if err != nil {
			return w
		}
		unix.CloseOnExec(saved)
		if err := unix.Dup2(int(devnull.Fd()), fd); err != nil {
			unix.Close(saved)
			return w
		}
		orig := os.NewFile(uintptr(saved), f.Name())
		undo = append(undo, func() { _ = unix.Dup2(int(orig.Fd()), fd); orig.Close() })
		return orig
	}
	out := swap(stdout, 1)
	errw := swap(stderr, 2)
	return out, errw, func() {
		for _, u := range undo {
			u()
		}
		devnull.Close()
	}
}
