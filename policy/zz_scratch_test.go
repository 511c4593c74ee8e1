package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScratchPrint(t *testing.T) {
	files, _ := filepath.Glob("testdata/differential/*.json")
	for _, f := range files {
		if !strings.Contains(f, os.Getenv("CASE")) {
			continue
		}
		data, _ := os.ReadFile(f)
		typ := TypeOCI
		if strings.Contains(f, "blob-") {
			typ = TypeBlob
		}
		_, err := Parse(data, filepath.Base(f), typ)
		t.Logf("%v", err)
	}
}
