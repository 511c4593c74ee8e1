package bounded

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

func TestReadAll(t *testing.T) {
	for _, tc := range []struct {
		in      string
		limit   int64
		tooBig  bool
		wantLen int
	}{
		{"", 0, false, 0},
		{"a", 0, true, 0},
		{"abc", 3, false, 3},
		{"abcd", 3, true, 0},
		{"abc", -1, true, 0},
	} {
		got, err := ReadAll(strings.NewReader(tc.in), tc.limit, "thing")
		var tl *TooLargeError
		if tc.tooBig {
			if !errors.As(err, &tl) || tl.Limit != max(tc.limit, 0) || tl.What != "thing" {
				t.Errorf("ReadAll(%q, %d) = %v, want *TooLargeError", tc.in, tc.limit, err)
			}
			continue
		}
		if err != nil || len(got) != tc.wantLen {
			t.Errorf("ReadAll(%q, %d) = %q, %v", tc.in, tc.limit, got, err)
		}
	}
}

// A reader that never ends must not be read past the limit.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestReadAllStopsAtLimit(t *testing.T) {
	r := &endless{}
	_, err := ReadAll(r, 1<<20, "stream")
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("err = %v", err)
	}
	if r.n > 1<<20+64<<10 {
		t.Fatalf("read %d bytes for a limit of %d", r.n, 1<<20)
	}
	if got := tl.Error(); got != "stream is larger than the 1048576 bytes allowed" {
		t.Fatalf("message %q", got)
	}
}

func TestReadExactly(t *testing.T) {
	if got, err := ReadExactly(strings.NewReader("abc"), 3, 10, "blob"); err != nil || string(got) != "abc" {
		t.Fatalf("exact: %q %v", got, err)
	}
	var sm *SizeMismatchError
	if _, err := ReadExactly(strings.NewReader("abcd"), 3, 10, "blob"); !errors.As(err, &sm) || !sm.More {
		t.Fatalf("longer: %v", err)
	}
	if _, err := ReadExactly(strings.NewReader("ab"), 3, 10, "blob"); !errors.As(err, &sm) || sm.More || sm.Got != 2 {
		t.Fatalf("shorter: %v", err)
	}
	// A declared size over the limit fails before reading (an endless
	// reader would otherwise be consumed).
	var tl *TooLargeError
	r := &endless{}
	if _, err := ReadExactly(r, 1<<39, 1<<20, "blob"); !errors.As(err, &tl) || r.n != 0 {
		t.Fatalf("declared 2^39: %v after %d bytes", err, r.n)
	}
	if _, err := ReadExactly(strings.NewReader(""), -1, 10, "blob"); err == nil {
		t.Fatal("negative size accepted")
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(small, 5, "file"); err != nil || string(got) != "hello" {
		t.Fatalf("small: %q %v", got, err)
	}
	var tl *TooLargeError
	if _, err := ReadFile(small, 4, "file"); !errors.As(err, &tl) {
		t.Fatalf("over limit: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 5, "file"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := ReadFile(dir, 5, "file"); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("directory: %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(link, 5, "file"); err != nil || !bytes.Equal(got, []byte("hello")) {
		t.Fatalf("symlink: %q %v", got, err)
	}
}

func TestReadFileFIFODoesNotBlock(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadFile(fifo, 5, "file"); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("fifo: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFile blocked on a FIFO")
	}
}

// TestReadUpTo checks readUpTo against io.ReadAll of an io.LimitReader, the
// reading it replaces, for content shorter than, as long as and longer than
// n, on both sides of the preallocation bound, from a reader that returns
// one byte at a time, and from a reader that fails.
func TestReadUpTo(t *testing.T) {
	for _, size := range []int{0, 1, 100, preallocated - 1, preallocated, preallocated + 1, 2 * preallocated} {
		content := bytes.Repeat([]byte("k"), size)
		for _, n := range []int64{0, 1, int64(size) - 1, int64(size), int64(size) + 1, preallocated + 5} {
			if n < 0 {
				continue
			}
			want, _ := io.ReadAll(io.LimitReader(bytes.NewReader(content), n))
			got, err := readUpTo(iotest.OneByteReader(bytes.NewReader(content)), n)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("size %d, n %d: got %d bytes, %v; want %d bytes", size, n, len(got), err, len(want))
			}
		}
	}
	boom := errors.New("boom")
	if _, err := readUpTo(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), 10); !errors.Is(err, boom) {
		t.Errorf("failing reader: err = %v, want %v", err, boom)
	}
}

// TestOpenRegularIn opens regular files inside a root, and refuses a FIFO
// and a symbolic link that leads out of it.
func TestOpenRegularIn(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	f, _, err := OpenRegularIn(root, "in")
	if err != nil {
		t.Fatalf("regular file: %v", err)
	}
	f.Close()
	if _, _, err := OpenRegularIn(root, "fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo: %v", err)
	}
	if _, _, err := OpenRegularIn(root, "escape"); err == nil {
		t.Error("a symbolic link out of the root was opened")
	}
}
