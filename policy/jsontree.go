package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small JSON (RFC 8259) parser that keeps the byte offset
// of every value and object key, so that problems can name a line and column.
// It accepts what encoding/json accepts, except that it rejects invalid UTF-8
// (encoding/json replaces it with U+FFFD), text after the document
// (json.Decoder ignores it), and nesting deeper than maxDepth; duplicate
// object keys are kept in order and reported by the caller.

// maxDepth bounds nesting; a trust policy is five levels deep.
const maxDepth = 64

type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray:
		return "array"
	default:
		return "object"
	}
}

// node is one JSON value and where it starts.
type node struct {
	kind    kind
	off     int    // offset of the value's first byte
	str     string // string value, or the literal of a number
	boolean bool
	elems   []*node  // array elements
	members []member // object members, in document order (keys may repeat)
}

type member struct {
	key    string
	keyOff int
	val    *node
}

// get returns the last member named key (encoding/json keeps the last one).
func (n *node) get(key string) (*node, int, bool) {
	if n == nil || n.kind != kindObject {
		return nil, 0, false
	}
	for i := len(n.members) - 1; i >= 0; i-- {
		if n.members[i].key == key {
			return n.members[i].val, n.members[i].keyOff, true
		}
	}
	return nil, 0, false
}

// field returns what encoding/json stores in a struct field named key when
// it decodes this object, which is what notation reads: the last member
// whose key equals key under Unicode case folding; a null leaves a string,
// boolean or struct field unchanged and clears a slice or map field
// (nullClears). keyward reports case variants, repeated keys and nulls as
// errors, but its rules read the document as notation does.
func (n *node) field(key string, nullClears bool) *node {
	if n == nil || n.kind != kindObject {
		return nil
	}
	var out *node
	for _, m := range n.members {
		if m.key != key && !strings.EqualFold(m.key, key) {
			continue
		}
		if m.val.kind == kindNull {
			if nullClears {
				out = nil
			}
			continue
		}
		out = m.val
	}
	return out
}

// syntaxError is a JSON syntax error at a byte offset.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

type parser struct {
	data  []byte
	pos   int
	depth int
}

// parseJSON parses one JSON document that fills data. When text follows a
// complete value, it returns the value and an error.
func parseJSON(data []byte) (*node, error) {
	p := &parser{data: data}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return nil, &syntaxError{off, "invalid UTF-8 byte sequence"}
	}
	p.skipSpace()
	if p.pos == len(data) {
		return nil, &syntaxError{p.pos, "unexpected end of JSON input: the document is empty"}
	}
	n, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(data) {
		// The value is complete: return it with the error, so that the
		// caller can check it too (json.Decoder would read it alone).
		return n, &syntaxError{p.pos, fmt.Sprintf("invalid character %s after the top-level value", quoteChar(p.data[p.pos]))}
	}
	return n, nil
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return &syntaxError{p.pos, fmt.Sprintf(format, args...)}
}

func (p *parser) unexpected(context string) error {
	if p.pos >= len(p.data) {
		return p.errorf("unexpected end of JSON input")
	}
	return p.errorf("invalid character %s %s", quoteChar(p.data[p.pos]), context)
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	if c >= utf8.RuneSelf {
		return "byte " + strconv.Itoa(int(c))
	}
	return "'" + s[1:len(s)-1] + "'"
}

func (p *parser) value() (*node, error) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of JSON input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		off := p.pos
		s, err := p.stringLit()
		if err != nil {
			return nil, err
		}
		return &node{kind: kindString, off: off, str: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", &node{kind: kindBool, boolean: true})
	case c == 'f':
		return p.literal("false", &node{kind: kindBool})
	case c == 'n':
		return p.literal("null", &node{kind: kindNull})
	default:
		return nil, p.unexpected("looking for beginning of value")
	}
}

func (p *parser) literal(word string, n *node) (*node, error) {
	n.off = p.pos
	for i := 0; i < len(word); i++ {
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of JSON input")
		}
		if p.data[p.pos] != word[i] {
			return nil, p.unexpected(fmt.Sprintf("in literal %s (expecting %s)", word, quoteChar(word[i])))
		}
		p.pos++
	}
	return n, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("document nested deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) object() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	n := &node{kind: kindObject, off: p.pos}
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return n, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.unexpected("looking for beginning of object key string")
		}
		keyOff := p.pos
		key, err := p.stringLit()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.unexpected("after object key")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.members = append(n.members, member{key: key, keyOff: keyOff, val: v})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of JSON input")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.depth--
			return n, nil
		default:
			return nil, p.unexpected("after object key:value pair")
		}
	}
}

func (p *parser) array() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	n := &node{kind: kindArray, off: p.pos}
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return n, nil
	}
	for {
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of JSON input")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return n, nil
		default:
			return nil, p.unexpected("after array element")
		}
	}
}

func (p *parser) number() (*node, error) {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && d[p.pos] >= '1' && d[p.pos] <= '9':
		digits()
	default:
		return nil, p.unexpected("in numeric literal")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.unexpected("after decimal point in numeric literal")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.unexpected("in exponent of numeric literal")
		}
	}
	return &node{kind: kindNumber, off: start, str: string(d[start:p.pos])}, nil
}

// stringLit decodes a string literal the way encoding/json does: invalid
// surrogate escapes become U+FFFD.
func (p *parser) stringLit() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	d := p.data
	// Fast path: no escapes.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			s := string(d[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.unexpected("in string literal")
		}
		p.pos++
	}
	var b strings.Builder
	b.Write(d[start:p.pos])
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c < 0x20:
			return "", p.unexpected("in string literal")
		case c != '\\':
			b.WriteByte(c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(d) {
			break
		}
		e := d[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.unexpected("in \\u hexadecimal character escape")
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by an escaped low surrogate
				// is one character; anything else is U+FFFD.
				if p.pos+6 <= len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					r2, ok2 := p.hex4()
					if ok2 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b.WriteRune(dec)
							continue
						}
					}
					p.pos = save
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default:
			p.pos--
			return "", p.unexpected("in string escape code")
		}
	}
	return "", p.errorf("unexpected end of JSON input")
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		p.pos = len(p.data)
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := p.data[p.pos]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
		p.pos++
	}
	return r, true
}

// toAny converts the tree to the values encoding/json produces with
// UseNumber, which is what the schema validator reads. Repeated keys keep
// the last value, as encoding/json does.
func (n *node) toAny() any {
	switch n.kind {
	case kindNull:
		return nil
	case kindBool:
		return n.boolean
	case kindNumber:
		return json.Number(n.str)
	case kindString:
		return n.str
	case kindArray:
		out := make([]any, len(n.elems))
		for i, e := range n.elems {
			out[i] = e.toAny()
		}
		return out
	default:
		out := make(map[string]any, len(n.members))
		for _, m := range n.members {
			out[m.key] = m.val.toAny()
		}
		return out
	}
}

// lineIndex converts byte offsets to 1-based lines and columns; columns
// count characters (Unicode code points), as editors do.
type lineIndex struct {
	data   []byte
	starts []int
}

func newLineIndex(data []byte) *lineIndex {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return &lineIndex{data: data, starts: starts}
}

func (li *lineIndex) position(off int) (line, col int) {
	if off > len(li.data) {
		off = len(li.data)
	}
	i := sort.Search(len(li.starts), func(i int) bool { return li.starts[i] > off }) - 1
	return i + 1, utf8.RuneCount(li.data[li.starts[i]:off]) + 1
}
