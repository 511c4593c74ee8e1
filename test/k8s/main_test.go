// Package k8s tests keyward serve as a Kubernetes admission webhook against
// a real control plane: kube-apiserver v1.31.0 and etcd v3.5.15 on
// 127.0.0.1 (internal/testenv/k8senv, built by scripts/tools-k8s.sh), a
// keyward serve process built from this checkout serving HTTPS with a
// certificate whose CA is the webhooks' caBundle, and registry processes on
// 127.0.0.1 with (olareg) and without (distribution) the OCI referrers API,
// holding images signed by notation v1.3.2 through keyward's plugin. Every
// request goes through client-go, so what is asserted is what kubectl
// users see.
//
// One control plane serves the whole test binary; each test works in
// namespaces of its own and registers webhooks whose namespaceSelector
// matches only those.
package k8s

import (
	"os"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testenv/k8senv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	k8senv.StopShared()
	testenv.Cleanup()
	os.Exit(code)
}
