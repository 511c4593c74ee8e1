package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/jsonpos"
)

// MaxDocumentSize bounds a trust policy document: 16 MiB holds about
// 30,000 typical statements (10,000 take about 5 MB indented), far beyond
// any real policy, while keeping what a hostile file can make keyward
// allocate small.
const MaxDocumentSize = 16 << 20

// LoadFile reads and validates the trust policy document at path. Like
// notation it refuses a path that is a symlink or not a regular file, and
// it refuses files over [MaxDocumentSize]. typ TypeAuto picks the type
// with [DetectType]. Problems with the document are returned as a
// [*ValidationError] listing all of them.
func LoadFile(path string, typ DocumentType) (*Document, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, typ)
}

// ReadFile reads a policy file with LoadFile's checks, without parsing it.
func ReadFile(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &FileError{Path: path, Kind: FileNotFound, msg: "trust policy is not present. To create a trust policy, see: " + trustPolicyLink}
		}
		return nil, &FileError{Path: path, Kind: FileUnreadable, msg: "unable to read trust policy", err: err}
	}
	if !fi.Mode().IsRegular() {
		// notation-go getDocument refuses directories and symlinks; keyward
		// refuses devices and pipes too.
		return nil, &FileError{Path: path, Kind: FileNotRegular, msg: "trust policy is not a regular file (symlinks are not supported). To create a trust policy, see: " + trustPolicyLink}
	}
	if fi.Size() > MaxDocumentSize {
		return nil, &FileError{Path: path, Kind: FileTooLarge, msg: fmt.Sprintf("trust policy is larger than %d bytes", MaxDocumentSize)}
	}
	// bounded.OpenRegular opens without blocking and checks that the file
	// opened is the one examined.
	f, _, err := bounded.OpenRegular(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, &FileError{Path: path, Kind: FileUnreadable, msg: "unable to read trust policy due to file permissions, please verify the permissions of " + path}
		}
		return nil, &FileError{Path: path, Kind: FileUnreadable, msg: "unable to read trust policy", err: err}
	}
	defer f.Close()
	data, err := bounded.ReadAll(f, MaxDocumentSize, "trust policy")
	if err != nil {
		var tooLarge *bounded.TooLargeError
		if errors.As(err, &tooLarge) {
			return nil, &FileError{Path: path, Kind: FileTooLarge, msg: fmt.Sprintf("trust policy is larger than %d bytes", MaxDocumentSize)}
		}
		return nil, &FileError{Path: path, Kind: FileUnreadable, msg: "unable to read trust policy", err: err}
	}
	return data, nil
}

// DetectType decides whether a document is an OCI or a blob trust policy,
// and says how it decided: by file name (trustpolicy.blob.json or any
// *.blob.json is blob; trustpolicy.json, trustpolicy.oci.json and any
// *.oci.json are OCI), else by content as the schema does (a document
// whose statements all lack registryScopes is a blob trust policy), else
// OCI.
func DetectType(file string, data []byte) (DocumentType, string) {
	if typ, how, ok := typeByName(file); ok {
		return typ, how
	}
	root, err := jsonpos.Parse(data)
	if err != nil {
		return TypeOCI, "default"
	}
	return typeByContent(root)
}

// typeByName is DetectType's decision by file name, if the name decides.
func typeByName(file string) (DocumentType, string, bool) {
	base := strings.ToLower(filepath.Base(file))
	switch {
	case file == "":
	case strings.HasSuffix(base, ".blob.json"):
		return TypeBlob, "file name " + filepath.Base(file), true
	case base == "trustpolicy.json" || strings.HasSuffix(base, ".oci.json"):
		return TypeOCI, "file name " + filepath.Base(file), true
	}
	return "", "", false
}

// typeByContent is DetectType's decision by the content of a document
// read without error.
func typeByContent(root *jsonpos.Node) (DocumentType, string) {
	tp, _, _ := root.Get("trustPolicies")
	if tp == nil || tp.Kind != jsonpos.KindArray || len(tp.Elems) == 0 {
		return TypeOCI, "default"
	}
	for _, s := range tp.Elems {
		if _, _, ok := s.Get("registryScopes"); ok || s.Kind != jsonpos.KindObject {
			return TypeOCI, "content: a statement has registryScopes"
		}
	}
	return TypeBlob, "content: no statement has registryScopes"
}

// Parse validates a trust policy document held in data. file names it in
// problems ("" for none). typ TypeAuto picks the type with [DetectType].
// Every problem found is returned in one [*ValidationError].
func Parse(data []byte, file string, typ DocumentType) (*Document, error) {
	return parse(data, file, typ, parseOptions{})
}

// parseOptions change Parse for benchmarks and tests.
type parseOptions struct {
	// alwaysSchema runs the schema validator even on documents the rules
	// and the structure check accept.
	alwaysSchema bool
	// unbounded reads documents larger than MaxDocumentSize, to measure
	// how the cost grows beyond it.
	unbounded bool
}

// parse is Parse with options.
func parse(data []byte, file string, typ DocumentType, opts parseOptions) (*Document, error) {
	// TypeAuto is decided by the file name, else by the content once it
	// is read (reading it once).
	byContent := false
	if typ == TypeAuto {
		if t, _, ok := typeByName(file); ok {
			typ = t
		} else {
			byContent = true
		}
	}
	if !byContent && typ != TypeOCI && typ != TypeBlob {
		return nil, fmt.Errorf("unknown trust policy document type %q (want oci or blob)", typ)
	}
	if len(data) > MaxDocumentSize && !opts.unbounded {
		if byContent {
			typ, _ = DetectType(file, data)
		}
		return nil, &ValidationError{File: file, Type: typ, Problems: []Problem{{
			Rule: RuleTooLarge, Severity: SeverityError, File: file,
			Message: fmt.Sprintf("the document is %d bytes, more than the %d bytes keyward reads", len(data), MaxDocumentSize),
			Fix:     "split the policy or remove unused statements",
		}}}
	}
	data = bytes.Clone(data) // the Document keeps it for positions
	lines := jsonpos.NewLines(data)
	root, err := jsonpos.Parse(data)
	if byContent {
		typ = TypeOCI // DetectType's default, for a document with errors
		if err == nil {
			typ, _ = typeByContent(root)
		}
	}
	var syntax []Problem
	if err != nil {
		var se *jsonpos.SyntaxError
		errors.As(err, &se)
		line, col := lines.Position(se.Off)
		p := Problem{
			Rule: RuleJSONSyntax, Severity: SeverityError, File: file, Line: line, Column: col,
			Message: "malformed trust policy: " + se.Msg,
			Fix:     "correct the JSON syntax at this position",
		}
		if root == nil {
			return nil, &ValidationError{File: file, Type: typ, Problems: []Problem{p}}
		}
		p.Fix = "remove the text after the document: notation reads the first JSON value only and ignores the rest"
		syntax = append(syntax, p)
	}
	v := &validator{typ: typ, file: file, lines: lines, root: root, problems: syntax, alwaysSchema: opts.alwaysSchema}
	doc := v.run()
	if len(v.problems) > 0 {
		return nil, &ValidationError{File: file, Type: typ, Problems: v.problems}
	}
	doc.file = file
	doc.root = root
	doc.lines = lines
	return doc, nil
}

// renderValue renders a value as compact JSON for Problem.Value, shortened
// past 200 characters.
func renderValue(n *jsonpos.Node) string {
	if n == nil {
		return ""
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n.ToAny()); err != nil {
		return ""
	}
	s := strings.TrimSuffix(b.String(), "\n")
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
