package admission

// ReviewError is a request body that is not an AdmissionReview keyward
// can answer; its message says what is wrong and what to send instead.
type ReviewError struct {
	// Msg is the message.
	Msg string
	// Err is the cause, if any.
	Err error
}

// Error returns the message, with the cause.
func (e *ReviewError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *ReviewError) Unwrap() error { return e.Err }

// ProviderRequestError is a request body that is not a Gatekeeper
// ProviderRequest keyward can answer.
type ProviderRequestError struct {
	// Msg is the message.
	Msg string
	// Err is the cause, if any.
	Err error
}

// Error returns the message, with the cause.
func (e *ProviderRequestError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *ProviderRequestError) Unwrap() error { return e.Err }
