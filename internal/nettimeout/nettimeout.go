// Package nettimeout bounds every phase of an HTTP exchange, so that a
// server that accepts a connection and then says nothing cannot hang cairn.
//
// Two budgets, as the CLI's --net-timeout and --stall-timeout give them:
//
//   - Net: each of DNS and TCP connect, the TLS handshake, and the wait for
//     the first byte of the response after the request was sent.
//   - Stall: the longest pause while a body streams, either way: an
//     idle-read (and idle-write) deadline, reset by every chunk, never a
//     whole-transfer deadline, so that a large download at any steady speed
//     completes.
//
// Each phase is watched through net/http/httptrace on the request's own
// context; when a budget runs out the request's context is cancelled and
// the caller gets an *Error naming the host and the phase. The transport's
// own dial and TLS timeouts are kept as a backstop, at twice the budget,
// for the connection attempts that net/http lets outlive a request.
package nettimeout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"
)

// Defaults used when a Timeouts field is zero.
const (
	DefaultNet   = 30 * time.Second
	DefaultStall = 60 * time.Second
)

// Timeouts are the budgets of one HTTP exchange. A zero field takes its
// default: a client made here never waits without a bound.
type Timeouts struct {
	Net   time.Duration // connect, TLS handshake, first response byte: each
	Stall time.Duration // longest pause of a streaming body
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Net <= 0 {
		t.Net = DefaultNet
	}
	if t.Stall <= 0 {
		t.Stall = DefaultStall
	}
	return t
}

// Phases an Error names.
const (
	OpConnect = "connect"
	OpTLS     = "tls"
	OpHeader  = "header"
	OpRead    = "read"
	OpWrite   = "write"
)

// ErrTimeout matches every *Error with errors.Is.
var ErrTimeout = errors.New("network timeout")

// Error is a phase of an HTTP exchange that took longer than its budget.
type Error struct {
	Op    string        // OpConnect, OpTLS, OpHeader, OpRead or OpWrite
	Host  string        // host:port spoken to (the address dialled, for connect)
	URL   string        // the request's URL, without credentials
	After time.Duration // the budget that ran out
}

func (e *Error) Error() string {
	switch e.Op {
	case OpConnect:
		return fmt.Sprintf("connect to %s timed out after %s", e.Host, e.After)
	case OpTLS:
		return fmt.Sprintf("TLS handshake with %s timed out after %s", e.Host, e.After)
	case OpHeader:
		return fmt.Sprintf("no response from %s within %s of sending the request for %s", e.Host, e.After, e.URL)
	case OpWrite:
		return fmt.Sprintf("%s took no data for %s while receiving %s", e.Host, e.After, e.URL)
	}
	return fmt.Sprintf("no data from %s for %s while reading %s", e.Host, e.After, e.URL)
}

// Timeout reports true, as net.Error does for deadlines.
func (e *Error) Timeout() bool { return true }

// Is makes errors.Is(err, ErrTimeout) true.
func (e *Error) Is(target error) bool { return target == ErrTimeout }

// Transport returns base (cloned; nil: a transport with no proxy) wrapped
// so that every request is bounded by t. base's proxy setting is kept: the
// caller decides it, this package reads no environment.
func Transport(base *http.Transport, t Timeouts) http.RoundTripper {
	t = t.withDefaults()
	var tr *http.Transport
	if base == nil {
		tr = &http.Transport{ForceAttemptHTTP2: true, MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second}
	} else {
		tr = base.Clone()
	}
	tr.DialContext = (&net.Dialer{Timeout: 2 * t.Net, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 2 * t.Net
	tr.ResponseHeaderTimeout = 0 // ours, per request, names the host
	tr.ExpectContinueTimeout = time.Second
	return &transport{next: tr, t: t}
}

// Client returns an *http.Client over Transport(base, t).
func Client(base *http.Transport, t Timeouts) *http.Client {
	return &http.Client{Transport: Transport(base, t)}
}

type transport struct {
	next http.RoundTripper
	t    Timeouts
}

// Timeouts returns the budgets rt enforces, if rt was made here.
func TimeoutsOf(rt http.RoundTripper) (Timeouts, bool) {
	if tr, ok := rt.(*transport); ok {
		return tr.t, true
	}
	return Timeouts{}, false
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	w := &watch{cancel: cancel, host: hostPort(req.URL), url: redacted(req.URL)}
	trace := &httptrace.ClientTrace{
		DNSStart:             func(httptrace.DNSStartInfo) { w.arm(OpConnect, tr.t.Net) },
		ConnectStart:         func(_, addr string) { w.setDial(addr); w.arm(OpConnect, tr.t.Net) },
		TLSHandshakeStart:    func() { w.arm(OpTLS, tr.t.Net) },
		GotConn:              func(httptrace.GotConnInfo) { w.arm(OpWrite, tr.t.Stall) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { w.arm(OpHeader, tr.t.Net) },
		GotFirstResponseByte: func() { w.responded(); w.disarm() },
	}
	// Connecting starts now: waiting for a pooled connection or a proxy
	// counts against the connect budget too.
	w.arm(OpConnect, tr.t.Net)
	r2 := req.Clone(httptrace.WithClientTrace(ctx, trace))
	if req.Body != nil && req.Body != http.NoBody {
		r2.Body = &bodyWatch{ReadCloser: req.Body, w: w, op: OpWrite, d: tr.t.Stall, onRead: true}
	}
	resp, err := tr.next.RoundTrip(r2)
	if err != nil {
		w.disarm()
		cancel()
		if te := w.timedOut(); te != nil {
			return nil, te
		}
		return nil, err
	}
	w.disarm()
	resp.Body = &bodyWatch{ReadCloser: resp.Body, w: w, op: OpRead, d: tr.t.Stall}
	return resp, nil
}

// watch is the one timer of a request: each phase re-arms it with its own
// budget; when it fires, the request's context is cancelled.
type watch struct {
	mu     sync.Mutex
	timer  *time.Timer
	gen    int
	op     string
	after  time.Duration
	fired  *Error
	cancel context.CancelFunc
	host   string // the URL's host:port
	dial   string // the address being dialled (a proxy's, through one)
	url    string
	// answered: the response has begun; a request body still being read
	// (a server may answer early) no longer arms the write clock.
	answered bool
}

func (w *watch) setDial(addr string) {
	w.mu.Lock()
	w.dial = addr
	w.mu.Unlock()
}

func (w *watch) responded() {
	w.mu.Lock()
	w.answered = true
	w.mu.Unlock()
}

func (w *watch) arm(op string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired != nil || op == OpWrite && w.answered {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.gen++
	gen := w.gen
	w.op, w.after = op, d
	w.timer = time.AfterFunc(d, func() { w.fire(gen) })
}

func (w *watch) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.gen++
}

func (w *watch) fire(gen int) {
	w.mu.Lock()
	if gen != w.gen || w.fired != nil {
		w.mu.Unlock()
		return
	}
	host := w.host
	if w.op == OpConnect && w.dial != "" {
		host = w.dial
	}
	w.fired = &Error{Op: w.op, Host: host, URL: w.url, After: w.after}
	w.mu.Unlock()
	w.cancel()
}

func (w *watch) timedOut() *Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// bodyWatch bounds the pause between chunks of a body. For a response the
// clock runs only inside Read (time the caller spends elsewhere is not the
// server's); for a request body net/http reads the next chunk only once the
// previous one was written, so the clock runs between reads.
type bodyWatch struct {
	io.ReadCloser
	w      *watch
	op     string
	d      time.Duration
	onRead bool // request body: re-arm after each read, not during it
	once   sync.Once
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	if !b.onRead {
		b.w.arm(b.op, b.d)
	}
	n, err := b.ReadCloser.Read(p)
	if b.onRead {
		if err == nil {
			b.w.arm(b.op, b.d)
		}
	} else {
		b.w.disarm()
	}
	if err != nil && err != io.EOF {
		if te := b.w.timedOut(); te != nil {
			return n, te
		}
	}
	return n, err
}

func (b *bodyWatch) Close() error {
	err := b.ReadCloser.Close()
	if !b.onRead {
		b.once.Do(func() {
			b.w.disarm()
			b.w.cancel()
		})
	}
	return err
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	switch u.Scheme {
	case "https":
		return net.JoinHostPort(u.Hostname(), "443")
	case "http":
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return u.Host
}

func redacted(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// WithTransport returns ctx carrying rt, for code that makes its requests
// through a client it cannot be handed (go-git's, installed process-wide):
// ContextTransport finds rt there.
func WithTransport(ctx context.Context, rt http.RoundTripper) context.Context {
	return context.WithValue(ctx, transportKey{}, rt)
}

type transportKey struct{}

// ContextTransport is a RoundTripper that sends each request through the
// transport its context carries (WithTransport), or through a transport
// with default timeouts and no proxy.
type ContextTransport struct{}

var defaultTransport = sync.OnceValue(func() http.RoundTripper { return Transport(nil, Timeouts{}) })

func (ContextTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt, ok := req.Context().Value(transportKey{}).(http.RoundTripper); ok && rt != nil {
		return rt.RoundTrip(req)
	}
	return defaultTransport().RoundTrip(req)
}
