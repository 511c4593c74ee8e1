package serve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/oci"
)

// TestRegistryClientLivesAcrossRequests: the server's one registry client
// keeps its registry token across verifications (one token request for
// two artifacts of one repository, each verified by its own request) and
// a tag's resolution for cache.resolutionTTL (the tag asked again within
// it costs no registry request; after it, one).
func TestRegistryClientLivesAcrossRequests(t *testing.T) {
	const user, password = "keyward", "s3cret-t0ken-pa55"
	issuer := testenv.StartTokenIssuer(t, testenv.TokenIssuerOptions{Users: map[string]string{user: password}})
	reg := testenv.StartDistributionWithTokenAuth(t, issuer, user, password)
	w := newWorldOn(t, reg)
	dockerDir := filepath.Join(w.n.Home, ".docker")
	dockerConfig, _ := json.Marshal(map[string]any{"auths": map[string]any{
		reg.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dockerDir, "config.json", dockerConfig, 0o600)
	first := w.signed(t, "team/app")
	second := w.signed(t, "team/app")
	// Tag first as stable, with the credentials the registry asks for.
	repo, err := remote.NewRepository(reg.Host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	repo.Client = &auth.Client{Credential: auth.StaticCredential(reg.Host, auth.Credential{Username: user, Password: password})}
	desc, err := repo.Resolve(context.Background(), first[strings.Index(first, "@")+1:])
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(context.Background(), desc, "stable"); err != nil {
		t.Fatal(err)
	}
	tagged := reg.Host + "/team/app:stable"

	cfg := w.config(reg.Host)
	cfg.Registry.DockerConfig = dockerDir
	cfg.Cache.ResolutionTTL = 400 * time.Millisecond
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := issuer.Requests()
	for _, ref := range []string{first, second} {
		if r := s.Verify(ctx, ref); !r.Verified {
			t.Fatalf("%s: %+v", ref, r.Error)
		}
	}
	if n := issuer.Requests() - before; n != 1 {
		t.Errorf("%d token requests for two verifications in one repository, want 1: the token is kept across requests", n)
	}
	if v := s.cacheFor(ctx).Verifications(); v != 2 {
		t.Fatalf("%d verifications, want 2", v)
	}

	requests := func() int64 {
		var n int64
		for _, st := range s.sourceFor(nil).(*oci.Remote).Stats() {
			n += st.Requests
		}
		return n
	}
	if r := s.Verify(ctx, tagged); !r.Verified || r.Artifact.Digest != desc.Digest {
		t.Fatalf("%s: %+v", tagged, r)
	}
	n0 := requests()
	if r := s.Verify(ctx, tagged); !r.Verified {
		t.Fatalf("%s again: %+v", tagged, r.Error)
	}
	if n := requests() - n0; n != 0 {
		t.Errorf("the tag asked again within resolutionTTL cost %d registry requests, want 0", n)
	}
	time.Sleep(cfg.Cache.ResolutionTTL + 100*time.Millisecond)
	n0 = requests()
	if r := s.Verify(ctx, tagged); !r.Verified {
		t.Fatalf("%s after the TTL: %+v", tagged, r.Error)
	}
	if n := requests() - n0; n < 1 {
		t.Errorf("the tag asked after resolutionTTL cost no registry request: not resolved again")
	}
}
