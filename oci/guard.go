package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on what one reference may cost a registry and keyward; SECURITY.md
// states them and oci's hostile-registry tests check them.
const (
	// DefaultRequestTimeout bounds one HTTP request: connection, headers
	// and the whole body.
	DefaultRequestTimeout = 30 * time.Second
	// MaxListingPages bounds the pages of one referrers listing.
	MaxListingPages = 64
	// DefaultMaxRequests bounds the HTTP requests made for one reference
	// (retries and authentication included) when the caller sets no
	// budget with [WithRequestBudget].
	DefaultMaxRequests = 1024
)

// ErrRequestBudget is wrapped by the error of a request made after the
// reference's budget of requests was spent.
var ErrRequestBudget = errors.New("too many registry requests for one reference")

// ErrPageLoop is wrapped by the error of a referrers listing whose next-page
// link points back to a page already read.
var ErrPageLoop = errors.New("referrers page links loop")

// ErrTooManyPages is wrapped by the error of a referrers listing longer than
// MaxListingPages pages, or of a catalog or tag listing longer than
// MaxCatalogPages.
var ErrTooManyPages = errors.New("too many referrers pages")

type budgetKey struct{}

// budget counts the requests of one reference.
type budget struct {
	left atomic.Int64
	max  int64
}

// WithRequestBudget returns a context under which at most n HTTP requests
// are made to registries (retries and token requests included); the
// request after the n-th fails with an error wrapping [ErrRequestBudget].
// A [Remote] used without one allows DefaultMaxRequests per call.
func WithRequestBudget(ctx context.Context, n int) context.Context {
	b := &budget{max: int64(n)}
	b.left.Store(int64(n))
	return context.WithValue(ctx, budgetKey{}, b)
}

func budgetOf(ctx context.Context) (*budget, bool) {
	b, ok := ctx.Value(budgetKey{}).(*budget)
	return b, ok
}

// ensureBudget gives ctx the default budget unless it has one.
func ensureBudget(ctx context.Context) context.Context {
	if _, ok := budgetOf(ctx); ok {
		return ctx
	}
	return WithRequestBudget(ctx, DefaultMaxRequests)
}

type readCounterKey struct{}

// WithReadCounter returns a context under which every response body read
// (a referrers listing's pages, the tag-schema index of its fallback) is
// counted: take is called with the size of each chunk as it is read, and
// its error ends the read with that error. keyward scan counts listings
// against its cap on bytes per artifact with it.
func WithReadCounter(ctx context.Context, take func(n int64) error) context.Context {
	return context.WithValue(ctx, readCounterKey{}, take)
}

// countedBody calls take with every chunk read.
type countedBody struct {
	io.ReadCloser
	take func(int64) error
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if terr := b.take(int64(n)); terr != nil {
			return 0, terr
		}
	}
	return n, err
}

type listingKey struct{}

// listing follows the pages of one listing (referrers, catalog or tags).
type listing struct {
	mu    sync.Mutex
	pages int
	max   int
	seen  map[string]bool // pages read (200 answers)
}

// withListing marks ctx as one referrers listing, whose pages the
// transport counts (at most MaxListingPages) and checks for loops.
func withListing(ctx context.Context) context.Context {
	return withListingMax(ctx, MaxListingPages)
}

// withListingMax marks ctx as one listing of at most max pages.
func withListingMax(ctx context.Context, max int) context.Context {
	return context.WithValue(ctx, listingKey{}, &listing{max: max, seen: map[string]bool{}})
}

// guardTransport bounds every request: a deadline that covers the whole
// body, the reference's request budget, and for referrers listings the
// number of pages and links that loop. It sits under the retry transport,
// so every attempt is bounded and counted.
type guardTransport struct {
	base    http.RoundTripper
	timeout time.Duration
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if b, ok := budgetOf(ctx); ok && b.left.Add(-1) < 0 {
		return nil, fmt.Errorf("%w: the budget of %d requests is spent (a registry that keeps redirecting, paging or failing)", ErrRequestBudget, b.max)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	resp, err := g.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && req.Context().Err() == nil {
			return nil, fmt.Errorf("no complete answer within %s: %w", g.timeout, err)
		}
		return nil, err
	}
	if l, ok := ctx.Value(listingKey{}).(*listing); ok && resp.StatusCode == http.StatusOK {
		if err := l.page(req.URL, resp.Header.Get("Link")); err != nil {
			resp.Body.Close()
			cancel()
			return nil, err
		}
	}
	resp.Body = &deadlineBody{ReadCloser: resp.Body, cancel: cancel, ctx: ctx, parent: req.Context(), timeout: g.timeout}
	if take, ok := ctx.Value(readCounterKey{}).(func(int64) error); ok {
		resp.Body = &countedBody{ReadCloser: resp.Body, take: take}
	}
	return resp, nil
}

// page records one page of a listing and refuses a listing that loops or
// runs too long.
func (l *listing) page(u *url.URL, link string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pages++
	if l.pages > l.max {
		return fmt.Errorf("%w: more than %d pages", ErrTooManyPages, l.max)
	}
	l.seen[canonical(u, nil)] = true
	if next := nextPage(u, link); next != "" && l.seen[next] {
		return fmt.Errorf("%w: the page %s links to %s, already read", ErrPageLoop, u.Redacted(), next)
	}
	return nil
}

// nextPage resolves the rel="next" target of a Link header against u.
func nextPage(u *url.URL, link string) string {
	if link == "" {
		return ""
	}
	start, end := -1, -1
	for i := 0; i < len(link); i++ {
		switch link[i] {
		case '<':
			start = i + 1
		case '>':
			end = i
			i = len(link)
		}
	}
	if start < 0 || end < start {
		return ""
	}
	next, err := u.Parse(link[start:end])
	if err != nil {
		return ""
	}
	return canonical(next, u)
}

// canonical renders u with its query sorted; a page-size parameter n that
// the client adds to every page (oras-go does for catalog and tag lists)
// is added from the page before when the link lacks it, so that a link
// back to a page read is recognised.
func canonical(u, before *url.URL) string {
	c := *u
	q := c.Query()
	if before != nil && q.Get("n") == "" {
		if n := before.Query().Get("n"); n != "" {
			q.Set("n", n)
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// deadlineBody keeps the request's deadline over the reading of the body
// and releases it on Close.
type deadlineBody struct {
	io.ReadCloser
	cancel  context.CancelFunc
	ctx     context.Context
	parent  context.Context
	timeout time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil && b.parent.Err() == nil {
		return n, fmt.Errorf("the body did not arrive within %s: %w", b.timeout, context.DeadlineExceeded)
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
