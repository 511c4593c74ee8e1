// Package jsonpatch applies the JSON Patch operations keyward's mutating
// webhook writes (RFC 6902: replace and test), so that tests check a patch
// by its effect on the object, as kube-apiserver applies it.
package jsonpatch

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/keyward/keyward/internal/jsonpos"
)

// Op is one operation.
type Op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// Apply applies patch, a JSON array of operations, to doc and returns the
// result. Every operation's target must exist (RFC 6902 section 4.3: "The
// target location MUST exist for the operation to be successful"); a
// test whose value differs fails the patch (section 4.6).
func Apply(doc, patch []byte) ([]byte, error) {
	var ops []Op
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	for i, op := range ops {
		var value any
		if err := json.Unmarshal(op.Value, &value); err != nil {
			return nil, fmt.Errorf("operation %d: value: %w", i, err)
		}
		toks := jsonpos.Tokens(op.Path)
		if len(toks) == 0 {
			return nil, fmt.Errorf("operation %d: path %q names the whole document", i, op.Path)
		}
		parent, err := walk(root, toks[:len(toks)-1])
		if err != nil {
			return nil, fmt.Errorf("operation %d: %s: %w", i, op.Path, err)
		}
		last := toks[len(toks)-1]
		var get func() any
		var set func(any)
		switch p := parent.(type) {
		case map[string]any:
			if _, ok := p[last]; !ok {
				return nil, fmt.Errorf("operation %d: %s: no member %q", i, op.Path, last)
			}
			get, set = func() any { return p[last] }, func(v any) { p[last] = v }
		case []any:
			j, ok := jsonpos.ArrayIndex(last, len(p))
			if !ok {
				return nil, fmt.Errorf("operation %d: %s: no element %q", i, op.Path, last)
			}
			get, set = func() any { return p[j] }, func(v any) { p[j] = v }
		default:
			return nil, fmt.Errorf("operation %d: %s: parent is not an object or array", i, op.Path)
		}
		switch op.Op {
		case "replace":
			set(value)
		case "test":
			if !reflect.DeepEqual(get(), value) {
				return nil, fmt.Errorf("operation %d: test of %s failed", i, op.Path)
			}
		default:
			return nil, fmt.Errorf("operation %d: op %q is not replace or test", i, op.Op)
		}
	}
	return json.Marshal(root)
}

func walk(n any, toks []string) (any, error) {
	for _, t := range toks {
		switch v := n.(type) {
		case map[string]any:
			next, ok := v[t]
			if !ok {
				return nil, fmt.Errorf("no member %q", t)
			}
			n = next
		case []any:
			j, ok := jsonpos.ArrayIndex(t, len(v))
			if !ok {
				return nil, fmt.Errorf("no element %q", t)
			}
			n = v[j]
		default:
			return nil, fmt.Errorf("%q is below a scalar", t)
		}
	}
	return n, nil
}
