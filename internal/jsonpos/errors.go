package jsonpos

// SyntaxError is a JSON syntax error at a byte offset. Its message follows
// encoding/json's wording.
type SyntaxError struct {
	// Off is the byte offset of the offending byte (the length of the
	// input when it ended too early).
	Off int
	Msg string
}

// Error returns the message, without the position (callers locate it with
// [Lines.Position]).
func (e *SyntaxError) Error() string { return e.Msg }
