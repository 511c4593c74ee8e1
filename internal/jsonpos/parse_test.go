package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// addCorpusSeeds adds the trust policies of the repository (the policy
// package's differential corpus and the examples) as seeds.
func addCorpusSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "policy", "testdata", "differential", "*.json"))
	more, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "trustpolicy*.json"))
	for _, p := range append(files, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParseJSON checks the positional JSON reader against encoding/json:
// for valid UTF-8 it accepts exactly what json.Valid accepts (up to its
// nesting limit) and reads the same values.
func FuzzParseJSON(f *testing.F) {
	addCorpusSeeds(f)
	for _, s := range []string{`"\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `-0.5e+7`, `[1,[2,{"a":[]}]]`, `{"a":1,"a":2}`, "\"\x01\"", `01`, `1.`, `{"a" 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Parse(data)
		if !utf8.Valid(data) {
			if err == nil {
				t.Fatal("invalid UTF-8 accepted")
			}
			return
		}
		var se *SyntaxError
		if err != nil && errors.As(err, &se) && strings.Contains(se.Msg, "nested deeper") {
			return
		}
		if (err == nil) != json.Valid(data) {
			t.Fatalf("Parse error %v, json.Valid %v", err, json.Valid(data))
		}
		if err != nil {
			if se.Off < 0 || se.Off > len(data) {
				t.Fatalf("error offset %d outside the input", se.Off)
			}
			return
		}
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var want any
		if err := d.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if got := n.ToAny(); !reflect.DeepEqual(got, want) {
			t.Fatalf("read %#v, encoding/json %#v", got, want)
		}
	})
}
