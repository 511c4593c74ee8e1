package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/keyward/keyward/internal/bounded"
)

// OpenRegular opens path for reading if it is a regular file (symlinks are
// followed, as Kubernetes secret mounts need). It never blocks
// ([bounded.OpenRegular]), so a FIFO or device named in a key id or plugin
// config cannot hang the plugin. what names the file in messages ("key
// file", "PIN file"); errors are [KindInvalid], or [KindAccessDenied] for a
// file this user may not read.
func OpenRegular(what, path string) (*os.File, fs.FileInfo, error) {
	f, fi, err := bounded.OpenRegular(path)
	if err != nil {
		return nil, nil, openError(what, path, err)
	}
	return f, fi, nil
}

// openError says why [bounded.OpenRegular] refused path, as a [*Error].
func openError(what, path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Invalidf("%s %q does not exist", what, path)
	case errors.Is(err, fs.ErrPermission):
		return Deniedf("%s %q cannot be read by this user: %v", what, path, errors.Unwrap(err))
	case errors.Is(err, bounded.ErrNotRegular):
		return Invalidf("%s %q is not a regular file", what, path)
	case errors.Is(err, bounded.ErrChanged):
		return Invalidf("%s %q changed while it was opened", what, path)
	}
	return Invalidf("%s %q cannot be opened: %v", what, path, errors.Unwrap(err))
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

// ReadFile reads a regular file of at most limit bytes (see [OpenRegular]).
// With private, the file must also pass [CheckPrivate]. A file over the
// limit is a [KindInvalid] error.
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
	tooLarge := func() error { return Invalidf("%s %q is larger than %d bytes", what, path, limit) }
	if fi.Size() > limit {
		return nil, tooLarge()
	}
	data, err := bounded.ReadAll(f, limit, what)
	var tl *bounded.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, tooLarge()
	case err != nil:
		return nil, fmt.Errorf("read %s %q: %w", what, path, err)
	}
	return data, nil
}
