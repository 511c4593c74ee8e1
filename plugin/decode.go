package plugin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/bounded"
)

// malformed is the prefix notation-plugin-framework-go uses for requests
// that are not JSON; keeping it keeps keyward's messages familiar.
const malformed = "Input is not a valid JSON"

// decode reads one JSON object of at most MaxRequestSize bytes from r into v.
// Unknown fields are ignored, as the protocol requires for forward
// compatibility; everything else that is not exactly one JSON object is a
// VALIDATION_ERROR that says what is wrong.
func decode(r io.Reader, v any) error {
	data, err := bounded.ReadAll(r, MaxRequestSize, "request")
	var tl *bounded.TooLargeError
	switch {
	case errors.As(err, &tl):
		return validationErrorf("%s: the request is larger than %d bytes, the most keyward accepts", malformed, MaxRequestSize)
	case err != nil:
		return validationErrorf("%s: reading standard input failed: %v", malformed, err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return validationErrorf("%s: the request on standard input is empty; notation writes one JSON object there", malformed)
	}
	if !utf8.Valid(data) {
		return validationErrorf("%s: the request is not UTF-8 (RFC 8259 section 8.1)", malformed)
	}
	if trimmed[0] != '{' {
		return validationErrorf("%s: the request must be a JSON object", malformed)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return validationErrorf("%s: %s", malformed, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return validationErrorf("%s: unexpected data after the request object", malformed)
	}
	return nil
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var b64 base64.CorruptInputError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the request"
		}
		return fmt.Sprintf("field %s must be a JSON %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &b64):
		return fmt.Sprintf("a binary field is not valid standard base64 (%v)", b64)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON object is truncated"
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "array or base64 string"
	case "map", "struct":
		return "object"
	case "uint64", "int", "int64", "uint":
		return "number"
	}
	return goKind
}
