package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// OpenRegular opens path for reading if it is a regular file (symlinks are
// followed, as Kubernetes secret mounts need). It never blocks: the type is
// checked before the open and the open is non-blocking, so a FIFO or device
// named in a key id or plugin config cannot hang the plugin. what names the
// file in messages ("key file", "PIN file").
func OpenRegular(what, path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, Invalidf("%s %q does not exist", what, path)
		case errors.Is(err, fs.ErrPermission):
			return nil, nil, Deniedf("%s %q cannot be read by this user: %v", what, path, errors.Unwrap(err))
		}
		return nil, nil, Invalidf("%s %q cannot be opened: %v", what, path, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, Invalidf("%s %q is not a regular file", what, path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, nil, Deniedf("%s %q cannot be read by this user: %v", what, path, errors.Unwrap(err))
		}
		return nil, nil, Invalidf("%s %q cannot be opened: %v", what, path, errors.Unwrap(err))
	}
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, nil, Invalidf("%s %q changed while it was opened", what, path)
	}
	return f, fi2, nil
}

// CheckPrivate refuses, as ssh does ("UNPROTECTED PRIVATE KEY FILE"), a
// secret file that group or others may access: it is no longer a secret.
func CheckPrivate(what, path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Invalidf("%s %q is accessible by group or others (mode %04o): restrict it with `chmod 600 %s`",
			what, path, perm, path)
	}
	return nil
}

// ReadFile reads a regular file of at most limit bytes. With private, the
// file must also pass [CheckPrivate].
func ReadFile(what, path string, limit int64, private bool) ([]byte, error) {
	f, fi, err := OpenRegular(what, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if private {
		if err := CheckPrivate(what, path, fi); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %q: %w", what, path, err)
	}
	if int64(len(data)) > limit {
		return nil, Invalidf("%s %q is larger than %d bytes", what, path, limit)
	}
	return data, nil
}
