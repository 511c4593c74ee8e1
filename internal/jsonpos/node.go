package jsonpos

import (
	"encoding/json"
	"strings"
)

// Kind is the JSON type of a [Node].
type Kind uint8

// The JSON types.
const (
	KindNull Kind = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

// String names the kind as JSON Schema does ("boolean", "object"...).
func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindBool:
		return "boolean"
	case KindNumber:
		return "number"
	case KindString:
		return "string"
	case KindArray:
		return "array"
	default:
		return "object"
	}
}

// Node is one JSON value and where it starts.
type Node struct {
	Kind Kind
	// Off is the byte offset of the value's first byte.
	Off int
	// Str is a string's value, or a number's literal.
	Str string
	// Bool is a boolean's value.
	Bool bool
	// Elems are an array's elements.
	Elems []*Node
	// Members are an object's members, in document order (keys may
	// repeat).
	Members []Member
}

// Member is one "key": value of an object.
type Member struct {
	Key string
	// KeyOff is the byte offset of the key's opening quote.
	KeyOff int
	Val    *Node
}

// Get returns the last member named key (encoding/json keeps the last one)
// and the offset of its key.
func (n *Node) Get(key string) (*Node, int, bool) {
	if n == nil || n.Kind != KindObject {
		return nil, 0, false
	}
	for i := len(n.Members) - 1; i >= 0; i-- {
		if n.Members[i].Key == key {
			return n.Members[i].Val, n.Members[i].KeyOff, true
		}
	}
	return nil, 0, false
}

// Field returns what encoding/json stores in a struct field named key when
// it decodes this object, which is what notation reads: the last member
// whose key equals key under Unicode case folding; a null leaves a string,
// boolean or struct field unchanged and clears a slice or map field
// (nullClears). keyward reports case variants, repeated keys and nulls as
// errors, but its rules read the document as notation does.
func (n *Node) Field(key string, nullClears bool) *Node {
	if n == nil || n.Kind != KindObject {
		return nil
	}
	var out *Node
	for _, m := range n.Members {
		if m.Key != key && !strings.EqualFold(m.Key, key) {
			continue
		}
		if m.Val.Kind == KindNull {
			if nullClears {
				out = nil
			}
			continue
		}
		out = m.Val
	}
	return out
}

// ToAny converts the tree to the values encoding/json produces with
// UseNumber, which is what the schema validator reads. Repeated keys keep
// the last value, as encoding/json does.
func (n *Node) ToAny() any {
	switch n.Kind {
	case KindNull:
		return nil
	case KindBool:
		return n.Bool
	case KindNumber:
		return json.Number(n.Str)
	case KindString:
		return n.Str
	case KindArray:
		out := make([]any, len(n.Elems))
		for i, e := range n.Elems {
			out[i] = e.ToAny()
		}
		return out
	default:
		out := make(map[string]any, len(n.Members))
		for _, m := range n.Members {
			out[m.Key] = m.Val.ToAny()
		}
		return out
	}
}
