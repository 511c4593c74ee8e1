package plugin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/keyward/keyward/keys"
)

// TestToError pins the mapping of errors to protocol codes
// (plugin-extensibility.md "Error codes") and the JSON notation reads.
func TestToError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code ErrorCode
		json string
	}{
		{"coded", validationErrorf("payload cannot be empty"), CodeValidation,
			`{"errorCode":"VALIDATION_ERROR","errorMessage":"payload cannot be empty"}`},
		{"coded wins over kind", &codedError{code: CodeUnsupportedContractVersion, err: keys.Deniedf("v2")}, CodeUnsupportedContractVersion,
			`{"errorCode":"UNSUPPORTED_CONTRACT_VERSION","errorMessage":"v2"}`},
		{"invalid", keys.Invalidf("key file %q does not exist", "/k"), CodeValidation,
			`{"errorCode":"VALIDATION_ERROR","errorMessage":"key file \"/k\" does not exist"}`},
		{"access denied", fmt.Errorf("open: %w", keys.Deniedf("wrong PIN")), CodeAccessDenied,
			`{"errorCode":"ACCESS_DENIED","errorMessage":"open: wrong PIN"}`},
		{"timeout", keys.WithKind(keys.KindTimeout, errors.New("no answer")), CodeTimeout,
			`{"errorCode":"TIMEOUT","errorMessage":"no answer"}`},
		{"busy", keys.WithKind(keys.KindBusy, errors.New("busy")), CodeThrottled,
			`{"errorCode":"THROTTLED","errorMessage":"busy"}`},
		{"internal kind", keys.WithKind(keys.KindInternal, errors.New("bug")), CodeGeneric,
			`{"errorCode":"ERROR","errorMessage":"bug"}`},
		{"deadline", fmt.Errorf("sign: %w", context.DeadlineExceeded), CodeTimeout,
			`{"errorCode":"TIMEOUT","errorMessage":"sign: context deadline exceeded"}`},
		{"unclassified", errors.New("boom"), CodeGeneric,
			`{"errorCode":"ERROR","errorMessage":"boom"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := toError(tc.err)
			if e.Code != tc.code {
				t.Errorf("code = %s, want %s", e.Code, tc.code)
			}
			if got := string(e.JSON()); got != tc.json {
				t.Errorf("JSON() = %s\nwant     %s", got, tc.json)
			}
		})
	}
}
