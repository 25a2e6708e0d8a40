// Package source delivers a stack's pinned sources into the store, each
// through the first of its transports that can, and proves that what was
// delivered is the pinned content.
//
// A source's identity is its cairn tree digest (stack.Pin.Tree). Transports
// are only ways of getting bytes: the store (already there), mirror
// directories, a git submodule of the superproject, a git remote, release
// archive URLs and Debian's source archive. They are tried in the order the
// caller, the source or the stack gives; the first that delivers a tree with
// the pinned digest wins. A transport that delivers the wrong content is an
// error that names both digests, and the store keeps nothing of it: every
// tree is written into the store's tmp/ and renamed into place only once its
// digest matched (store.AddTree). Archives are checked by their sha256
// before anything is unpacked.
//
// A source with patches (stack.Patches) is delivered pristine as above, then
// patched into a copy whose digest must be Patches.Tree (see patches.go and
// docs/patches.md); Result is the patched tree.
//
// When every transport fails, the error lists each one's failure
// (*FetchError). Offline, only the store, mirrors and submodules that are
// already checked out (or populated from a mirror) may deliver; FetchAll
// goes on after a failure so that every missing source is named at once.
//
// Mirror directory layout (see docs/sources.md):
//
//	DIR/NAME               an archive by its file name: the URL's base name,
//	                       or Debian's NAME_UPSTREAM.orig.tar.{gz,bz2,xz}
//	DIR/NAME_VERSION.debian.tar.{xz,gz,bz2}
//	                       a Debian packaging tarball (VERSION without epoch)
//	DIR/sha256/HEX         an archive or packaging tarball by its sha256
//	DIR/git/HOST/PATH      a bare git repository for https://HOST/PATH
//	                       (with or without ".git")
//
// The package never prints: progress goes to the WithProgress callback.
package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/cairn-build/cairn/internal/nettimeout"
	"github.com/cairn-build/cairn/pkg/source/debian"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// ErrOffline marks a transport that offline mode does not allow.
var ErrOffline = errors.New("not allowed offline")

// ErrNotConfigured marks a transport the source gives nothing for (no git
// URL, no archive URL, ...).
var ErrNotConfigured = errors.New("not configured for this source")

// errNotHere is a transport that looked and did not find the source.
var errNotHere = errors.New("not found")

// ErrNotFound is errNotHere, for callers that test with errors.Is.
var ErrNotFound = errNotHere

// TransportError is one transport's failure for one source.
type TransportError struct {
	Source    string
	Transport string
	Err       error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("source %s: transport %s: %v", e.Source, e.Transport, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// FetchError is a source that no transport delivered, with every
// transport's failure.
type FetchError struct {
	Source   string
	Failures []*TransportError
}

func (e *FetchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s: no transport delivered it:", e.Source)
	for _, f := range e.Failures {
		fmt.Fprintf(&b, "\n  %s: %v", f.Transport, f.Err)
	}
	return b.String()
}

func (e *FetchError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f
	}
	return out
}

// Event reports progress. Total is 0 when unknown.
type Event struct {
	Source    string
	Transport string
	Phase     string // "download", "unpack", "fetch URL", "apt-get update", ...
	Done      int64
	Total     int64
}

// Result says which transport delivered a source and where it is.
type Result struct {
	Source    string
	Transport string
	Tree      string // the digest of the tree recipes see, "sha256:HEX": the patched tree if any
	Path      string // that tree in the store
	Pristine  string // the pristine tree's digest when Tree is patched, else ""
}

// Fetcher delivers sources into a store.
type Fetcher struct {
	store        *store.Store
	mirrors      []string
	gitRewrites  []Rewrite
	offline      bool
	transports   []string
	superproject string
	progress     func(Event)
	client       *http.Client
	timeouts     nettimeout.Timeouts
	proxy        func(*http.Request) (*url.URL, error)
	debian       debian.Config
	verify       bool
	maxDownload  int64
}

// DefaultMaxDownload bounds one archive download: the default stack's
// largest is 2.5 MB, so 1 GiB is generous and still stops a runaway server.
const DefaultMaxDownload = 1 << 30

// Option configures a Fetcher.
type Option func(*Fetcher)

// WithMirrors adds mirror directories, searched in order.
func WithMirrors(dirs ...string) Option {
	return func(f *Fetcher) { f.mirrors = append(f.mirrors, dirs...) }
}

// WithGitRewrites rewrites git URLs (FROM prefix to TO) before fetching.
func WithGitRewrites(rws ...Rewrite) Option {
	return func(f *Fetcher) { f.gitRewrites = append(f.gitRewrites, rws...) }
}

// WithOffline allows only the store, mirrors and checked-out submodules.
func WithOffline(offline bool) Option { return func(f *Fetcher) { f.offline = offline } }

// WithTransports overrides every source's and the stack's transport order.
func WithTransports(ts []string) Option { return func(f *Fetcher) { f.transports = ts } }

// WithSuperproject names the git working tree whose submodules the
// submodule transport reads (default: the stack's directory, searched
// upwards for .git).
func WithSuperproject(dir string) Option { return func(f *Fetcher) { f.superproject = dir } }

// WithProgress sets the callback that receives progress events. It is
// called from the fetching goroutine and must not block for long.
func WithProgress(fn func(Event)) Option { return func(f *Fetcher) { f.progress = fn } }

// WithHTTPClient sets the client for archive URLs and git remotes over
// HTTP, instead of the one made from WithTimeouts and WithProxy.
func WithHTTPClient(c *http.Client) Option { return func(f *Fetcher) { f.client = c } }

// WithTimeouts bounds every network exchange of the archive and git
// transports: connect, TLS handshake and first response byte each by t.Net,
// every pause of a streaming body by t.Stall. Zero fields take
// nettimeout's defaults; there is no unbounded setting.
func WithTimeouts(t nettimeout.Timeouts) Option { return func(f *Fetcher) { f.timeouts = t } }

// WithProxy sets how HTTP requests find their proxy (the CLI passes
// http.ProxyFromEnvironment); the default is none.
func WithProxy(p func(*http.Request) (*url.URL, error)) Option {
	return func(f *Fetcher) { f.proxy = p }
}

// WithDebian configures the Debian transport.
func WithDebian(c debian.Config) Option { return func(f *Fetcher) { f.debian = c } }

// WithVerify re-hashes a tree the store already holds before trusting it.
func WithVerify(v bool) Option { return func(f *Fetcher) { f.verify = v } }

// WithMaxDownload bounds the size of one downloaded archive.
func WithMaxDownload(n int64) Option { return func(f *Fetcher) { f.maxDownload = n } }

// New returns a Fetcher that delivers into st.
func New(st *store.Store, opts ...Option) *Fetcher {
	f := &Fetcher{store: st, maxDownload: DefaultMaxDownload}
	for _, o := range opts {
		o(f)
	}
	if f.client == nil {
		f.client = nettimeout.Client(&http.Transport{Proxy: f.proxy, ForceAttemptHTTP2: true, MaxIdleConns: 10}, f.timeouts)
	}
	return f
}

func (f *Fetcher) event(e Event) {
	if f.progress != nil {
		f.progress(e)
	}
}

// Order returns the transports tried for src: the Fetcher's override, else
// the source's own, else the stack's.
func (f *Fetcher) Order(st *stack.Stack, src stack.Source) []string {
	switch {
	case len(f.transports) > 0:
		return f.transports
	case len(src.Transports) > 0:
		return src.Transports
	case st != nil && len(st.Transports) > 0:
		return st.Transports
	}
	return stack.DefaultTransports
}

// FetchAll fetches the named sources of st (all when names is empty). It
// goes on past failures: the error joins one *FetchError per source that no
// transport delivered, in name order. Results are in name order.
func (f *Fetcher) FetchAll(ctx context.Context, st *stack.Stack, names []string) ([]Result, error) {
	srcs, err := Select(st, names)
	if err != nil {
		return nil, err
	}
	var out []Result
	var errs []error
	for _, src := range srcs {
		r, err := f.Fetch(ctx, st, src)
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// Select returns the named sources of st, sorted by name; all when names is
// empty. An unknown name is an error naming it and the stack file.
func Select(st *stack.Stack, names []string) ([]stack.Source, error) {
	if len(names) == 0 {
		return st.Sources, nil
	}
	var out []stack.Source
	var unknown []string
	seen := map[string]bool{}
	for _, n := range names {
		s := st.Source(n)
		if s == nil {
			unknown = append(unknown, n)
			continue
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, *s)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s: no source named %s", st.File, strings.Join(unknown, ", "))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Fetch delivers one source of st into the store. A source with patches
// is delivered pristine, then patched (see patched); Result is then the
// patched tree. A patch that does not apply, or a patched tree that is not
// its pin, is a *PatchError: no other transport would deliver other bytes.
func (f *Fetcher) Fetch(ctx context.Context, st *stack.Stack, src stack.Source) (Result, error) {
	fe := &FetchError{Source: src.Name}
	order := f.Order(st, src)
	if src.Patches != nil && slices.Contains(order, stack.TransportStore) {
		if p, ok := f.patchedFromStore(ctx, src); ok {
			// The SBOMs name each Debian patch by its bytes: the packaging
			// tarball must be here too (a repair may have removed it).
			if len(src.Patches.Series) > 0 {
				if _, err := f.DebianTar(ctx, st, src); err != nil {
					return Result{}, err
				}
			}
			return Result{Source: src.Name, Transport: stack.TransportStore, Tree: src.Patches.Tree, Path: p, Pristine: src.Pin.Tree}, nil
		}
	}
	for _, t := range order {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		p, err := f.try(ctx, st, src, t)
		if err == nil {
			if src.Patches == nil {
				return Result{Source: src.Name, Transport: t, Tree: src.Pin.Tree, Path: p}, nil
			}
			pp, err := f.patched(ctx, st, src, p)
			if err != nil {
				return Result{}, err
			}
			return Result{Source: src.Name, Transport: t, Tree: src.Patches.Tree, Path: pp, Pristine: src.Pin.Tree}, nil
		}
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		fe.Failures = append(fe.Failures, &TransportError{Source: src.Name, Transport: t, Err: err})
	}
	return Result{}, fe
}

func (f *Fetcher) try(ctx context.Context, st *stack.Stack, src stack.Source, t string) (string, error) {
	switch t {
	case stack.TransportStore:
		return f.fromStore(ctx, src)
	case stack.TransportMirror:
		return f.fromMirror(ctx, src)
	case stack.TransportSubmodule:
		return f.fromSubmodule(ctx, st, src)
	case stack.TransportGit:
		if src.Git == "" {
			return "", ErrNotConfigured
		}
		if f.offline {
			return "", ErrOffline
		}
		return f.fromGit(ctx, src, src.Git, f.gitCandidates(src.Git), false)
	case stack.TransportArchive:
		if len(src.Archives) == 0 {
			return "", ErrNotConfigured
		}
		if f.offline {
			return "", ErrOffline
		}
		return f.fromArchiveURLs(ctx, src)
	case stack.TransportDebian:
		if src.Debian == "" {
			return "", ErrNotConfigured
		}
		if f.offline {
			return "", ErrOffline
		}
		return f.fromDebian(ctx, src)
	}
	return "", fmt.Errorf("unknown transport %q", t)
}

func (f *Fetcher) fromStore(ctx context.Context, src stack.Source) (string, error) {
	p, ok := f.store.Tree(src.Pin.Tree)
	if !ok {
		return "", fmt.Errorf("tree %s: %w", src.Pin.Tree, errNotHere)
	}
	if f.verify {
		if err := f.store.VerifyTree(ctx, src.Pin.Tree); err != nil {
			var dm *store.DigestMismatchError
			if errors.As(err, &dm) {
				// A tampered entry is a miss: drop it so that the next
				// transport delivers the real content.
				f.store.RemoveTree(src.Pin.Tree)
			}
			return "", err
		}
	}
	return p, nil
}
