package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// Bounds of a trust store's fingerprint.
const (
	// maxTrustStoreFiles bounds the files hashed under one trust store.
	maxTrustStoreFiles = 10000
	// maxTrustStoreDepth bounds the folders walked under one trust store
	// (x509/<type>/<name>/<file> is 4 deep).
	maxTrustStoreDepth = 8
	// maxHashedFiles bounds the file digests remembered between polls.
	maxHashedFiles = 20000
)

// loadedSet is a policy set ready to verify with: its trust policy parsed,
// its trust stores checked, a verifier of its own (whose caches hold the
// certificates it read), and the digests that join the verdict cache key.
// It is never changed once loaded.
type loadedSet struct {
	name       string
	def        NamedPolicySet // as configured (Name "default" for policy)
	namespaces map[string]bool
	selector   labels.Selector // nil: none
	batch      *verify.Batch
	// policyDigest and storeDigest are the SHA-256 of the trust policy
	// file and of the trust store tree (names and contents).
	policyDigest, storeDigest string
	// fingerprint is what the files were when the set was loaded:
	// policyDigest and storeDigest, taken before loading, so that a
	// change during the load is seen at the next poll.
	fingerprint string
}

// policyTable is the policy sets a request chooses from: replaced as a
// whole, never changed.
type policyTable struct {
	def  *loadedSet
	sets []*loadedSet
	// config is the digest of the configuration file the table came from
	// ("" when the configuration was not read from a file).
	config string
}

// needsLabels reports whether a set selects namespaces by label.
func (t *policyTable) needsLabels() bool {
	for _, s := range t.sets {
		if s.selector != nil {
			return true
		}
	}
	return false
}

// choose returns the policy set of namespace: the first set listing it or
// whose selector matches its labels, else the default. labelsOf is called
// at most once, and only when a selector set is reached before a set
// listing the namespace; when it fails, no set is chosen (fail closed: the
// set the labels would select may be stricter than the default).
func (t *policyTable) choose(ctx context.Context, namespace string, labelsOf func(context.Context, string) (map[string]string, error)) (*loadedSet, error) {
	if namespace == "" {
		return t.def, nil
	}
	var nsLabels labels.Set
	for _, s := range t.sets {
		if s.namespaces[namespace] {
			return s, nil
		}
		if s.selector == nil {
			continue
		}
		if nsLabels == nil {
			if labelsOf == nil {
				return nil, &SelectionError{Namespace: namespace, Set: s.name, Err: errors.New("the Kubernetes API is not configured")}
			}
			m, err := labelsOf(ctx, namespace)
			if err != nil {
				return nil, &SelectionError{Namespace: namespace, Set: s.name, Err: err}
			}
			nsLabels = labels.Set(m)
			if nsLabels == nil {
				nsLabels = labels.Set{}
			}
		}
		if s.selector.Matches(nsLabels) {
			return s, nil
		}
	}
	return t.def, nil
}

// loadSet reads, parses and checks a policy set: the trust policy must
// parse (policy.Parse: schema and semantic rules) and every trust store it
// names must load (policy.CheckTrustStores), so that a set that would fail
// every verification is refused before it serves. Symlinks in the paths
// are followed (a ConfigMap volume links its files), which notation's own
// reader refuses.
func loadSet(def NamedPolicySet, o Options, h *fileHasher) (*loadedSet, error) {
	where := "policy"
	if def.Name != DefaultSetName {
		where = fmt.Sprintf("policySets %q", def.Name)
	}
	fp, err := h.setFingerprint(def.PolicySet)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	file, err := filepath.EvalSymlinks(def.TrustPolicy)
	if err != nil {
		return nil, fmt.Errorf("%s: trustPolicy %s: %w", where, def.TrustPolicy, err)
	}
	data, err := policy.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: trustPolicy: %w", where, err)
	}
	doc, err := policy.Parse(data, def.TrustPolicy, policy.TypeOCI)
	if err != nil {
		return nil, fmt.Errorf("%s: trustPolicy: %w", where, err)
	}
	ts := truststore.New(def.TrustStore)
	if problems := policy.CheckTrustStores(doc, ts); len(problems) > 0 {
		lines := make([]string, 0, len(problems))
		for _, p := range problems {
			lines = append(lines, p.String())
		}
		return nil, fmt.Errorf("%s: trustStore %s cannot serve the trust policy: %s", where, def.TrustStore, strings.Join(lines, "; "))
	}
	storeDigest, err := h.treeDigest(def.TrustStore)
	if err != nil {
		return nil, fmt.Errorf("%s: trustStore: %w", where, err)
	}
	verifier, err := verify.NewVerifier(verify.Options{TrustStore: ts, PluginDir: o.PluginDir})
	if err != nil {
		return nil, fmt.Errorf("%s: prepare the verifier: %w", where, err)
	}
	sum := sha256.Sum256(data)
	s := &loadedSet{
		name: def.Name, def: def, namespaces: map[string]bool{},
		batch:        &verify.Batch{Policy: doc, Verifier: verifier},
		policyDigest: hex.EncodeToString(sum[:]), storeDigest: storeDigest,
		fingerprint: fp,
	}
	for _, ns := range def.Namespaces {
		s.namespaces[ns] = true
	}
	if def.NamespaceSelector != nil {
		if s.selector, err = def.NamespaceSelector.Selector(); err != nil {
			return nil, fmt.Errorf("%s: namespaceSelector: %w", where, err)
		}
	}
	return s, nil
}

// loadTable loads the default policy and every policy set of cfg, reusing
// those of old whose definition and files have not changed.
func loadTable(cfg *Config, old *policyTable, o Options, h *fileHasher) (*policyTable, error) {
	reuse := map[string]*loadedSet{}
	if old != nil {
		reuse[old.def.name] = old.def
		for _, s := range old.sets {
			reuse[s.name] = s
		}
	}
	load := func(def NamedPolicySet) (*loadedSet, error) {
		if prev := reuse[def.Name]; prev != nil && reflect.DeepEqual(prev.def, def) {
			if fp, err := h.setFingerprint(def.PolicySet); err == nil && fp == prev.fingerprint {
				return prev, nil
			}
		}
		return loadSet(def, o, h)
	}
	t := &policyTable{}
	var err error
	if t.def, err = load(NamedPolicySet{Name: DefaultSetName, PolicySet: cfg.Policy}); err != nil {
		return nil, err
	}
	for _, def := range cfg.PolicySets {
		s, err := load(def)
		if err != nil {
			return nil, err
		}
		t.sets = append(t.sets, s)
	}
	return t, nil
}

// ReloadStats counts the reloads of policy sets since the server started.
type ReloadStats struct {
	// Successes counts sets (and configuration files) loaded anew after a
	// change; Failures counts changes refused, each distinct change once.
	Successes, Failures uint64
	// LastError is the problem of the last refused change; "" when none
	// was refused.
	LastError string
}

// reloader polls the files of the policy sets and swaps changed sets in.
type reloader struct {
	successes, failures atomic.Uint64
	mu                  sync.Mutex // lastError, refused
	lastError           string
	// refused maps a set's name ("" for the configuration file) to the
	// fingerprint of its last refused change, so that a change is
	// refused (logged, counted) once, not at every poll.
	refused map[string]string
}

// ReloadStats returns the reload counters, for metrics.
func (s *Server) ReloadStats() ReloadStats {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	return ReloadStats{Successes: s.reload.successes.Load(), Failures: s.reload.failures.Load(), LastError: s.reload.lastError}
}

// reloadLoop polls every interval until ctx ends.
func (s *Server) reloadLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reloadOnce(ctx)
		}
	}
}

// reloadOnce checks the configuration file and the files of every set,
// once. A changed configuration is loaded whole (every set it names must
// load) or not at all; a changed set is loaded alone. What fails to load
// is refused: logged with its problem and counted, and what served before
// keeps serving.
func (s *Server) reloadOnce(ctx context.Context) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	defer func() {
		// A file that panics the parser must not stop the server: it is
		// refused like any invalid file.
		if p := recover(); p != nil {
			s.refuse("", fmt.Sprintf("panic:%v", p), fmt.Errorf("keyward serve: internal error while reloading: %v", p))
		}
	}()
	cur := s.table.Load()
	if s.cfg.File != "" {
		sum, err := s.hasher.sum(s.cfg.File)
		if err != nil {
			s.refuse("", "config:"+err.Error(), fmt.Errorf("read the configuration %s: %w", s.cfg.File, err))
			return
		}
		if sum != cur.config && s.reloadConfig(cur, sum) {
			return
		}
	}
	next := &policyTable{def: cur.def, sets: append([]*loadedSet(nil), cur.sets...), config: cur.config}
	changed := false
	check := func(old *loadedSet) *loadedSet {
		fp, err := s.hasher.setFingerprint(old.def.PolicySet)
		if err != nil {
			fp = "error:" + err.Error()
		}
		if fp == old.fingerprint {
			return old
		}
		if s.alreadyRefused(old.name, fp) {
			return old
		}
		n, err := loadSet(old.def, s.opts, s.hasher)
		if err != nil {
			s.refuse(old.name, fp, err)
			return old
		}
		s.succeed(old.name, "policy set reloaded", "policyDigest", n.policyDigest, "storeDigest", n.storeDigest)
		changed = true
		return n
	}
	next.def = check(cur.def)
	for i, old := range next.sets {
		next.sets[i] = check(old)
	}
	if changed {
		s.table.Store(next)
	}
}

// reloadConfig loads the policy sets of a changed configuration file and
// reports whether they replaced cur.
func (s *Server) reloadConfig(cur *policyTable, sum string) bool {
	// A configuration refused before is tried again at each poll (the
	// files of its sets may have been fixed since) but refused, logged
	// and counted once.
	cfg, err := LoadConfig(s.cfg.File)
	if err != nil {
		s.refuse("", "config:"+sum, err)
		return false
	}
	t, err := s.tableFor(cfg, cur, sum)
	if err != nil {
		s.refuse("", "config:"+sum, err)
		return false
	}
	if restart := restartFields(s.cfg, cfg); len(restart) > 0 {
		s.log.Warn("configuration changed in fields that apply only at start: restart keyward serve to apply them",
			"file", s.cfg.File, "fields", strings.Join(restart, ", "))
	}
	s.table.Store(t)
	s.succeed("", "configuration reloaded", "file", s.cfg.File, "policySets", len(t.sets))
	return true
}

// tableFor loads the table of cfg; selectors need the Kubernetes API.
func (s *Server) tableFor(cfg *Config, cur *policyTable, sum string) (*policyTable, error) {
	t, err := loadTable(cfg, cur, s.opts, s.hasher)
	if err != nil {
		return nil, err
	}
	t.config = sum
	if t.needsLabels() {
		if _, err := s.kubeClient(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// restartFields names the fields of next, other than the policy sets,
// that differ from the running configuration.
func restartFields(cur, next *Config) []string {
	var out []string
	a, b := *cur, *next
	a.Policy, b.Policy = PolicySet{}, PolicySet{}
	a.PolicySets, b.PolicySets = nil, nil
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}

func (s *Server) alreadyRefused(name, fp string) bool {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	return s.reload.refused[name] == fp
}

func (s *Server) refuse(name, fp string, err error) {
	s.reload.mu.Lock()
	if s.reload.refused[name] == fp {
		s.reload.mu.Unlock()
		return
	}
	s.reload.refused[name] = fp
	s.reload.lastError = err.Error()
	s.reload.mu.Unlock()
	s.reload.failures.Add(1)
	what := "policy set"
	if name == "" {
		what = "configuration file"
	}
	s.log.Error("reload refused: the "+what+" that served before keeps serving; fix the file, it is checked again every reload.interval",
		"set", name, "problem", err.Error())
	s.metrics.PolicyReload(false)
	if s.opts.OnReload != nil {
		s.opts.OnReload(name, err)
	}
}

func (s *Server) succeed(name, msg string, args ...any) {
	s.reload.mu.Lock()
	delete(s.reload.refused, name)
	s.reload.mu.Unlock()
	s.reload.successes.Add(1)
	s.log.Info(msg, append([]any{"set", name}, args...)...)
	s.metrics.PolicyReload(true)
	if s.opts.OnReload != nil {
		s.opts.OnReload(name, nil)
	}
}

// fileHasher digests files, remembering each file's digest with its size
// and modification time, so that a poll reads only the files that
// changed.
type fileHasher struct {
	mu    sync.Mutex
	files map[string]hashedFile
}

type hashedFile struct {
	size  int64
	mtime time.Time
	sum   string
}

func newFileHasher() *fileHasher { return &fileHasher{files: map[string]hashedFile{}} }

// sum returns the SHA-256 of the regular file at path (symlinks followed),
// of at most maxTrustStoreFile bytes.
func (h *fileHasher) sum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	prev, ok := h.files[path]
	h.mu.Unlock()
	if ok && prev.size == fi.Size() && prev.mtime.Equal(fi.ModTime()) {
		return prev.sum, nil
	}
	data, err := bounded.ReadFile(path, maxTrustStoreFile, path)
	if err != nil {
		return "", err
	}
	d := sha256.Sum256(data)
	sum := hex.EncodeToString(d[:])
	h.mu.Lock()
	if len(h.files) >= maxHashedFiles {
		clear(h.files)
	}
	h.files[path] = hashedFile{size: fi.Size(), mtime: fi.ModTime(), sum: sum}
	h.mu.Unlock()
	return sum, nil
}

// setFingerprint is the digests of a set's trust policy file and trust
// store tree.
func (h *fileHasher) setFingerprint(ps PolicySet) (string, error) {
	p, err := h.sum(ps.TrustPolicy)
	if err != nil {
		return "", fmt.Errorf("trustPolicy: %w", err)
	}
	t, err := h.treeDigest(ps.TrustStore)
	if err != nil {
		return "", fmt.Errorf("trustStore: %w", err)
	}
	return p + ":" + t, nil
}

// treeDigest hashes the names and contents of the regular files under dir,
// following symlinks (a ConfigMap volume links its files) but skipping
// entries named ..* (the kubelet's copies behind those links), so that a
// changed trust store changes the cache keys. Unreadable entries are
// errors: the trust store would refuse them too.
func (h *fileHasher) treeDigest(dir string) (string, error) {
	type file struct{ rel, sum string }
	var files []file
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		if depth > maxTrustStoreDepth {
			return fmt.Errorf("%s is nested deeper than %d folders", filepath.Join(dir, rel), maxTrustStoreDepth)
		}
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "..") {
				continue
			}
			r := filepath.Join(rel, e.Name())
			p := filepath.Join(dir, r)
			fi, err := os.Stat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue // a dangling link: the trust store ignores it too
			}
			if err != nil {
				return err
			}
			switch {
			case fi.IsDir():
				if err := walk(r, depth+1); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				if len(files) >= maxTrustStoreFiles {
					return fmt.Errorf("%s holds more than %d files", dir, maxTrustStoreFiles)
				}
				sum, err := h.sum(p)
				if err != nil {
					return err
				}
				files = append(files, file{filepath.ToSlash(r), sum})
			}
		}
		return nil
	}
	if err := walk("", 0); err != nil {
		return "", fmt.Errorf("read the trust store: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	d := sha256.New()
	for _, f := range files {
		fmt.Fprintf(d, "%d:%s%s\n", len(f.rel), f.rel, f.sum)
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}
