//go:build !unix

package main

import "io"

// isolate is a no-op where descriptors cannot be redirected portably.
func isolate(stdout, stderr io.Writer) (io.Writer, io.Writer, func()) {
	return stdout, stderr, func() {}
}
