package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cairn-build/cairn/internal/nettimeout"
	"github.com/cairn-build/cairn/pkg/source"
	"github.com/cairn-build/cairn/pkg/source/debian"
	"github.com/cairn-build/cairn/pkg/stack"
	"github.com/cairn-build/cairn/pkg/store"
)

// defaultStackFile is where the stack definition is looked for, relative to
// the current directory.
const defaultStackFile = "toolchain/stack.toml"

// sourceFlags are the flags every command that needs the stack's sources
// shares: --stack, --store, --mirror, --git-mirror, --offline. Register them
// with addSourceFlags, then call load/openStore/fetcher.
type sourceFlags struct {
	stack      string
	store      string
	mirrors    []string
	gitMirrors []string
	offline    bool
	transports string
	verify     bool
	net        netFlags
}

// addSourceFlags registers the shared source flags on cmd.
func addSourceFlags(cmd *cobra.Command, sf *sourceFlags) {
	f := cmd.Flags()
	f.StringVar(&sf.stack, "stack", defaultStackFile, "stack definition `FILE`")
	f.StringVar(&sf.store, "store", "", "store `DIR` (default: the user cache directory's cairn/)")
	f.StringArrayVar(&sf.mirrors, "mirror", nil, "mirror `DIR` with archives by name or sha256/HEX and bare git repos under git/HOST/PATH (repeatable)")
	f.StringArrayVar(&sf.gitMirrors, "git-mirror", nil, "rewrite git URLs starting with FROM to start with TO, as `FROM=TO` (repeatable)")
	f.BoolVar(&sf.offline, "offline", false, "use only the store, mirrors and checked-out submodules")
	addNetFlags(cmd, &sf.net)
}

// netFlags are the network budgets of every command that may reach the
// network: --net-timeout and --stall-timeout.
type netFlags struct {
	net, stall time.Duration
}

// Bounds of the network budgets: anything shorter cannot connect anywhere,
// anything longer is a hang by another name.
const (
	minNetTimeout = time.Millisecond
	maxNetTimeout = time.Hour
)

func addNetFlags(cmd *cobra.Command, nf *netFlags) {
	f := cmd.Flags()
	f.DurationVar(&nf.net, "net-timeout", nettimeout.DefaultNet, "longest wait, `D`, to connect, to finish a TLS handshake, and for the first byte of an answer (each)")
	f.DurationVar(&nf.stall, "stall-timeout", nettimeout.DefaultStall, "longest pause, `D`, while a download or upload streams (apt-get takes the larger of the two)")
}

// timeouts checks the flags' range and returns them for the packages.
func (nf netFlags) timeouts() (nettimeout.Timeouts, error) {
	if err := durationRange("--net-timeout", nf.net, minNetTimeout, maxNetTimeout); err != nil {
		return nettimeout.Timeouts{}, err
	}
	if err := durationRange("--stall-timeout", nf.stall, minNetTimeout, maxNetTimeout); err != nil {
		return nettimeout.Timeouts{}, err
	}
	return nettimeout.Timeouts{Net: nf.net, Stall: nf.stall}, nil
}

// transport is the HTTP transport of the flags' budgets, with the proxy
// the environment names (read here, in cmd/).
func (nf netFlags) transport(base *http.Transport) (http.RoundTripper, error) {
	t, err := nf.timeouts()
	if err != nil {
		return nil, err
	}
	if base == nil {
		base = &http.Transport{ForceAttemptHTTP2: true, MaxIdleConns: 10}
	}
	base = base.Clone()
	base.Proxy = http.ProxyFromEnvironment
	return nettimeout.Transport(base, t), nil
}

// durationRange is a usage error naming flag unless min <= d <= max.
func durationRange(flag string, d, min, max time.Duration) error {
	if d < min || d > max {
		return withCode(exitUsage, fmt.Errorf("%s %s: want a duration from %s to %s", flag, d, min, max))
	}
	return nil
}

// intRange is a usage error naming flag unless min <= n <= max.
func intRange(flag string, n, min, max int) error {
	if n < min || n > max {
		return withCode(exitUsage, fmt.Errorf("%s %d: want %d to %d", flag, n, min, max))
	}
	return nil
}

// addTransportFlags registers --transports and --verify, for commands that fetch.
func addTransportFlags(cmd *cobra.Command, sf *sourceFlags) {
	f := cmd.Flags()
	f.StringVar(&sf.transports, "transports", "", "comma-separated transport order for every source (default: the stack's: "+strings.Join(stack.DefaultTransports, ",")+")")
	f.BoolVar(&sf.verify, "verify", false, "re-hash every stored object (trees; for build also outputs, the seed and image blobs) before using it")
}

// loadStack reads the stack named by --stack.
func (sf *sourceFlags) loadStack() (*stack.Stack, error) {
	st, err := stack.Load(sf.stack)
	if err != nil {
		var es stack.Errors
		if errors.As(err, &es) {
			return nil, withCode(exitUsage, err)
		}
		return nil, err
	}
	return st, nil
}

// storeDir resolves --store, defaulting to the user's cache directory.
func (sf *sourceFlags) storeDir() (string, error) {
	if sf.store != "" {
		return sf.store, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no --store given and no user cache directory: %w", err)
	}
	return filepath.Join(c, "cairn"), nil
}

// openStore opens the store named by --store (or the default).
func (sf *sourceFlags) openStore() (*store.Store, error) {
	dir, err := sf.storeDir()
	if err != nil {
		return nil, err
	}
	return store.Open(dir)
}

// fetcher builds a source.Fetcher from the flags, with progress drawn on
// stderr when it is a terminal.
func (sf *sourceFlags) fetcher(cmd *cobra.Command, s *store.Store) (*source.Fetcher, func(), error) {
	var rws []source.Rewrite
	for _, g := range sf.gitMirrors {
		rw, err := source.ParseRewrite(g)
		if err != nil {
			return nil, nil, withCode(exitUsage, err)
		}
		rws = append(rws, rw)
	}
	tm, err := sf.net.timeouts()
	if err != nil {
		return nil, nil, err
	}
	opts := []source.Option{
		source.WithMirrors(sf.mirrors...),
		source.WithGitRewrites(rws...),
		source.WithOffline(sf.offline),
		source.WithVerify(sf.verify),
		source.WithTimeouts(tm),
		source.WithProxy(http.ProxyFromEnvironment),
		source.WithDebian(debian.Config{Env: aptEnv(), Timeout: max(tm.Net, tm.Stall)}),
	}
	if sf.transports != "" {
		ts := strings.Split(sf.transports, ",")
		for _, t := range ts {
			if !isTransport(t) {
				return nil, nil, withCode(exitUsage, fmt.Errorf("--transports: unknown transport %q (known: %s)", t, strings.Join(stack.DefaultTransports, ", ")))
			}
		}
		opts = append(opts, source.WithTransports(ts))
	}
	done := func() {}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p := &progressLine{w: f}
		opts = append(opts, source.WithProgress(p.event))
		done = p.clear
	}
	return source.New(s, opts...), done, nil
}

func isTransport(t string) bool {
	for _, k := range stack.DefaultTransports {
		if t == k {
			return true
		}
	}
	return false
}

// aptEnv is the environment apt-get runs with: a fixed PATH and locale, and
// the machine's proxy settings, nothing else.
func aptEnv() []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// progressLine draws the latest progress event on one terminal line, at
// most ten times a second.
type progressLine struct {
	mu   sync.Mutex
	w    *os.File
	last time.Time
	drew bool
}

func (p *progressLine) event(e source.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && !(e.Total > 0 && e.Done == e.Total) {
		return
	}
	p.last = now
	line := fmt.Sprintf("%s: %s %s", e.Source, e.Transport, e.Phase)
	switch {
	case e.Total > 0:
		line += fmt.Sprintf(" %s / %s", mib(e.Done), mib(e.Total))
	case e.Done > 0:
		line += " " + mib(e.Done)
	}
	if len(line) > 78 {
		line = line[:78]
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.drew = true
}

func (p *progressLine) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drew {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drew = false
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// fetchSources fetches the named sources (all when empty) with the flags'
// settings; shared by fetch and by commands that need the sources first.
func (sf *sourceFlags) fetchSources(ctx context.Context, cmd *cobra.Command, st *stack.Stack, s *store.Store, names []string) ([]source.Result, error) {
	f, done, err := sf.fetcher(cmd, s)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		if _, err := source.Select(st, names); err != nil {
			return nil, withCode(exitUsage, err)
		}
	}
	res, err := f.FetchAll(ctx, st, names)
	done()
	return res, err
}
