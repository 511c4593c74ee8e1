// Package registryauth finds the credential of a registry, in one order for
// every keyward command that reads registries (verify, serve, scan):
//
//  1. the credential given on the command line (--username with
//     --password-stdin), for the registries the command names and no other;
//  2. notation's own: the environment variables NOTATION_USERNAME and
//     NOTATION_PASSWORD, which notation v1.3.2 reads as the defaults of its
//     --username and --password flags (a password without a user name is
//     an identity token, exchanged as a refresh token), for the registries
//     the command names;
//  3. the docker config file notation v1.3.2 logs in to ($DOCKER_CONFIG/
//     config.json, else ~/.docker/config.json), read as the docker CLI
//     reads it: the registry's entry in "credHelpers", else "credsStore",
//     else the registry's entry in "auths" ("auth" or "username" and
//     "password", with "identitytoken" a refresh token and "registrytoken"
//     a bearer token);
//  4. none: anonymous access, which registries with public repositories
//     answer with an anonymous token.
//
// Credential helpers (docker-credential-<name> get) run with a timeout and
// their output bounded. A password, token or helper output never appears in
// an error.
package registryauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/internal/bounded"
)

// Bounds and defaults.
const (
	// DefaultHelperTimeout bounds one run of a credential helper.
	DefaultHelperTimeout = 10 * time.Second
	// MaxHelperOutput bounds what a credential helper may print: a
	// credential is a few KiB (ACR refresh tokens, ECR passwords).
	MaxHelperOutput = 64 << 10
	// MaxConfigFile bounds the docker config file.
	MaxConfigFile = 4 << 20
	// helperWaitDelay is how long a stopped helper's output pipes are
	// waited for (a child it left behind may hold them open).
	helperWaitDelay = time.Second
)

// tokenUsername is the user name by which a credential helper says that
// the secret is an identity token (docker-credential-helpers,
// credentials/credentials.go).
const tokenUsername = "<token>"

// Options configures a [Resolver].
type Options struct {
	// Explicit is the credential given on the command line; Hosts are the
	// registries it is for (the registries the command names).
	Explicit *auth.Credential
	// Hosts are the registries the command names: Explicit and notation's
	// environment credential apply to them only.
	Hosts []string
	// Getenv reads the environment (DOCKER_CONFIG, HOME, NOTATION_USERNAME,
	// NOTATION_PASSWORD); nil means no environment.
	Getenv func(string) string
	// HelperTimeout bounds one run of a credential helper (default
	// DefaultHelperTimeout).
	HelperTimeout time.Duration
	// HelperEnv is the environment of credential helpers; nil means the
	// process's.
	HelperEnv []string
	// Path is the list of folders searched for credential helpers, as
	// $PATH; empty means the process's $PATH.
	Path string
}

// Resolver returns the credential of a registry. It reads the docker config
// file once, runs a credential helper at most once per registry, and is
// safe for concurrent use.
type Resolver struct {
	explicit      *auth.Credential
	notation      *auth.Credential
	hosts         map[string]bool
	config        *dockerConfig
	configErr     error // why the docker config file cannot be used
	configPath    string
	helperTimeout time.Duration
	helperEnv     []string
	path          string

	mu      sync.Mutex
	results map[string]*result
}

type result struct {
	done chan struct{}
	cred auth.Credential
	err  error
}

// New returns a Resolver; it reads the docker config file, if there is
// one. An error of the file is returned by Credential, for the registries
// whose credential is looked for in it.
func New(o Options) (*Resolver, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	r := &Resolver{
		explicit:      o.Explicit,
		hosts:         map[string]bool{},
		helperTimeout: o.HelperTimeout,
		helperEnv:     o.HelperEnv,
		path:          o.Path,
		results:       map[string]*result{},
	}
	if r.helperTimeout <= 0 {
		r.helperTimeout = DefaultHelperTimeout
	}
	for _, h := range o.Hosts {
		r.hosts[h] = true
	}
	// notation v1.3.2 cmd/notation/internal/option/secure.go: --username
	// and --password default to $NOTATION_USERNAME and $NOTATION_PASSWORD.
	if user, pass := getenv("NOTATION_USERNAME"), getenv("NOTATION_PASSWORD"); pass != "" {
		c := auth.Credential{Username: user, Password: pass}
		if user == "" {
			c = auth.Credential{RefreshToken: pass}
		}
		r.notation = &c
	}
	// One password is one registry's: notation takes one reference per
	// run, so its --password (or $NOTATION_PASSWORD) never reaches a
	// second registry. A batch naming several registries would send it to
	// each of them, a hostile one included.
	if (r.explicit != nil || r.notation != nil) && len(r.hosts) > 1 {
		source := "--username and --password-stdin"
		if r.explicit == nil {
			source = "$NOTATION_USERNAME and $NOTATION_PASSWORD"
		}
		return nil, &AmbiguousCredentialError{Source: source, Hosts: sortedHosts(r.hosts)}
	}
	r.configPath = DockerConfigPath(getenv)
	if r.configPath != "" {
		// A broken file fails the registries that need it, not a run whose
		// credentials all come from the command line.
		r.config, r.configErr = loadDockerConfig(r.configPath)
	}
	return r, nil
}

// DockerConfigPath is $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json (the docker CLI's cli/config/config.go), the file
// notation v1.3.2 logs in to; empty when neither variable is set.
func DockerConfigPath(getenv func(string) string) string {
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".docker", "config.json")
	}
	return ""
}

// Credential returns the credential of a registry host (host[:port]), or
// auth.EmptyCredential for anonymous access. It is an auth.CredentialFunc.
func (r *Resolver) Credential(ctx context.Context, host string) (auth.Credential, error) {
	if r.hosts[host] {
		if r.explicit != nil {
			return *r.explicit, nil
		}
		if r.notation != nil {
			return *r.notation, nil
		}
	}
	if r.configErr != nil {
		return auth.EmptyCredential, r.configErr
	}
	if r.config == nil {
		return auth.EmptyCredential, nil
	}
	r.mu.Lock()
	res, ok := r.results[host]
	if !ok {
		res = &result{done: make(chan struct{})}
		r.results[host] = res
		r.mu.Unlock()
		res.cred, res.err = r.fromConfig(ctx, host)
		if ctx.Err() != nil {
			// Cancelled with its caller: the next caller runs the helper
			// again rather than inherit the cancellation.
			r.mu.Lock()
			delete(r.results, host)
			r.mu.Unlock()
		}
		close(res.done)
		return res.cred, res.err
	}
	r.mu.Unlock()
	select {
	case <-res.done:
		return res.cred, res.err
	case <-ctx.Done():
		return auth.EmptyCredential, ctx.Err()
	}
}

// fromConfig reads the docker config file's credential of host, as the
// docker CLI does (cli/config/configfile/file.go GetCredentialsStore): the
// host's credential helper, else the default store, else the file.
func (r *Resolver) fromConfig(ctx context.Context, host string) (auth.Credential, error) {
	if helper, ok := r.config.helperFor(host); ok {
		return r.runHelper(ctx, helper, r.config.helperSource(host), host)
	}
	entry, ok := r.config.authFor(host)
	if !ok {
		return auth.EmptyCredential, nil
	}
	return entry, nil
}

// runHelper runs docker-credential-<name> get with the server address on
// standard input (docker-credential-helpers, client/client.go) and decodes
// {"ServerURL", "Username", "Secret"}.
func (r *Resolver) runHelper(ctx context.Context, name, source, host string) (auth.Credential, error) {
	program := "docker-credential-" + name
	herr := func(kind HelperErrorKind, err error) error {
		return &HelperError{Kind: kind, Program: program, Host: host, Source: source + " of " + r.configPath,
			Timeout: r.helperTimeout, Limit: MaxHelperOutput, Err: err}
	}
	path, err := r.lookPath(program)
	if err != nil {
		return auth.EmptyCredential, herr(HelperNotFound, nil)
	}
	ctx, cancel := context.WithTimeout(ctx, r.helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "get")
	cmd.Env = r.helperEnv
	cmd.Stdin = strings.NewReader(serverAddress(host))
	stdout := &limitedBuffer{limit: MaxHelperOutput, overflow: cancel}
	stderr := &limitedBuffer{limit: MaxHelperOutput, overflow: cancel}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = helperWaitDelay
	setProcessGroup(cmd)
	runErr := cmd.Run()
	switch {
	case stdout.overflowed || stderr.overflowed:
		return auth.EmptyCredential, herr(HelperOutputTooLarge, nil)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return auth.EmptyCredential, herr(HelperTimeout, nil)
	case runErr != nil:
		// docker-credential-helpers, credentials/error.go: a missing
		// credential is reported on standard output with this message.
		if bytes.Contains(stdout.buf.Bytes(), []byte("credentials not found")) {
			return auth.EmptyCredential, nil
		}
		var exitErr *exec.ExitError
		if errors.As(runErr, &exitErr) {
			return auth.EmptyCredential, herr(HelperFailed, fmt.Errorf("exit status %d", exitErr.ExitCode()))
		}
		return auth.EmptyCredential, herr(HelperFailed, runErr)
	}
	var out struct {
		ServerURL string
		Username  string
		Secret    string
	}
	dec := json.NewDecoder(bytes.NewReader(stdout.buf.Bytes()))
	if err := dec.Decode(&out); err != nil || dec.More() {
		return auth.EmptyCredential, herr(HelperBadOutput, nil)
	}
	if out.Secret == "" {
		return auth.EmptyCredential, nil
	}
	if out.Username == tokenUsername {
		return auth.Credential{RefreshToken: out.Secret}, nil
	}
	return auth.Credential{Username: out.Username, Password: out.Secret}, nil
}

// limitedBuffer keeps up to limit bytes; past it, it drops the rest and
// stops the helper.
type limitedBuffer struct {
	buf        bytes.Buffer
	limit      int
	overflowed bool
	overflow   func()
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.limit {
		b.overflowed = true
		b.overflow()
		return 0, errors.New("output bound reached")
	}
	return b.buf.Write(p)
}

// dockerConfig is the part of the docker config file that holds
// credentials (docker CLI cli/config/configfile/file.go).
type dockerConfig struct {
	Auths       map[string]authEntry `json:"auths"`
	CredsStore  string               `json:"credsStore"`
	CredHelpers map[string]string    `json:"credHelpers"`

	creds map[string]auth.Credential // auths, decoded, by normalized host
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// loadDockerConfig reads a docker config file; a missing file is an empty
// configuration.
func loadDockerConfig(path string) (*dockerConfig, error) {
	data, err := bounded.ReadFile(path, MaxConfigFile, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var tooLarge *bounded.TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, &ConfigError{Path: path, Msg: fmt.Sprintf("larger than %d bytes", MaxConfigFile)}
	}
	if err != nil {
		return nil, &ConfigError{Path: path, Msg: "cannot be read", Err: err}
	}
	var c dockerConfig
	if err := json.Unmarshal(data, &c); err != nil {
		// The decoder's message names a position or a type, never a value.
		return nil, &ConfigError{Path: path, Msg: "is not valid JSON: fix or remove the file", Err: err}
	}
	if c.creds, err = decodeAuths(path, c.Auths); err != nil {
		return nil, err
	}
	return &c, nil
}

// decodeAuths decodes the "auths" entries of a docker config file by
// normalized host. Errors name the file and the key, never a credential.
func decodeAuths(path string, entries map[string]authEntry) (map[string]auth.Credential, error) {
	creds := map[string]auth.Credential{}
	for key, e := range entries {
		cred := auth.Credential{Username: e.Username, Password: e.Password, RefreshToken: e.IdentityToken, AccessToken: e.RegistryToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, &ConfigError{Path: path, Field: fmt.Sprintf("auths[%q].auth", key), Msg: "is not base64 of user:password: log in again with `docker login` or `notation login`"}
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, &ConfigError{Path: path, Field: fmt.Sprintf("auths[%q].auth", key), Msg: "is not base64 of user:password: log in again with `docker login` or `notation login`"}
			}
			cred.Username, cred.Password = user, pass
		}
		if cred.RefreshToken != "" {
			// An identity token replaces the password (docker CLI
			// cli/config/configfile/file.go decodeAuth).
			cred.Password = ""
		}
		if cred == auth.EmptyCredential {
			continue // an entry a credential store keeps the secret of
		}
		creds[normalize(key)] = cred
	}
	return creds, nil
}

// helperFor returns the credential helper of host: its credHelpers entry,
// else credsStore.
func (c *dockerConfig) helperFor(host string) (string, bool) {
	for _, k := range aliases(host) {
		if h, ok := c.CredHelpers[k]; ok && h != "" {
			return h, true
		}
	}
	for k, h := range c.CredHelpers {
		if normalize(k) == normalize(host) && h != "" {
			return h, true
		}
	}
	if c.CredsStore != "" {
		return c.CredsStore, true
	}
	return "", false
}

func (c *dockerConfig) helperSource(host string) string {
	for k, h := range c.CredHelpers {
		if normalize(k) == normalize(host) && h != "" {
			return fmt.Sprintf("credHelpers[%q]", k)
		}
	}
	return "credsStore"
}

func (c *dockerConfig) authFor(host string) (auth.Credential, bool) {
	cred, ok := c.creds[normalize(host)]
	return cred, ok
}

// dockerHubServer is the key docker login uses for Docker Hub.
const dockerHubServer = "https://index.docker.io/v1/"

// serverAddress is what a credential helper is asked for: the host, except
// Docker Hub's historical address.
func serverAddress(host string) string {
	if isDockerHub(host) {
		return dockerHubServer
	}
	return host
}

func isDockerHub(host string) bool {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

func aliases(host string) []string {
	if isDockerHub(host) {
		return []string{dockerHubServer, "docker.io", "index.docker.io", "registry-1.docker.io"}
	}
	return []string{host}
}

// normalize turns a docker config key (host, https://host, https://host/v1/)
// into a host.
func normalize(key string) string {
	k := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	k, _, _ = strings.Cut(k, "/")
	if isDockerHub(k) {
		return "docker.io"
	}
	return k
}

// lookPath finds program in the folders of r.path, else of $PATH. The
// name comes from the config file: one with a path separator would climb
// out of the PATH folders ("docker-credential-x/../prog"), so it is not
// looked up, as the docker CLI's exec of docker-credential-<name> never
// leaves $PATH. Relative PATH folders are skipped, as exec.LookPath refuses
// them (Go os/exec, ErrDot): they would run what the working folder holds.
func (r *Resolver) lookPath(program string) (string, error) {
	if strings.ContainsRune(program, '/') || strings.ContainsRune(program, filepath.Separator) {
		return "", exec.ErrNotFound
	}
	if r.path == "" {
		p, err := exec.LookPath(program)
		if err != nil || !filepath.IsAbs(p) {
			return "", exec.ErrNotFound
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(r.path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, program)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func sortedHosts(m map[string]bool) []string {
	hosts := make([]string, 0, len(m))
	for h := range m {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return hosts
}
