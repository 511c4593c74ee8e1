package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/serve"
	"github.com/keyward/keyward/verify"
)

func TestServeUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := testpki.WriteFile(t, dir, "serve.yaml", []byte("listen: :8443\nplainHTTP: true\npolicy:\n  trustPolicy: p.json\n  trustStor: ts\n"), 0o644)
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"no config", nil, exitUsage, "--config is required"},
		{"invalid config", []string{"--config", cfg}, exitUsage, cfg + `:5:3: /policy/trustStor: unknown field "trustStor"`},
		{"missing config", []string{"--config", filepath.Join(dir, "none.yaml")}, exitFailure, "none.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			status := run(append([]string{"serve"}, tc.args...), strings.NewReader(""), &out, &errb, func(string) string { return "" })
			if status != tc.status || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("status %d, stderr %q; want %d and %q", status, errb.String(), tc.status, tc.want)
			}
		})
	}
	var out bytes.Buffer
	run([]string{"serve", "--help"}, strings.NewReader(""), &out, &out, func(string) string { return "" })
	for _, want := range []string{"POST /v1/verify", "/healthz", "/readyz", "POST /v1/admission/validate", "POST /v1/admission/mutate", "POST /v1/gatekeeper/verify", "GET /metrics", "policySets", "cache.redis", "deploy/"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not say %q", want)
		}
	}
}

// TestServeProcess runs keyward serve as a process: it becomes ready,
// answers POST /v1/verify, and stops on SIGTERM.
func TestServeProcess(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}`), 0o644)
	if err := os.Mkdir(filepath.Join(dir, "ts"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testpki.WriteFile(t, dir, "serve.json", []byte(`{"listen": "`+addr+`", "plainHTTP": true, "policy": {"trustPolicy": "p.json", "trustStore": "ts"}}`), 0o644)
	cmd := exec.Command(testenv.KeywardBinary(t), "serve", "--config", cfg)
	cmd.Env = []string{"HOME=" + dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	ready := false
	for range 200 {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if ready = resp.StatusCode == http.StatusOK; ready {
				break
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	if !ready {
		t.Fatalf("keyward serve never became ready:\n%s", stderr.String())
	}
	resp, err := http.Post(base+"/v1/verify", "application/json", strings.NewReader(`{"references": ["r.example/app:v1"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body serve.VerifyResponse
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || len(body.Results) != 1 {
		t.Fatalf("answer: %v %+v", err, body)
	}
	if r := body.Results[0]; !r.Verified || !r.Skipped || r.Version != verify.ResultVersion {
		t.Errorf("result %+v", r)
	}
	// The validating webhook (its audit line on standard error is
	// checked once the process has ended).
	review := `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
 "namespace": "team", "name": "web", "operation": "CREATE", "dryRun": true, "object": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}`
	resp, err = http.Post(base+"/v1/admission/validate?timeout=10s", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		APIVersion, Kind string
		Response         struct {
			UID     string
			Allowed bool
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || answer.APIVersion != "admission.k8s.io/v1" || answer.Response.UID != "u-1" || !answer.Response.Allowed {
		t.Errorf("admission answer: %v %+v", err, answer)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(stderr.String(), "stopped on SIGTERM") {
			t.Errorf("exit status %d after SIGTERM and a clean drain, want 0\n%s", code, stderr.String())
		}
		if want := `"msg":"admission decision","webhook":"validate","image":"nginx","digest":"","namespace":"team","kind":"Pod","name":"web","container":"web","containerKind":"container","statement":"s","verdict":"skipped","dryRun":true,"uid":"u-1"`; !strings.Contains(stderr.String(), want) {
			t.Errorf("no audit line %s in\n%s", want, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("keyward serve did not stop on SIGTERM")
	}
}
