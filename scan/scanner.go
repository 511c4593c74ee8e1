package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// Store is where a scan reads artifacts: an [oci.Remote] or [oci.Layouts].
type Store interface {
	oci.Source
	// Tags lists a repository's tags, page by page.
	Tags(ctx context.Context, ref reference.Reference, fn func([]string) error) error
	// Referrers lists every referrer of an artifact, page by page.
	Referrers(ctx context.Context, a oci.Artifact, fn func([]ocispec.Descriptor) error) error
	// FetchManifest fetches a manifest, bounded and digest-checked.
	FetchManifest(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) ([]byte, error)
	// FetchBlob fetches a blob of at most limit bytes, digest-checked.
	FetchBlob(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor, limit int64) ([]byte, error)
	// Exists reports whether a manifest of desc's digest is there.
	Exists(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) (bool, error)
}

// Cataloger lists a registry's repositories ([oci.Remote] does).
type Cataloger interface {
	Repositories(ctx context.Context, host string, fn func([]string) error) error
}

// Defaults and bounds of a scan.
const (
	// DefaultConcurrency is the default number of artifacts read at once,
	// all registries together.
	DefaultConcurrency = 32
	// DefaultRegistryConcurrency is the default number read at once from
	// one registry. An artifact's requests follow one another, so this is
	// about the requests in flight to the registry; against a registry
	// 10 ms away, 8 made keyward scan 5x faster than a sequential walk of
	// the same requests and 16 made it 10.7x (bench/scan, issue 13's goal
	// 8x); a 429 answer still pauses them all.
	DefaultRegistryConcurrency = 16
	// DefaultMaxBytes is the default cap on bytes fetched per artifact.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxRepositories is the default bound on the repositories
	// taken from one registry's catalog.
	DefaultMaxRepositories = 1 << 20
	// DefaultMaxTags is the default bound on the tags taken from one
	// repository.
	DefaultMaxTags = 1 << 18
	// MaxReferrers bounds the referrers read per artifact.
	MaxReferrers = 256
	// MaxLayers bounds the layers read from one cosign attachment manifest
	// (cosign itself reads at most 1000).
	MaxLayers = 256
	// maxPayload bounds a Simple Signing payload or DSSE envelope.
	maxPayload = 1 << 20
	// maxBundle bounds a Sigstore bundle.
	maxBundle = 4 << 20
	// maxConfig bounds an image configuration read for its creation time.
	maxConfig = 4 << 20
	// maxHeldManifests bounds the bytes of manifests fetched by tag that
	// one repository's scan keeps until their artifacts are scanned;
	// beyond it a manifest is fetched again by digest.
	maxHeldManifests = 4 << 20
)

// Target is what to scan: a registry (all its repositories), a registry
// with a repository prefix, or an OCI image layout.
type Target struct {
	// Registry is host[:port].
	Registry string
	// Repository is a repository, or a prefix of repositories (those equal
	// to it or below it). Empty: every repository of the catalog.
	Repository string
	// Layout is an OCI image layout folder (instead of Registry), and
	// Scope the registry scope its trust policy statement is selected by.
	Layout, Scope string
}

// ParseTarget parses HOST, HOST/REPOSITORY-PREFIX.
func ParseTarget(s string) (Target, error) {
	host, repo, _ := strings.Cut(s, "/")
	if host == "" || strings.ContainsAny(host, "@ ") || strings.Contains(repo, "@") || strings.Contains(repo, ":") {
		return Target{}, fmt.Errorf("%q is not a registry or repository to scan: want HOST[:PORT] or HOST[:PORT]/REPOSITORY (no tag or digest)", s)
	}
	repo = strings.TrimSuffix(repo, "/")
	if repo != "" {
		if _, err := reference.Parse(host + "/" + repo + ":x"); err != nil {
			return Target{}, fmt.Errorf("%q is not a registry or repository to scan: %w", s, err)
		}
	}
	return Target{Registry: host, Repository: repo}, nil
}

// Options configures a [Scanner].
type Options struct {
	// Store reads artifacts. Required.
	Store Store
	// Catalog lists repositories of registries; nil for layouts.
	Catalog Cataloger
	// Batch verifies each artifact as keyward verify does; nil: no
	// verification. Its Source must be Store.
	Batch *verify.Batch
	// Concurrency bounds the artifacts read at once in total,
	// RegistryConcurrency per registry.
	Concurrency, RegistryConcurrency int
	// Platforms keeps only these platform manifests of image indexes
	// (os/architecture[/variant]; without variant: every variant); empty
	// keeps every one.
	Platforms []string
	// Repositories keeps repositories matching one of these path.Match
	// globs; empty keeps every one.
	Repositories []string
	// TagRegex keeps tags it matches (unanchored RE2; nil keeps all).
	TagRegex *regexp.Regexp
	// MinAge and MaxAge keep artifacts created at least MinAge and at most
	// MaxAge before Now (zero: no bound). See the package doc for age.
	MinAge, MaxAge time.Duration
	// Now is the scan's start (default time.Now()).
	Now time.Time
	// MaxBytes caps the bytes fetched per artifact (default
	// DefaultMaxBytes).
	MaxBytes int64
	// State records finished artifacts and replays them (nil: none).
	State *State
	// MaxRepositories bounds the repositories taken from one registry's
	// catalog, MaxTags the tags taken from one repository (defaults
	// DefaultMaxRepositories, DefaultMaxTags): a registry whose listing
	// never ends is scanned that far, and the scan says so.
	MaxRepositories, MaxTags int
	// CosignKeys are tried on key-based cosign signatures that name no
	// key: a signature one verifies gets the key as a verified identity.
	CosignKeys []*CosignKey
}

// Scanner scans targets. Use one per run.
type Scanner struct {
	o       Options
	limiter *limiter
	records chan *Record

	chains chains // certificate chain validations of the run

	discovered, done, restored, filtered atomic.Int64
	catalogs                             map[string]catalogResult // used by Run's goroutine only
}

type catalogResult struct {
	repos []string
	err   error
}

// New returns a Scanner.
func New(o Options) *Scanner {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.RegistryConcurrency <= 0 {
		o.RegistryConcurrency = DefaultRegistryConcurrency
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxRepositories <= 0 {
		o.MaxRepositories = DefaultMaxRepositories
	}
	if o.MaxTags <= 0 {
		o.MaxTags = DefaultMaxTags
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return &Scanner{o: o, limiter: newLimiter(o.Concurrency, o.RegistryConcurrency), catalogs: map[string]catalogResult{}}
}

// Progress is a snapshot of a running scan.
type Progress struct {
	// Discovered artifacts so far, Done of them (Restored from the state
	// file among them), Filtered out by age.
	Discovered, Done, Restored, Filtered int64
}

// Progress returns counts of the scan so far; safe to call while Run runs.
func (s *Scanner) Progress() Progress {
	return Progress{Discovered: s.discovered.Load(), Done: s.done.Load(), Restored: s.restored.Load(), Filtered: s.filtered.Load()}
}

// Run scans the targets and hands each record to emit as it is finished
// (by one goroutine at a time): first the records of the state file, then
// the new ones, each appended to the state file after emit. It returns the
// errors that stopped a target (a refused catalog, a failed listing), all
// targets being tried.
func (s *Scanner) Run(ctx context.Context, targets []Target, emit func(*Record)) error {
	s.records = make(chan *Record, 64)
	emitted := make(chan error, 1)
	go func() {
		var stateErr error
		for r := range s.records {
			if r.Kind != kindOrphanCheck { // the state file's own
				emit(r)
			}
			if s.o.State != nil && stateErr == nil {
				stateErr = s.o.State.append(r)
			}
		}
		emitted <- stateErr
	}()
	var (
		errs   []error
		errsMu sync.Mutex
		wg     sync.WaitGroup
	)
	if err := s.o.State.replay(func(r *Record) {
		s.discovered.Add(1)
		s.done.Add(1)
		s.restored.Add(1)
		s.records <- r
	}); err != nil {
		errs = append(errs, err)
	}
	// Repositories in flight are bounded: each holds its tag list while
	// its artifacts are read, and a catalog may list a million.
	inFlight := make(chan struct{}, 2*s.o.Concurrency)
	for _, t := range targets {
		repos, err := s.repositories(ctx, t)
		if err != nil {
			errs = append(errs, err)
		}
		for _, repo := range repos {
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-inFlight }()
				if err := s.scanRepository(ctx, t, repo); err != nil {
					errsMu.Lock()
					errs = append(errs, err)
					errsMu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(s.records)
	if err := <-emitted; err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// repositories lists the repositories of a target.
func (s *Scanner) repositories(ctx context.Context, t Target) ([]string, error) {
	if t.Layout != "" {
		return []string{t.Scope}, nil
	}
	if s.o.Catalog == nil {
		return nil, fmt.Errorf("scan %s: no catalog client", t.Registry)
	}
	all, err := s.catalog(ctx, t.Registry)
	var refused *oci.CatalogRefusedError
	if errors.As(err, &refused) {
		if t.Repository != "" {
			// A named repository is scanned as it is named.
			return []string{t.Repository}, nil
		}
		return nil, &CatalogRefusedError{Host: t.Registry, Err: err}
	}
	var bound *ListBoundError
	if err != nil && !errors.As(err, &bound) {
		return nil, fmt.Errorf("scan %s: %w", t.Registry, err)
	}
	var repos []string
	for _, r := range all {
		if t.Repository != "" && r != t.Repository && !strings.HasPrefix(r, t.Repository+"/") {
			continue
		}
		if s.keepRepository(r) {
			repos = append(repos, r)
		}
	}
	if len(repos) == 0 && t.Repository != "" && !slices.Contains(all, t.Repository) && s.keepRepository(t.Repository) {
		// Named but not listed (a catalog may list only what the account
		// may list): scanned as named, never reported as nothing.
		return []string{t.Repository}, err
	}
	return repos, err
}

// catalog lists a registry's repositories, once per run.
func (s *Scanner) catalog(ctx context.Context, host string) ([]string, error) {
	if c, ok := s.catalogs[host]; ok {
		return c.repos, c.err
	}
	var repos []string
	bound := &ListBoundError{What: "registry " + host, Noun: "repository", Nouns: "repositories", Max: s.o.MaxRepositories}
	err := s.o.Catalog.Repositories(ctx, host, func(page []string) error {
		for _, r := range page {
			if !validRepository(host, r) {
				bound.Invalid++
				continue
			}
			if len(repos) >= s.o.MaxRepositories {
				bound.Reached = true
				return errStopListing
			}
			repos = append(repos, r)
		}
		return nil
	})
	if errors.Is(err, errStopListing) {
		err = nil
	}
	if err == nil && (bound.Reached || bound.Invalid > 0) {
		err = bound
	}
	slices.Sort(repos)
	repos = slices.Compact(repos)
	s.catalogs[host] = catalogResult{repos, err}
	return repos, err
}

func (s *Scanner) keepRepository(repo string) bool {
	if len(s.o.Repositories) == 0 {
		return true
	}
	for _, g := range s.o.Repositories {
		if ok, _ := path.Match(g, repo); ok {
			return true
		}
	}
	return false
}

// repoScan is the scan of one repository.
type repoScan struct {
	s      *Scanner
	t      Target
	repo   string
	host   string // registry host, or "layout"
	wg     sync.WaitGroup
	mu     sync.Mutex
	seen   map[string]bool              // artifact digests scanned or scheduled
	attach map[string]map[string]string // subject digest -> suffix -> tag
	used   map[string]bool              // subject digests whose attachments were read
}

// ref returns the reference of object (":tag" or "@digest") in the
// repository.
func (rs *repoScan) ref(object string) (reference.Reference, error) {
	if rs.t.Layout != "" {
		return reference.ParseLayout(rs.t.Layout+object, rs.t.Scope)
	}
	return reference.Parse(rs.t.Registry + "/" + rs.repo + object)
}

func (s *Scanner) scanRepository(ctx context.Context, t Target, repo string) error {
	rs := &repoScan{s: s, t: t, repo: repo, host: t.Registry, seen: map[string]bool{},
		attach: map[string]map[string]string{}, used: map[string]bool{}}
	if t.Layout != "" {
		rs.host = "layout"
	}
	base, err := rs.ref(":latest")
	if err != nil {
		return fmt.Errorf("scan repository %s: %w", repo, err)
	}
	skip := false
	if s.o.Batch != nil {
		if sel, err := s.o.Batch.Policy.Select(base); err == nil && sel.Statement.SkipsVerification() {
			skip = true
		}
	}
	var tags []string
	release, err := s.limiter.acquire(ctx, rs.host)
	if err != nil {
		return err
	}
	bound := &ListBoundError{What: "repository " + base.Scope, Noun: "tag", Nouns: "tags", Max: s.o.MaxTags}
	listed := 0
	err = s.o.Store.Tags(ctx, base, func(page []string) error {
		for _, tag := range page {
			if !validTag.MatchString(tag) {
				bound.Invalid++
				continue
			}
			if listed >= s.o.MaxTags {
				bound.Reached = true
				return errStopListing
			}
			listed++
			if subject, suffix, ok := attachmentTag(tag); ok {
				if rs.attach[subject] == nil {
					rs.attach[subject] = map[string]string{}
				}
				rs.attach[subject][suffix] = tag
				continue
			}
			if s.o.TagRegex != nil && !s.o.TagRegex.MatchString(tag) {
				continue
			}
			tags = append(tags, tag)
		}
		return nil
	})
	release()
	if errors.Is(err, errStopListing) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("scan repository %s: %w", base.Scope, err)
	}
	var listErr error
	if bound.Reached || bound.Invalid > 0 {
		listErr = bound
	}
	if skip {
		for _, tag := range tags {
			s.skipped(ctx, rs, tag)
		}
		return listErr
	}
	// Resolve the tags (but those a finished record of the state file
	// names), group them by digest. Where the Store can, a tag is resolved
	// by fetching its manifest (one GET instead of HEAD then GET by
	// digest), and the manifest is kept for the artifact's scan while the
	// repository's kept manifests stay within maxHeldManifests bytes.
	type resolved struct {
		tags []string
		desc ocispec.Descriptor
		raw  []byte // the manifest, or nil: fetched by digest
	}
	held := int64(0)
	byDigest := map[digest.Digest]*resolved{}
	var order []digest.Digest
	var resolveMu sync.Mutex
	var resolveWG sync.WaitGroup
	type resolveErr struct{ tag, msg string }
	var resolveErrs []resolveErr
	for _, tag := range tags {
		if d := s.o.State.digestOfTag(base.Scope, tag); d != "" {
			rs.markSeen(digest.Digest(d))
			continue
		}
		release, err := s.limiter.acquire(ctx, rs.host)
		if err != nil {
			return err
		}
		resolveWG.Add(1)
		go func() {
			defer resolveWG.Done()
			defer release()
			ref, err := rs.ref(":" + tag)
			var desc ocispec.Descriptor
			var raw []byte
			if err == nil {
				if tf, ok := s.o.Store.(taggedFetcher); ok {
					desc, raw, err = tf.FetchTagged(ctx, ref, tag)
				} else {
					var a oci.Artifact
					a, err = s.o.Store.Resolve(ctx, ref)
					desc = a.Descriptor
				}
			}
			resolveMu.Lock()
			defer resolveMu.Unlock()
			if err != nil {
				resolveErrs = append(resolveErrs, resolveErr{tag, fmt.Sprintf("tag %s: %v", tag, err)})
				return
			}
			r := byDigest[desc.Digest]
			if r == nil {
				r = &resolved{desc: desc}
				if raw != nil && held+int64(len(raw)) <= maxHeldManifests {
					r.raw = raw
					held += int64(len(raw))
				}
				byDigest[desc.Digest] = r
				order = append(order, desc.Digest)
			}
			r.tags = append(r.tags, tag)
		}()
	}
	resolveWG.Wait()
	for _, e := range resolveErrs {
		// A tag that does not resolve is a record of its own, in error.
		s.discovered.Add(1)
		s.finish(&Record{Version: RecordVersion, Kind: KindArtifact, Registry: t.Registry, Layout: t.Layout,
			Repository: repo, Reference: base.Scope + ":" + e.tag, Tags: []string{e.tag}, Status: StatusError, Signatures: []*Signature{}, Errors: []string{e.msg}})
	}
	for _, d := range order {
		r := byDigest[d]
		slices.Sort(r.tags)
		// The slot is taken before the artifact's goroutine starts: the
		// artifacts of a repository wait here, not in a goroutine each,
		// so the memory of a scan does not grow with its artifacts.
		release, err := s.limiter.acquire(ctx, rs.host)
		if err != nil {
			rs.wg.Wait()
			return err
		}
		rs.schedule(ctx, r.desc, r.raw, r.tags, "", "", release)
		r.raw = nil // the artifact's scan holds it now
	}
	rs.wg.Wait()
	rs.orphans(ctx)
	rs.wg.Wait()
	return listErr
}

// errStopListing ends a listing at its bound.
var errStopListing = errors.New("listing bound reached")

// validTag is the tag grammar (OCI distribution-spec, "Pulling manifests":
// at most 128 characters); a registry's list may hold anything.
var validTag = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// maxRepositoryName bounds a repository name from a catalog (distribution
// refuses names longer than 255 characters).
const maxRepositoryName = 255

// validRepository reports whether a catalog's name is a repository name.
func validRepository(host, name string) bool {
	if len(name) > maxRepositoryName {
		return false
	}
	_, err := reference.Parse(host + "/" + name + ":x")
	return err == nil
}

// skipped records a tag of a repository whose statement is skip.
func (s *Scanner) skipped(ctx context.Context, rs *repoScan, tag string) {
	ref, err := rs.ref(":" + tag)
	if err != nil {
		return
	}
	r := &Record{Version: RecordVersion, Kind: KindSkipped, Registry: rs.t.Registry, Layout: rs.t.Layout, Repository: rs.repo,
		Reference: ref.Raw, Tags: []string{tag}, Status: StatusNotScanned, Signatures: []*Signature{}}
	if s.o.State.finished(r.key()) {
		return
	}
	res := s.o.Batch.Verify(ctx, ref) // a skip statement fetches nothing
	r.Verification = verification(res, r)
	s.discovered.Add(1)
	s.finish(r)
}

func (rs *repoScan) markSeen(d digest.Digest) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.seen[d.String()] {
		return false
	}
	rs.seen[d.String()] = true
	return true
}

// schedule scans an artifact in a goroutine of its own, once per digest.
// raw is the manifest when already fetched (nil: fetched by digest); held
// is the release of a limiter slot the caller took for the artifact (nil:
// its goroutine takes one).
func (rs *repoScan) schedule(ctx context.Context, desc ocispec.Descriptor, raw []byte, tags []string, index, platform string, held func()) {
	if !rs.markSeen(desc.Digest) {
		if held != nil {
			held()
		}
		return
	}
	rs.s.discovered.Add(1)
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		rs.scanArtifact(ctx, desc, raw, tags, index, platform, held)
	}()
}

func (s *Scanner) finish(r *Record) {
	s.done.Add(1)
	s.records <- r
}

// fetcher reads for one artifact within its byte cap, the verification's
// reads of signatures included.
type fetcher struct {
	s     *Scanner
	ref   reference.Reference
	mu    sync.Mutex
	bytes int64
	// capErr is the first read the cap refused.
	capErr error
	// envelopes are the envelope sizes of the signatures fetched.
	envelopes map[digest.Digest]int64
}

func (f *fetcher) take(n int64, what string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n < 0 || f.bytes+n > f.s.o.MaxBytes {
		err := &ByteCapError{Cap: f.s.o.MaxBytes, What: what}
		if f.capErr == nil {
			f.capErr = err
		}
		return err
	}
	f.bytes += n
	return nil
}

// room reports whether the cap can still take n bytes.
func (f *fetcher) room(n int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes+n <= f.s.o.MaxBytes
}

// signature fetches a Notary Project signature (manifest and envelope)
// within the cap. The envelope's size is known only from the manifest: when
// the cap cannot take a manifest and an envelope of the largest size
// allowed, the manifest is read first and the envelope's declared size
// taken before it is fetched. A signature fetched before for the artifact
// is taken again at its known size, or not at all when it is small enough
// for the Store to keep (oci keeps envelopes up to 1 MiB).
func (f *fetcher) signature(ctx context.Context, a oci.Artifact, d ocispec.Descriptor) (*oci.Signature, error) {
	f.mu.Lock()
	size, seen := f.envelopes[d.Digest]
	roomy := f.bytes+d.Size+oci.MaxManifestSize+oci.MaxEnvelopeSize <= f.s.o.MaxBytes
	f.mu.Unlock()
	what := "signature " + d.Digest.String()
	switch {
	case seen && size <= 1<<20:
	case seen:
		if err := f.take(d.Size+size, what); err != nil {
			return nil, err
		}
	case roomy:
		if err := f.take(d.Size, what); err != nil {
			return nil, err
		}
	default:
		m, err := f.manifest(ctx, d)
		if err != nil {
			return nil, err
		}
		var envelope int64
		for _, l := range m.Layers {
			envelope += l.Size
		}
		if err := f.take(d.Size+envelope, "envelope of "+what); err != nil {
			return nil, err
		}
	}
	got, err := f.s.o.Store.Fetch(ctx, a, d)
	if err != nil {
		return nil, err
	}
	if !seen {
		f.mu.Lock()
		if roomy {
			f.bytes += int64(len(got.Envelope)) // room was left for it
		}
		if f.envelopes == nil {
			f.envelopes = map[digest.Digest]int64{}
		}
		f.envelopes[d.Digest] = int64(len(got.Envelope))
		f.mu.Unlock()
	}
	return got, nil
}

func (f *fetcher) manifest(ctx context.Context, desc ocispec.Descriptor) (*manifest, error) {
	if err := f.take(desc.Size, "manifest "+desc.Digest.String()); err != nil {
		return nil, err
	}
	raw, err := f.s.o.Store.FetchManifest(ctx, f.ref, desc)
	if err != nil {
		return nil, err
	}
	return decodeManifest(raw, desc)
}

// parse decodes a manifest fetched already (by tag), counting its bytes.
func (f *fetcher) parse(raw []byte, desc ocispec.Descriptor) (*manifest, error) {
	if err := f.take(int64(len(raw)), "manifest "+desc.Digest.String()); err != nil {
		return nil, err
	}
	return decodeManifest(raw, desc)
}

func decodeManifest(raw []byte, desc ocispec.Descriptor) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest %s is not JSON: %w", desc.Digest, err)
	}
	if m.MediaType == "" {
		m.MediaType = desc.MediaType
	}
	return &m, nil
}

func (f *fetcher) blob(ctx context.Context, d descriptor, limit int64) ([]byte, error) {
	desc, err := d.oci()
	if err != nil {
		return nil, err
	}
	if err := f.take(desc.Size, "blob "+desc.Digest.String()); err != nil {
		return nil, err
	}
	return f.s.o.Store.FetchBlob(ctx, f.ref, desc, limit)
}

func (d descriptor) oci() (ocispec.Descriptor, error) {
	dg, err := digest.Parse(d.Digest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("descriptor digest %q: %w", d.Digest, err)
	}
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: dg, Size: d.Size, ArtifactType: d.ArtifactType, Annotations: d.Annotations}, nil
}

// scanArtifact reads one artifact and emits its record.
func (rs *repoScan) scanArtifact(ctx context.Context, desc ocispec.Descriptor, raw []byte, tags []string, index, platform string, held func()) {
	s := rs.s
	if held != nil {
		defer held()
	}
	if tags == nil {
		tags = []string{}
	}
	ref, err := rs.ref("@" + desc.Digest.String())
	if err != nil {
		return
	}
	r := &Record{Version: RecordVersion, Kind: KindArtifact, Registry: rs.t.Registry, Layout: rs.t.Layout, Repository: rs.repo,
		Reference: ref.Raw, Digest: desc.Digest.String(), MediaType: desc.MediaType, Size: desc.Size, Tags: tags,
		Index: index, Platform: platform, Signatures: []*Signature{}, NotDeterminable: NotDeterminable}
	if prev := s.o.State.record(r.key()); prev != nil {
		// Finished by an earlier run (replayed already): only its
		// platform manifests may remain.
		rs.mu.Lock()
		rs.used[desc.Digest.String()] = true
		rs.mu.Unlock()
		for _, c := range prev.Children {
			if d, err := digest.Parse(c.Digest); err == nil {
				rs.schedule(ctx, ocispec.Descriptor{MediaType: c.MediaType, Digest: d, Size: c.Size}, nil, nil, desc.Digest.String(), c.Platform, nil)
			}
		}
		return
	}
	if held == nil {
		release, err := s.limiter.acquire(ctx, rs.host)
		if err != nil {
			return
		}
		defer release()
	}
	f := &fetcher{s: s, ref: ref}

	var m *manifest
	if raw != nil {
		m, err = f.parse(raw, desc)
	} else {
		m, err = f.manifest(ctx, desc)
	}
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		r.Status = StatusError
		r.Bytes = f.bytes
		s.finish(r)
		return
	}
	r.MediaType = m.MediaType
	r.ArtifactType = m.ArtifactType
	if r.ArtifactType == "" && m.Config.MediaType != "" && m.Config.MediaType != ocispec.MediaTypeImageConfig && m.Config.MediaType != "application/vnd.docker.container.image.v1+json" {
		r.ArtifactType = m.Config.MediaType
	}
	rs.created(ctx, f, r, m)
	if !s.keepAge(r.Created) {
		s.filtered.Add(1)
		s.discovered.Add(-1)
		return
	}
	if isIndex(m.MediaType) {
		for _, c := range m.Manifests {
			p := c.platform()
			if !keepPlatform(s.o.Platforms, p) {
				continue
			}
			cd, err := c.oci()
			if err != nil {
				r.Errors = append(r.Errors, err.Error())
				continue
			}
			r.Children = append(r.Children, Child{Digest: c.Digest, MediaType: c.MediaType, Size: c.Size, Platform: p})
			rs.schedule(ctx, ocispec.Descriptor{MediaType: cd.MediaType, Digest: cd.Digest, Size: cd.Size}, nil, nil, desc.Digest.String(), p, nil)
		}
	}
	a := oci.Artifact{Reference: ref, Descriptor: desc}
	referrers, complete := rs.referrers(ctx, f, r, a)
	rs.cosignTags(ctx, f, r, desc.Digest.String())
	if s.o.Batch != nil {
		res := s.batchFor(f, a, referrers, complete).Verify(ctx, ref)
		r.Verification = verification(res, r)
	}
	if f.capErr != nil {
		// Not read completely: what the cap kept out is unknown.
		r.Errors = append(r.Errors, f.capErr.Error())
	}
	r.Status = status(r)
	r.Bytes = f.bytes
	s.finish(r)
}

// keepPlatform reports whether platform (os/architecture[/variant]) is
// one of want: an entry without variant keeps every variant of its
// os/architecture (docker pull --platform linux/arm64 takes the
// linux/arm64/v8 manifest Docker's official images list), one with a
// variant only that variant. An empty want keeps every platform.
func keepPlatform(want []string, platform string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if w == platform || (strings.Count(w, "/") == 1 && strings.HasPrefix(platform, w+"/")) {
			return true
		}
	}
	return false
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// created finds an artifact's creation time.
func (rs *repoScan) created(ctx context.Context, f *fetcher, r *Record, m *manifest) {
	if v := m.Annotations[annCreated]; v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			r.Created, r.CreatedFrom = &t, "annotation"
			return
		}
	}
	if rs.s.o.MinAge == 0 && rs.s.o.MaxAge == 0 {
		return // the configuration is read only to filter
	}
	if m.Config.MediaType != ocispec.MediaTypeImageConfig && m.Config.MediaType != "application/vnd.docker.container.image.v1+json" {
		return
	}
	data, err := f.blob(ctx, m.Config, maxConfig)
	if err != nil {
		r.Findings = append(r.Findings, "image configuration not read for the creation time: "+err.Error())
		return
	}
	var c struct {
		Created *time.Time `json:"created"`
	}
	if json.Unmarshal(data, &c) == nil && c.Created != nil {
		r.Created, r.CreatedFrom = c.Created, "config"
	}
}

func (s *Scanner) keepAge(created *time.Time) bool {
	if created == nil {
		return true
	}
	age := s.o.Now.Sub(*created)
	if s.o.MinAge > 0 && age < s.o.MinAge {
		return false
	}
	if s.o.MaxAge > 0 && age > s.o.MaxAge {
		return false
	}
	return true
}

// referrers reads the artifact's referrers; it returns their descriptors
// and whether the list is complete.
func (rs *repoScan) referrers(ctx context.Context, f *fetcher, r *Record, a oci.Artifact) ([]ocispec.Descriptor, bool) {
	var list []ocispec.Descriptor
	// The listing's pages count against the artifact's cap as they are
	// read: a registry may serve 64 pages of 4 MiB.
	what := "the referrers listing of " + a.Descriptor.Digest.String()
	listCtx := oci.WithReadCounter(ctx, func(n int64) error { return f.take(n, what) })
	err := rs.s.o.Store.Referrers(listCtx, a, func(page []ocispec.Descriptor) error {
		for _, d := range page {
			if len(list) >= MaxReferrers {
				return fmt.Errorf("more than %d referrers: the rest are not read", MaxReferrers)
			}
			list = append(list, d)
		}
		return nil
	})
	if err != nil {
		r.Errors = append(r.Errors, "referrers: "+err.Error())
	}
	complete := err == nil
	source := SourceReferrers
	if rs.t.Layout != "" {
		source = SourceLayout
	}
	for _, d := range list {
		sig := rs.s.readReferrer(ctx, f, a, d, r.Digest)
		sig.Source = source
		r.Signatures = append(r.Signatures, sig)
	}
	return list, complete
}

// readReferrer classifies one referrer and reads its signer.
func (s *Scanner) readReferrer(ctx context.Context, f *fetcher, a oci.Artifact, d ocispec.Descriptor, subject string) *Signature {
	role, format := classifyReferrer(d.ArtifactType, d.Annotations)
	sig := &Signature{Role: role, Format: format, Manifest: d.Digest.String(), ArtifactType: d.ArtifactType,
		PredicateType: d.Annotations[annBundlePredicate], Identities: []*Identity{}}
	switch format {
	case FormatNotation:
		got, err := f.signature(ctx, a, d)
		if err != nil {
			sig.Findings = append(sig.Findings, err.Error())
			return sig
		}
		defer got.Release()
		sig.MediaType = got.MediaType
		id, err := notationIdentity(got.MediaType, got.Envelope, &s.chains)
		if err != nil {
			sig.Findings = append(sig.Findings, err.Error())
			return sig
		}
		sig.Identities = append(sig.Identities, id)
	case FormatSigstoreBundle, FormatSimpleSigning, FormatDSSE:
		m, err := f.manifest(ctx, d)
		if err != nil {
			sig.Findings = append(sig.Findings, err.Error())
			return sig
		}
		if m.Subject == nil || m.Subject.Digest != subject {
			// Anyone who can push can list a manifest in a tag-schema
			// index (shared/formats.md A2, trust caveat).
			sig.Findings = append(sig.Findings, "the manifest does not name the artifact as its subject")
			return sig
		}
		s.readLayers(ctx, f, sig, m, subject)
	case FormatSBOM:
		sig.MediaType = d.ArtifactType
	}
	return sig
}

// readLayers reads the layers of a cosign or Sigstore attachment manifest.
func (s *Scanner) readLayers(ctx context.Context, f *fetcher, sig *Signature, m *manifest, subject string) {
	layers := m.Layers
	if len(layers) > MaxLayers {
		sig.Findings = append(sig.Findings, fmt.Sprintf("%d layers: only the first %d are read", len(layers), MaxLayers))
		layers = layers[:MaxLayers]
	}
	for _, l := range layers {
		sig.MediaType = l.MediaType
		switch {
		case strings.HasPrefix(l.MediaType, mtBundlePrefix):
			data, err := f.blob(ctx, l, maxBundle)
			if err != nil {
				sig.Findings = append(sig.Findings, err.Error())
				continue
			}
			readBundle(sig, data, subject)
		case l.MediaType == mtSimpleSigning:
			data, err := f.blob(ctx, l, maxPayload)
			if err != nil {
				sig.Findings = append(sig.Findings, err.Error())
				continue
			}
			readSimpleSigning(sig, data, subject)
			id, notes := cosignLayerIdentity(l.Annotations)
			if id == nil || id.KeyHint != "" {
				if k := s.cosignKey(data, l.Annotations[annCosignSignature]); k != nil {
					// Verified: the signature is the key's, over a payload
					// that names the artifact.
					id, notes = k.identity(), nil
					sig.Verified = sig.SignedDigest == subject
					id.Verified = sig.Verified
				}
			}
			if id != nil {
				sig.Identities = append(sig.Identities, id)
			}
			sig.Findings = append(sig.Findings, notes...)
		case l.MediaType == mtDSSE:
			if p := l.Annotations[annPredicateType]; p != "" {
				sig.PredicateType = p
			} else if data, err := f.blob(ctx, l, maxPayload); err == nil {
				readDSSE(sig, data)
			}
			id, notes := cosignLayerIdentity(l.Annotations)
			if id != nil {
				sig.Identities = append(sig.Identities, id)
			}
			sig.Findings = append(sig.Findings, notes...)
		default:
			if sig.Role == RoleSBOM || isSBOMType(l.MediaType) {
				sig.Role, sig.Format = RoleSBOM, FormatSBOM
			}
		}
	}
	sig.Findings = slices.Compact(sig.Findings)
}

// cosignKey returns the first of the cosign keys whose signature sigB64 is.
func (s *Scanner) cosignKey(payload []byte, sigB64 string) *CosignKey {
	for _, k := range s.o.CosignKeys {
		if k.verify(payload, sigB64) {
			return k
		}
	}
	return nil
}

// cosignTags reads the cosign attachment tags of an artifact.
func (rs *repoScan) cosignTags(ctx context.Context, f *fetcher, r *Record, subject string) {
	rs.mu.Lock()
	tags := rs.attach[subject]
	rs.used[subject] = true
	rs.mu.Unlock()
	for _, suffix := range []string{"sig", "att", "sbom"} {
		tag, ok := tags[suffix]
		if !ok {
			continue
		}
		sigs, err := rs.readCosignTag(ctx, f, tag, suffix, subject)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("cosign tag %s: %v", tag, err))
		}
		r.Signatures = append(r.Signatures, sigs...)
	}
}

// readCosignTag reads a sha256-<hex>.sig, .att or .sbom manifest: one
// Signature per layer (cosign keeps each signature in a layer).
func (rs *repoScan) readCosignTag(ctx context.Context, f *fetcher, tag, suffix, subject string) ([]*Signature, error) {
	ref, err := rs.ref(":" + tag)
	if err != nil {
		return nil, err
	}
	a, m, err := rs.tagged(ctx, f, ref, tag)
	if err != nil {
		return nil, err
	}
	role, format := RoleSignature, FormatSimpleSigning
	switch suffix {
	case "att":
		role, format = RoleAttestation, FormatDSSE
	case "sbom":
		role, format = RoleSBOM, FormatSBOM
	}
	var out []*Signature
	layers := m.Layers
	if len(layers) > MaxLayers {
		layers = layers[:MaxLayers]
	}
	for _, l := range layers {
		sig := &Signature{Role: role, Format: format, Source: SourceCosignTag, Manifest: a.Descriptor.Digest.String(), Tag: tag, Identities: []*Identity{}}
		one := *m
		one.Layers = []descriptor{l}
		rs.s.readLayers(ctx, f, sig, &one, subject)
		if suffix == "sbom" {
			sig.MediaType = l.MediaType
		}
		out = append(out, sig)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("manifest %s has no layer", a.Descriptor.Digest)
	}
	return out, nil
}

// taggedFetcher is a Store that fetches a tag's manifest in one request
// (oci.Remote does).
type taggedFetcher interface {
	FetchTagged(ctx context.Context, ref reference.Reference, tag string) (ocispec.Descriptor, []byte, error)
}

// tagged reads the manifest a tag names: one GET where the Store can and
// the cap has room for the largest manifest (its size is known only once
// read), else resolution, the declared size taken, then fetch.
func (rs *repoScan) tagged(ctx context.Context, f *fetcher, ref reference.Reference, tag string) (oci.Artifact, *manifest, error) {
	if tf, ok := rs.s.o.Store.(taggedFetcher); ok && f.room(oci.MaxManifestSize) {
		desc, raw, err := tf.FetchTagged(ctx, ref, tag)
		if err != nil {
			return oci.Artifact{}, nil, err
		}
		if err := f.take(int64(len(raw)), "manifest of tag "+tag); err != nil {
			return oci.Artifact{}, nil, err
		}
		var m manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return oci.Artifact{}, nil, fmt.Errorf("manifest of tag %s is not JSON: %w", tag, err)
		}
		if m.MediaType == "" {
			m.MediaType = desc.MediaType
		}
		return oci.Artifact{Reference: ref, Descriptor: desc}, &m, nil
	}
	a, err := rs.s.o.Store.Resolve(ctx, ref)
	if err != nil {
		return oci.Artifact{}, nil, err
	}
	m, err := f.manifest(ctx, a.Descriptor)
	return a, m, err
}

// orphans reports the attachments whose subject is not in the repository.
// A subject settled (there, or gone and its orphans all recorded) is noted
// in the state file: a resumed run asks nothing about it again.
func (rs *repoScan) orphans(ctx context.Context) {
	for subject, tags := range rs.attach {
		if rs.used[subject] || rs.seen[subject] || rs.s.o.State.hasDigest(rs.repoKey(), subject) ||
			rs.s.o.State.orphanChecked(rs.t.Registry, rs.t.Layout, rs.repo, subject) {
			continue
		}
		d, err := digest.Parse(subject)
		if err != nil {
			continue
		}
		ref, err := rs.ref("@" + subject)
		if err != nil {
			continue
		}
		release, err := rs.s.limiter.acquire(ctx, rs.host)
		if err != nil {
			return
		}
		exists, err := rs.s.o.Store.Exists(ctx, ref, ocispec.Descriptor{Digest: d})
		release()
		if err != nil {
			continue
		}
		if exists {
			rs.settled(subject) // there, but not scanned (filtered): not an orphan
			continue
		}
		var (
			tagsWG sync.WaitGroup
			failed atomic.Bool
		)
		for suffix, tag := range tags {
			tagsWG.Add(1)
			go func() {
				defer tagsWG.Done()
				if !rs.orphan(ctx, ref, d, suffix, tag) {
					failed.Store(true)
				}
			}()
		}
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			tagsWG.Wait()
			if !failed.Load() {
				rs.settled(subject)
			}
		}()
	}
}

// settled notes in the state file that the orphan check of subject is
// done. It goes through the records' channel, after the orphan records of
// the subject: a run killed before they are written checks again.
func (rs *repoScan) settled(subject string) {
	if rs.s.o.State == nil {
		return
	}
	rs.s.records <- &Record{Version: RecordVersion, Kind: kindOrphanCheck, Registry: rs.t.Registry, Layout: rs.t.Layout,
		Repository: rs.repo, Subject: subject, Tags: []string{}, Signatures: []*Signature{}}
}

func (rs *repoScan) repoKey() string {
	if rs.t.Layout != "" {
		return rs.t.Layout
	}
	return rs.t.Registry + "/" + rs.repo
}

// orphan emits the records of one attachment tag whose subject is gone;
// it reports whether every one was read without error.
func (rs *repoScan) orphan(ctx context.Context, subjectRef reference.Reference, subject digest.Digest, suffix, tag string) bool {
	s := rs.s
	release, err := s.limiter.acquire(ctx, rs.host)
	if err != nil {
		return false
	}
	defer release()
	tagRef, err := rs.ref(":" + tag)
	if err != nil {
		return false
	}
	a, err := s.o.Store.Resolve(ctx, tagRef)
	if err != nil {
		return false
	}
	f := &fetcher{s: s, ref: tagRef}
	newRecord := func(manifest ocispec.Descriptor) *Record {
		ref, _ := rs.ref("@" + manifest.Digest.String())
		return &Record{Version: RecordVersion, Kind: KindOrphan, Registry: rs.t.Registry, Layout: rs.t.Layout, Repository: rs.repo,
			Reference: ref.Raw, Digest: manifest.Digest.String(), MediaType: manifest.MediaType, Size: manifest.Size,
			Tags: []string{}, Subject: subject.String(), Status: StatusOrphaned, Signatures: []*Signature{},
			Findings: []string{"orphaned: its subject " + subject.String() + " is not in the repository"}}
	}
	if suffix != "" {
		r := newRecord(a.Descriptor)
		r.Tags = []string{tag}
		if s.o.State.finished(r.key()) {
			return true
		}
		s.discovered.Add(1)
		sigs, err := rs.readCosignTag(ctx, f, tag, suffix, subject.String())
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
		r.Signatures = append(r.Signatures, sigs...)
		r.Bytes = f.bytes
		s.finish(r)
		return len(r.Errors) == 0
	}
	// A referrers tag-schema index: every manifest it lists.
	m, err := f.manifest(ctx, a.Descriptor)
	if err != nil {
		return false
	}
	parent := oci.Artifact{Reference: subjectRef, Descriptor: ocispec.Descriptor{Digest: subject}}
	for _, e := range m.Manifests {
		d, err := e.oci()
		if err != nil {
			continue
		}
		r := newRecord(d)
		if s.o.State.finished(r.key()) {
			continue
		}
		s.discovered.Add(1)
		rf := &fetcher{s: s, ref: tagRef}
		sig := s.readReferrer(ctx, rf, parent, d, subject.String())
		sig.Source = SourceReferrers
		r.Signatures = append(r.Signatures, sig)
		r.ArtifactType = d.ArtifactType
		r.Bytes = rf.bytes
		s.finish(r)
	}
	return true
}

// status sums up a record's signatures.
func status(r *Record) string {
	if len(r.Errors) > 0 {
		return StatusError
	}
	for _, s := range r.Signatures {
		if s.Role == RoleSignature {
			return StatusSigned
		}
	}
	return StatusUnsigned
}

// verification turns keyward verify's result into the record's verdict,
// and marks the identities of the signature that passed as verified.
func verification(res *verify.ReferenceResult, r *Record) *Verification {
	v := &Verification{Verified: res.Verified, Statement: res.Statement, Level: string(res.Level), Error: res.Error}
	switch {
	case res.Skipped:
		v.Verdict = VerdictSkipped
	case res.Verified:
		v.Verdict = VerdictVerified
	default:
		v.Verdict = VerdictFailed
		notation, cosign := false, false
		for _, s := range r.Signatures {
			if s.Role != RoleSignature {
				continue
			}
			if s.Format == FormatNotation {
				notation = true
			} else {
				cosign = true
			}
		}
		if cosign && !notation {
			v.Verdict = VerdictNotVerifiable
		}
	}
	authenticated := ""
	for _, s := range res.Signatures {
		if s.Passed {
			v.Signature = s.Signature
			if authentic(s) && authenticated == "" {
				authenticated = s.Signature
			}
		} else if v.FailedCheck == "" && s.FailedCheck != "" {
			v.FailedCheck = string(s.FailedCheck)
		}
	}
	if res.Verified {
		v.FailedCheck = ""
	}
	if v.FailedCheck == "" && !res.Verified && res.Error != nil {
		v.FailedCheck = string(res.Error.Kind)
	}
	// A signature that passed only because its level logs a failed
	// integrity or authenticity check (audit) names an unauthenticated
	// signer: it and its identity stay verified: false.
	for _, s := range r.Signatures {
		if authenticated != "" && s.Format == FormatNotation && s.Manifest == authenticated {
			s.Verified = true
			for _, id := range s.Identities {
				id.Verified = true
			}
		}
	}
	return v
}

// authentic reports whether a signature that passed had its integrity and
// authenticity checks pass (not fail with action log, as under level
// audit): only then is its signer authenticated.
func authentic(s *verify.Result) bool {
	for _, c := range []verify.CheckName{verify.CheckIntegrity, verify.CheckAuthenticity} {
		if cr := s.Check(c); cr == nil || cr.Outcome != verify.OutcomePassed {
			return false
		}
	}
	return true
}
