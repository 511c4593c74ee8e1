package gatekeeper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"

	"github.com/keyward/keyward/admission"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/serve"
)

// TestProviderUpstreamTypes sends keyward serve's POST /v1/gatekeeper/verify
// the very ProviderRequest Gatekeeper builds (externaldata.NewProviderRequest),
// decodes the answer strictly into Gatekeeper's ProviderResponse, and turns
// it into the value a constraint template reads (externaldata.NewRegoResponse):
// every key is answered in "responses" (never in "errors", which Ratify's
// templates do not read), with isSuccess true only for the image a skip
// statement admits. The registry named does not answer: verification fails
// closed.
func TestProviderUpstreamTypes(t *testing.T) {
	dir := t.TempDir()
	root := testpki.Root(t, "gatekeeper test root")
	storeDir := filepath.Join(dir, "store", "x509", "ca", "test")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, storeDir, "root.pem", testpki.CertsPEM(root.Cert), 0o644)
	policy := `{"version": "1.0", "trustPolicies": [
	  {"name": "skipped", "registryScopes": ["127.0.0.1:1/skipped"], "signatureVerification": {"level": "skip"}},
	  {"name": "strict", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
	   "trustStores": ["ca:test"], "trustedIdentities": ["*"]}]}`
	policyFile := testpki.WriteFile(t, dir, "trustpolicy.json", []byte(policy), 0o644)
	cfg := &serve.Config{
		Listen:                 "127.0.0.1:0",
		PlainHTTP:              true,
		Policy:                 serve.PolicySet{TrustPolicy: policyFile, TrustStore: filepath.Join(dir, "store")},
		RequestTimeout:         5 * time.Second,
		RegistryRequestTimeout: time.Second,
	}
	s, err := serve.New(cfg, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	keys := []string{"127.0.0.1:1/skipped:v1", "127.0.0.1:1/app:v1", "[team]127.0.0.1:1/app@sha256:" + fmt.Sprintf("%064x", 1), "NOT/valid"}
	want := map[string]bool{keys[0]: true, keys[1]: false, keys[2]: false, keys[3]: false}
	body, err := json.Marshal(externaldata.NewProviderRequest(keys))
	if err != nil {
		t.Fatal(err)
	}
	status, resp := post(t, srv.URL+serve.GatekeeperPath, body)
	if status != http.StatusOK {
		t.Fatalf("status %d: %+v", status, resp)
	}
	if resp.APIVersion != admission.ProviderAPIVersion || resp.Kind != "ProviderResponse" || resp.Response.SystemError != "" {
		t.Errorf("apiVersion %q kind %q systemError %q", resp.APIVersion, resp.Kind, resp.Response.SystemError)
	}
	rego := externaldata.NewRegoResponse(status, resp)
	if len(rego.Errors) != 0 {
		t.Errorf("keys answered as errors, which Ratify's templates never read: %v", rego.Errors)
	}
	if len(rego.Responses) != len(keys) {
		t.Fatalf("%d responses for %d keys: %v", len(rego.Responses), len(keys), rego.Responses)
	}
	for i, r := range rego.Responses {
		key, _ := r[0].(string)
		value, _ := r[1].(map[string]any)
		if key != keys[i] {
			t.Errorf("response %d is for %q, want %q", i, key, keys[i])
		}
		if value["isSuccess"] != want[key] || value["verified"] != want[key] {
			t.Errorf("%s: isSuccess %v verified %v, want %v (value %v)", key, value["isSuccess"], value["verified"], want[key], value)
		}
	}
	// The value reaches rego as Gatekeeper hands it over.
	if _, err := externaldata.PrepareRegoResponse(rego); err != nil {
		t.Errorf("PrepareRegoResponse: %v", err)
	}

	// A request Gatekeeper could not have sent is a system error, in
	// Gatekeeper's own field.
	status, resp = post(t, srv.URL+serve.GatekeeperPath, []byte(`{"apiVersion": "v1", "kind": "ProviderRequest"}`))
	if status != http.StatusBadRequest || resp.Response.SystemError == "" || len(resp.Response.Items) != 0 {
		t.Errorf("bad request: status %d, response %+v", status, resp)
	}
}

// post sends body and decodes the answer into Gatekeeper's type, refusing
// any field the type does not have.
func post(t *testing.T, url string, body []byte) (int, *externaldata.ProviderResponse) {
	t.Helper()
	r, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var resp externaldata.ProviderResponse
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("the answer is not a Gatekeeper ProviderResponse: %v\n%s", err, data)
	}
	return r.StatusCode, &resp
}
