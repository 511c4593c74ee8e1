package serve

import (
	"context"
	"net/http"

	"github.com/keyward/keyward/admission"
	"github.com/keyward/keyward/verify"
)

// The endpoints of package admission.
const (
	// ValidatePath is the validating admission webhook.
	ValidatePath = "/v1/admission/validate"
	// MutatePath is the mutating admission webhook.
	MutatePath = "/v1/admission/mutate"
	// GatekeeperPath is the Gatekeeper external-data provider.
	GatekeeperPath = "/v1/gatekeeper/verify"
)

// imageVerifier verifies the images of admission requests with the policy
// set of their namespace and the pod's pull secrets.
type imageVerifier struct{ s *Server }

// VerifyImage verifies r.Reference through [Server.VerifyImage].
func (v imageVerifier) VerifyImage(ctx context.Context, r admission.ImageRequest) *verify.ReferenceResult {
	return v.s.VerifyImage(ctx, ImageRequest{Namespace: r.Namespace, Reference: r.Reference, PullSecrets: r.PullSecrets})
}

// admissionRoutes adds the admission webhooks and the Gatekeeper provider
// the configuration enables to mux.
func (s *Server) admissionRoutes(mux *http.ServeMux) {
	wh := &admission.Webhook{Verifier: imageVerifier{s}, Log: s.log, Timeout: s.cfg.RequestTimeout}
	if !s.cfg.Webhooks.DisableValidating {
		mux.HandleFunc("POST "+ValidatePath, wh.ServeValidate)
	}
	if !s.cfg.Webhooks.DisableMutating {
		mux.HandleFunc("POST "+MutatePath, wh.ServeMutate)
	}
	if !s.cfg.Gatekeeper.Disable {
		mux.HandleFunc("POST "+GatekeeperPath, wh.ServeGatekeeper)
	}
}
