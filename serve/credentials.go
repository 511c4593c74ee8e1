package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/registryauth"
)

// MaxPullSecrets bounds the imagePullSecrets read for one request.
const MaxPullSecrets = 16

// credentialSet is the credentials one verification reaches registries
// with. Per registry host, the first source with a credential for it is
// used:
//
//  1. the pod's imagePullSecrets, in the pod's order (with
//     kubernetes.pullSecrets): what the kubelet pulls the image with
//     (it too tries pull secrets before the node's credentials);
//  2. registry.credentials of the configuration;
//  3. the docker config file and its credential helpers
//     (registry.dockerConfig, $DOCKER_CONFIG, ~/.docker);
//  4. none: anonymous access.
//
// A credential refused by the registry is not followed by the next
// source: the verification fails closed, naming the registry.
type credentialSet struct {
	// key tells credential sets apart without holding a secret: the
	// namespace, names, UIDs and resource versions of the pull secrets
	// used; "" when none was.
	key  string
	pull []pullSecret
}

// pullSecret is an image pull secret's registry credentials.
type pullSecret struct {
	name  string // namespace/name
	auths *registryauth.Auths
}

// credential returns the credential of host from the sources of cs, in
// order. It is an auth.CredentialFunc.
func (s *Server) credential(cs *credentialSet) auth.CredentialFunc {
	return func(ctx context.Context, host string) (auth.Credential, error) {
		if cs != nil {
			for _, p := range cs.pull {
				if c, ok := p.auths.Credential(host); ok {
					return c, nil
				}
			}
		}
		if pc := s.static[strings.ToLower(host)]; pc != nil {
			pw, err := pc.password()
			if err != nil {
				return auth.EmptyCredential, fmt.Errorf("registry.credentials of %s: %w", host, err)
			}
			return auth.Credential{Username: pc.username, Password: pw}, nil
		}
		if s.docker == nil {
			return auth.EmptyCredential, nil
		}
		return s.docker(ctx, host)
	}
}

// credentialsFor reads the pull secrets a request names (with
// kubernetes.pullSecrets on), through a cache of kubeTTL. A secret that
// does not exist, or is of another type, is skipped, as the kubelet skips
// it; one that cannot be read or parsed fails the request (fail closed).
func (s *Server) credentialsFor(ctx context.Context, r ImageRequest) (*credentialSet, error) {
	if !s.cfg.Kubernetes.PullSecrets || len(r.PullSecrets) == 0 || r.Namespace == "" {
		return &credentialSet{}, nil
	}
	if len(r.PullSecrets) > MaxPullSecrets {
		return nil, fmt.Errorf("the pod names %d imagePullSecrets, more than the %d keyward serve reads", len(r.PullSecrets), MaxPullSecrets)
	}
	k, err := s.kubeClient()
	if err != nil {
		return nil, err
	}
	cs := &credentialSet{}
	key := sha256.New()
	for _, name := range r.PullSecrets {
		p, err := s.pullSecrets.get(ctx, r.Namespace+"/"+name, func(ctx context.Context) (*loadedPullSecret, error) {
			return loadPullSecret(ctx, k, r.Namespace, name)
		})
		if err != nil {
			return nil, err
		}
		if p.secret.auths == nil {
			if p.skipped != "" {
				s.log.Warn("image pull secret skipped", "namespace", r.Namespace, "secret", name, "reason", p.skipped)
			}
			continue
		}
		cs.pull = append(cs.pull, p.secret)
		fmt.Fprintf(key, "%s\x00%s\x00%s\n", p.secret.name, p.uid, p.resourceVersion)
	}
	if len(cs.pull) > 0 {
		cs.key = hex.EncodeToString(key.Sum(nil))
	}
	return cs, nil
}

// loadedPullSecret is a pull secret as read, or why it was skipped.
type loadedPullSecret struct {
	secret               pullSecret
	uid, resourceVersion string
	skipped              string
}

// loadPullSecret reads one image pull secret, as the kubelet reads them
// (pkg/credentialprovider/secrets: the .dockerconfigjson key of a
// kubernetes.io/dockerconfigjson secret, the .dockercfg key of a
// kubernetes.io/dockercfg one; other secrets are ignored).
func loadPullSecret(ctx context.Context, k kubeAPI, namespace, name string) (*loadedPullSecret, error) {
	full := namespace + "/" + name
	sec, err := k.Secret(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return &loadedPullSecret{skipped: "it does not exist"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the image pull secret %s through the Kubernetes API: %w", full, kubeHint(err, "get on secrets in namespace "+namespace))
	}
	var data []byte
	legacy := false
	switch sec.Type {
	case corev1.SecretTypeDockerConfigJson:
		data = sec.Data[corev1.DockerConfigJsonKey]
	case corev1.SecretTypeDockercfg:
		data, legacy = sec.Data[corev1.DockerConfigKey], true
	default:
		return &loadedPullSecret{skipped: fmt.Sprintf("its type is %q, not kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg", sec.Type)}, nil
	}
	if len(data) == 0 {
		return &loadedPullSecret{skipped: "it holds no registry credentials"}, nil
	}
	auths, err := registryauth.ParseAuths(data, "image pull secret "+full, legacy)
	if err != nil {
		return nil, fmt.Errorf("%w: fix the secret (kubectl create secret docker-registry)", err)
	}
	return &loadedPullSecret{secret: pullSecret{name: full, auths: auths}, uid: string(sec.UID), resourceVersion: sec.ResourceVersion}, nil
}

// passwordCredential is a registry.credentials entry: its password is
// read from its file, again whenever the file changes (a rotated Secret).
type passwordCredential struct {
	username, file string

	mu    sync.Mutex
	size  int64
	mtime time.Time
	pw    string
}

func (p *passwordCredential) password() (string, error) {
	fi, err := os.Stat(p.file)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pw != "" && fi.Size() == p.size && fi.ModTime().Equal(p.mtime) {
		return p.pw, nil
	}
	pw, err := readPassword(p.file)
	if err != nil {
		return "", err
	}
	p.pw, p.size, p.mtime = pw, fi.Size(), fi.ModTime()
	return pw, nil
}

// staticCredentials indexes registry.credentials by registry.
func staticCredentials(creds []RegistryCredential) map[string]*passwordCredential {
	m := map[string]*passwordCredential{}
	for _, c := range creds {
		m[strings.ToLower(c.Registry)] = &passwordCredential{username: c.Username, file: c.PasswordFile}
	}
	return m
}
