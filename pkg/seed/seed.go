// Package seed builds cairn's stage 0: a build-time root made of Debian
// packages that is a pure function of a lock file.
//
// The lock (toolchain/seed.lock, written by scripts/lock-seed.sh; the
// format is in docs/seed.md) pins every .deb by name, version,
// architecture, size and sha256, with the archive's pool file name, and
// declares the few symbolic links that maintainer scripts would have made
// (update-alternatives' awk, cc, ...). No maintainer script ever runs.
//
// Build fetches each .deb from, in order: the cache directory (verified
// .debs kept by sha256, so a second build downloads nothing), the mirror
// directories (by pool path, pool file name, apt-get download's file name
// or sha256), and last the archive through `apt-get download NAME=VERSION`
// under a private apt state whose sources are copied from the machine's
// apt configuration. Every .deb is verified against the lock before use;
// a mismatch is a *DigestMismatchError naming both digests, and the bytes
// are not kept. A package the archive no longer serves is a
// *NotServedError that names scripts/lock-seed.sh as the fix; with apt off,
// packages the cache and mirrors lack are one *MissingError.
//
// Each .deb is read by pkg/deb (its own ar reader; data.tar.xz through
// github.com/ulikunitz/xz) and its data unpacked by the hardened pkg/archive
// into one merged-/usr tree: bin, lib, lib64 and sbin are links into usr/,
// and a package's bin/x lands as usr/bin/x. Packages are unpacked in lock
// order (sorted by name), then the lock's links are made, so the tree is
// the same whatever the host, the umask or the order of downloads.
//
// The seed's identity is the tree digest of the result (pkg/digest), not
// the digests of the .debs: two locks that unpack to the same files are the
// same seed. The tree is written beside dest under a temporary name and
// renamed into place only when complete; on any failure nothing is left.
package seed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// EventKind says what an Event reports.
type EventKind string

const (
	EventFetched  EventKind = "fetched"  // a .deb is verified and ready; Source says from where
	EventUnpacked EventKind = "unpacked" // a .deb's data is in the tree; Bytes its uncompressed tar size
	EventLinked   EventKind = "linked"   // a lock link is made; Package is its path
	EventDigested EventKind = "digested" // the tree is hashed; Source is the digest
)

// Event is progress reported by Build through WithProgress. The library
// never prints; the CLI renders these.
type Event struct {
	Kind    EventKind
	Package string // NAME=VERSION, or the link's path
	Source  string // "cache", a mirror file, "apt"; or the digest
	Bytes   int64
}

// Option configures Build and Fetch.
type Option func(*options)

type options struct {
	cache    string
	mirrors  []string
	aptEtc   string
	apt      bool
	jobs     int
	progress func(Event)
	// aptTimeout is apt's Acquire::http(s)::Timeout: the connect and every
	// wait for data.
	aptTimeout time.Duration
}

func defaults() options {
	return options{aptEtc: "/etc/apt", apt: true, jobs: runtime.NumCPU(), progress: func(Event) {}, aptTimeout: DefaultAptTimeout}
}

// WithCache keeps verified .debs in dir (by sha256) and takes them from
// there first.
func WithCache(dir string) Option { return func(o *options) { o.cache = dir } }

// WithMirror adds a directory searched for .debs, after the cache and
// before apt, in the order given.
func WithMirror(dir string) Option { return func(o *options) { o.mirrors = append(o.mirrors, dir) } }

// WithAptConfig sets the apt configuration directory whose sources the
// private apt state copies (default /etc/apt).
func WithAptConfig(dir string) Option { return func(o *options) { o.aptEtc = dir } }

// DefaultAptTimeout bounds apt's connect and every wait for data (apt's
// own default is 120 s).
const DefaultAptTimeout = 60 * time.Second

// WithAptTimeout sets apt's connect and data timeout (rounded up to whole
// seconds; 0 or less keeps DefaultAptTimeout).
func WithAptTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.aptTimeout = d
		}
	}
}

// WithoutApt never asks the archive: offline farms fetch from mirrors and
// the cache only.
func WithoutApt() Option { return func(o *options) { o.apt = false } }

// WithJobs bounds how many .debs are verified or decompressed at once.
func WithJobs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.jobs = n
		}
	}
}

// WithProgress receives Build's events. It may be called from several
// goroutines, one call at a time.
func WithProgress(f func(Event)) Option {
	return func(o *options) {
		var mu sync.Mutex
		o.progress = func(e Event) { mu.Lock(); defer mu.Unlock(); f(e) }
	}
}

// Fetch makes every .deb of lock available, verified, as
// sha256/XX/HEX.deb under the cache (WithCache) or, without one, under dir,
// and returns each package's file by package name.
func Fetch(ctx context.Context, lock *Lock, dir string, opts ...Option) (map[string]string, error) {
	o := defaults()
	for _, f := range opts {
		f(&o)
	}
	return fetchAll(ctx, lock, dir, &o)
}

func fetchAll(ctx context.Context, lock *Lock, dir string, o *options) (map[string]string, error) {
	store := o.cache
	if store == "" {
		store = dir
	}
	if store == "" {
		return nil, errors.New("fetch: neither a cache nor a directory to fetch into")
	}
	dst := func(p Package) string { return cachePath(store, p) }

	files := make(map[string]string, len(lock.Packages))
	var mu sync.Mutex
	var missing []Package
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for _, p := range lock.Packages {
		g.Go(func() error {
			file := dst(p)
			if _, err := os.Stat(file); err == nil {
				// Read back and checked: a cache entry is trusted only
				// as far as its bytes hash to the lock.
				if err := verifyFile(p, file); err == nil {
					mu.Lock()
					files[p.Name] = file
					mu.Unlock()
					o.progress(Event{Kind: EventFetched, Package: p.id(), Source: "cache", Bytes: p.Size})
					return nil
				}
				if err := os.Remove(file); err != nil {
					return err
				}
			}
			src, found, err := fromMirror(gctx, o.mirrors, p, file)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if !found {
				missing = append(missing, p)
				return nil
			}
			files[p.Name] = file
			o.progress(Event{Kind: EventFetched, Package: p.id(), Source: src, Bytes: p.Size})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		return files, nil
	}
	tried := []string{}
	if o.cache != "" {
		tried = append(tried, "cache "+o.cache)
	}
	for _, m := range o.mirrors {
		tried = append(tried, "mirror "+m)
	}
	if !o.apt {
		e := &MissingError{Tried: tried}
		for _, p := range sortedByName(missing) {
			e.Packages = append(e.Packages, p.id())
		}
		return nil, e
	}
	if err := fromApt(ctx, o, sortedByName(missing), store, tried, dst, files); err != nil {
		return nil, err
	}
	return files, nil
}

func fromApt(ctx context.Context, o *options, missing []Package, store string, tried []string, dst func(Package) string, files map[string]string) error {
	if err := os.MkdirAll(store, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(store, ".apt-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	arch := missing[0].Arch
	for _, p := range missing {
		if p.Arch != "all" {
			arch = p.Arch
			break
		}
	}
	apt, err := newPrivateApt(o.aptEtc, filepath.Join(work, "apt"), arch, o.aptTimeout)
	if err != nil {
		return err
	}
	dl := filepath.Join(work, "debs")
	if err := os.Mkdir(dl, 0o755); err != nil {
		return err
	}
	failed, err := apt.download(ctx, dl, missing)
	if err != nil {
		return fmt.Errorf("fetch from the archive through apt: %w", err)
	}
	var errs []error
	for _, p := range missing {
		if e, bad := failed[p.Name]; bad {
			errs = append(errs, &NotServedError{Package: p.id(), Tried: append(tried, "apt"), Err: e})
			continue
		}
		got := filepath.Join(dl, p.aptFileName())
		f, err := os.Open(got)
		if err != nil {
			errs = append(errs, &NotServedError{Package: p.id(), Tried: append(tried, "apt"), Err: err})
			continue
		}
		err = copyVerified(ctx, p, "apt", f, dst(p))
		f.Close()
		os.Remove(got)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files[p.Name] = dst(p)
		o.progress(Event{Kind: EventFetched, Package: p.id(), Source: "apt", Bytes: p.Size})
	}
	return errors.Join(errs...)
}

func sortedByName(ps []Package) []Package {
	out := append([]Package(nil), ps...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Name < out[j-1].Name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
