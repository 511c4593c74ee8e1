package jsonpatch

import (
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	doc := `{"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y"}],"a/b":{"~c":1}}}`
	got, err := Apply([]byte(doc), []byte(`[{"op":"test","path":"/spec/containers/1/image","value":"y"},{"op":"replace","path":"/spec/containers/1/image","value":"y@sha256:1"},{"op":"replace","path":"/spec/a~1b/~0c","value":2}]`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"spec":{"a/b":{"~c":2},"containers":[{"image":"x","name":"a"},{"image":"y@sha256:1","name":"b"}]}}`; string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	for patch, want := range map[string]string{
		`[{"op":"replace","path":"/spec/containers/2/image","value":"z"}]`:     `no element "2"`,
		`[{"op":"replace","path":"/spec/initContainers/0/image","value":"z"}]`: `no member "initContainers"`,
		`[{"op":"replace","path":"/spec/x","value":"z"}]`:                      `no member "x"`,
		`[{"op":"test","path":"/spec/containers/0/image","value":"q"}]`:        `test of /spec/containers/0/image failed`,
		`[{"op":"add","path":"/spec/containers/0/image","value":"q"}]`:         `not replace or test`,
		`[{"op":"replace","path":"","value":"q"}]`:                             `whole document`,
		`{}`: `patch:`,
	} {
		if _, err := Apply([]byte(doc), []byte(patch)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", patch, err, want)
		}
	}
}
