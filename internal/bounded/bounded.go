// Package bounded reads untrusted input with a size limit: at most limit
// bytes are kept, and input that is longer fails with a [*TooLargeError]
// instead of being truncated or read to the end.
//
// Every reader of untrusted bytes in keyward (policy and trust store files,
// key files, plugin requests, registry responses, OCI layouts, passwords on
// standard input) goes through this package, so that one idiom, tested once,
// enforces the bounds SECURITY.md promises.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// TooLargeError reports input longer than its limit. What names the input in
// the message ("trust policy", "signature envelope"); it may be empty.
type TooLargeError struct {
	What  string
	Limit int64
}

// Error says what was too large and the limit.
func (e *TooLargeError) Error() string {
	if e.What == "" {
		return fmt.Sprintf("input is larger than the %d bytes allowed", e.Limit)
	}
	return fmt.Sprintf("%s is larger than the %d bytes allowed", e.What, e.Limit)
}

// ReadAll reads r to its end and returns what it read, or a
// [*TooLargeError] as soon as more than limit bytes arrive: it never holds
// more than limit+1 bytes. A negative limit is treated as 0.
func ReadAll(r io.Reader, limit int64, what string) ([]byte, error) {
	if limit < 0 {
		limit = 0
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{What: what, Limit: limit}
	}
	return data, nil
}

// ReadExactly reads exactly size bytes from r, size being at most limit: a
// declared size over the limit fails before anything is allocated, and input
// shorter or longer than size fails too. It is the reader for content
// described by a descriptor (OCI blobs and manifests).
func ReadExactly(r io.Reader, size, limit int64, what string) ([]byte, error) {
	if size < 0 {
		return nil, fmt.Errorf("%s: negative size %d", what, size)
	}
	if size > limit {
		return nil, &TooLargeError{What: what, Limit: limit}
	}
	data, err := readUpTo(r, size+1)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, &SizeMismatchError{What: what, Want: size, Got: int64(len(data)), More: int64(len(data)) > size}
	}
	return data, nil
}

// preallocated is the most readUpTo allocates before the content arrives.
// Manifests and signature envelopes are a few kilobytes and are read in one
// allocation; a larger declared size grows with what arrives, so that a
// descriptor that declares more than it brings costs no more than this.
const preallocated = 1 << 20

// readUpTo reads r until EOF or n bytes: io.ReadAll(io.LimitReader(r, n)),
// in one allocation when n is at most preallocated instead of one for each
// doubling of the buffer.
func readUpTo(r io.Reader, n int64) ([]byte, error) {
	if n > preallocated {
		return io.ReadAll(io.LimitReader(r, n))
	}
	data := make([]byte, n)
	got, err := io.ReadFull(r, data)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return data[:got], err
}

// SizeMismatchError reports content whose length is not the declared size.
// With More, the content was longer (Got is then size+1, where reading
// stopped).
type SizeMismatchError struct {
	What      string
	Want, Got int64
	More      bool
}

// Error says what was declared and what arrived.
func (e *SizeMismatchError) Error() string {
	if e.More {
		return fmt.Sprintf("%s: got more than the %d bytes declared", e.What, e.Want)
	}
	return fmt.Sprintf("%s: got %d bytes, %d declared", e.What, e.Got, e.Want)
}

// ErrNotRegular is wrapped by [OpenRegular] for a path that is not a
// regular file (a FIFO, a device, a socket or a directory).
var ErrNotRegular = errors.New("not a regular file")

// ErrChanged is wrapped by [OpenRegular] when the path was replaced between
// the check and the open.
var ErrChanged = errors.New("changed while it was opened")

// OpenRegular opens path for reading if it is a regular file (symlinks are
// followed). It never blocks: the type is checked before the open and the
// open is non-blocking, so a FIFO or device named where a file is expected
// cannot hang the process; the file opened is checked to be the one
// examined. Errors wrap fs.ErrNotExist, fs.ErrPermission, [ErrNotRegular]
// or [ErrChanged].
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	return openRegular(path, os.Stat, os.OpenFile)
}

// OpenRegularIn is [OpenRegular] for name inside root: symbolic links may
// not lead out of root (os.Root's rule), and the file must be regular.
func OpenRegularIn(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	return openRegular(name, root.Stat, root.OpenFile)
}

func openRegular(path string, stat func(string) (fs.FileInfo, error), open func(string, int, fs.FileMode) (*os.File, error)) (*os.File, fs.FileInfo, error) {
	fi, err := stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	f, err := open(path, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) || !fi2.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: ErrChanged}
	}
	return f, fi2, nil
}

// ReadFile reads a regular file of at most limit bytes (see [OpenRegular]
// and [ReadAll]); a file whose size is already over the limit fails before
// it is read.
func ReadFile(path string, limit int64, what string) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, &TooLargeError{What: what, Limit: limit}
	}
	return ReadAll(f, limit, what)
}
