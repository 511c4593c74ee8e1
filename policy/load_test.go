package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadFileRefusesWhatNotationRefuses: a missing file, a directory, a
// symlink (notation's rules and messages), and a pipe or an oversized file
// (keyward's bounds).
func TestLoadFileRefusesWhatNotationRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "trustpolicy.json")
	writeFile(t, good, []byte(oci(stmt("a"))))
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	writeFile(t, big, make([]byte, MaxDocumentSize+1))
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]struct {
		kind FileErrorKind
		msg  string
	}{
		filepath.Join(dir, "none.json"): {FileNotFound, "trust policy is not present. To create a trust policy, see: https://notaryproject.dev/docs/quickstart/#create-a-trust-policy"},
		dir:                             {FileNotRegular, "trust policy is not a regular file (symlinks are not supported). To create a trust policy, see: https://notaryproject.dev/docs/quickstart/#create-a-trust-policy"},
		link:                            {FileNotRegular, "trust policy is not a regular file (symlinks are not supported)"},
		fifo:                            {FileNotRegular, "trust policy is not a regular file"},
		big:                             {FileTooLarge, "trust policy is larger than 16777216 bytes"},
	} {
		_, err := LoadFile(path, TypeAuto)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Kind != want.kind || fe.Path != path {
			t.Errorf("LoadFile(%s) = %v, want a %s FileError", path, err, want.kind)
			continue
		}
		// The message is notation's where notation checks the same.
		if !strings.Contains(err.Error(), want.msg) || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("LoadFile(%s) = %v, want %q", path, err, want.msg)
		}
	}
	doc, err := LoadFile(good, TypeAuto)
	if err != nil || doc.File() != good || doc.Type() != TypeOCI || doc.Version() != "1.0" {
		t.Fatalf("LoadFile(good) = %v, %v", doc, err)
	}
}

func TestDetectType(t *testing.T) {
	ociDoc, blobDoc := []byte(oci(stmt("a"))), []byte(blob(blobStmt("a")))
	tests := []struct {
		file string
		data []byte
		want DocumentType
	}{
		{"trustpolicy.json", blobDoc, TypeOCI},
		{"dir/trustpolicy.oci.json", blobDoc, TypeOCI},
		{"trustpolicy.blob.json", ociDoc, TypeBlob},
		{"x.json", blobDoc, TypeBlob},
		{"x.json", ociDoc, TypeOCI},
		{"", []byte("not json"), TypeOCI},
	}
	for _, tt := range tests {
		if got, how := DetectType(tt.file, tt.data); got != tt.want || how == "" {
			t.Errorf("DetectType(%q) = %s (%s), want %s", tt.file, got, how, tt.want)
		}
	}
}

// TestProblemsInDocumentOrder: many problems come back sorted by position,
// each once.
func TestProblemsInDocumentOrder(t *testing.T) {
	_, err := Parse([]byte(oci(stmt("a", "registryScopes", `["A/B"]`, "trustStores", `["x"]`), stmt("a", "trustedIdentities", `[""]`))), "p.json", TypeOCI)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 4 {
		t.Fatalf("%v", err)
	}
	for i := 1; i < len(ve.Problems); i++ {
		a, b := ve.Problems[i-1], ve.Problems[i]
		if a.Line > b.Line || a.Line == b.Line && a.Column >= b.Column {
			t.Errorf("problems out of order: %v then %v", a, b)
		}
	}
	if !strings.HasPrefix(err.Error(), "invalid trust policy p.json: 4 problems:\n  p.json:4:") {
		t.Errorf("Error() = %s", err)
	}
}
