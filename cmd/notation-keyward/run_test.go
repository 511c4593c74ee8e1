package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func runInProcess(t *testing.T, stdin string, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	status = run(append([]string{"notation-keyward"}, args...), strings.NewReader(stdin), &out, &errw, func(string) string { return "" })
	return status, out.String(), errw.String()
}

func TestRunVersionAndHelp(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		status, out, errOut := runInProcess(t, "", arg)
		if status != 0 || !strings.HasPrefix(out, "notation-keyward 0.") || errOut != "" {
			t.Errorf("%s: status %d stdout %q stderr %q", arg, status, out, errOut)
		}
	}
	for _, arg := range []string{"help", "-h", "--help"} {
		status, out, _ := runInProcess(t, "", arg)
		if status != 0 || !strings.Contains(out, "notation plugin install --file") || !strings.Contains(out, "generate-envelope") {
			t.Errorf("%s: status %d stdout %q", arg, status, out)
		}
	}
}

// protocolError decodes stderr as the protocol's error response.
func protocolError(t *testing.T, stderr string) (code, message string) {
	t.Helper()
	var e struct {
		Code    string `json:"errorCode"`
		Message string `json:"errorMessage"`
	}
	if err := json.Unmarshal([]byte(stderr), &e); err != nil {
		t.Fatalf("stderr %q is not a JSON error response: %v", stderr, err)
	}
	return e.Code, e.Message
}

func TestRunArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"describe-key", "extra"}} {
		status, out, errOut := runInProcess(t, "{}", args...)
		if status != 1 || out != "" {
			t.Errorf("%q: status %d stdout %q, want 1 and nothing", args, status, out)
		}
		if code, msg := protocolError(t, errOut); code != "VALIDATION_ERROR" || !strings.Contains(msg, "exactly one command") {
			t.Errorf("%q: %s %q", args, code, msg)
		}
	}
	status, out, errOut := runInProcess(t, "{}", "frobnicate")
	if code, _ := protocolError(t, errOut); status != 1 || out != "" || code != "VALIDATION_ERROR" {
		t.Errorf("unknown command: status %d stdout %q error %s", status, out, code)
	}
}

// panicReader panics when the plugin reads the request, standing in for any
// bug below run.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("secret request data") }

func TestRunRecoversPanics(t *testing.T) {
	var out, errw bytes.Buffer
	status := run([]string{"notation-keyward", "describe-key"}, panicReader{}, &out, &errw, os.Getenv)
	if status != 1 || out.Len() != 0 {
		t.Fatalf("status %d stdout %q, want 1 and nothing", status, out.String())
	}
	code, msg := protocolError(t, errw.String())
	if code != "ERROR" || !strings.Contains(msg, "internal error") {
		t.Errorf("panic became %s %q, want ERROR internal error", code, msg)
	}
	if strings.Contains(msg, "secret request data") {
		t.Errorf("the panic value leaked into the error: %q", msg)
	}
}
