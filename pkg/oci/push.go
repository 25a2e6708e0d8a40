package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cairn-build/cairn/internal/nettimeout"
)

// PushOption adjusts Push.
type PushOption func(*pushOptions)

type pushOptions struct {
	keychain  authn.Keychain
	insecure  bool
	transport http.RoundTripper
	progress  chan<- v1.Update
}

// WithKeychain sets where credentials come from (the CLI passes one reading
// the docker config file). The default is anonymous.
func WithKeychain(k authn.Keychain) PushOption { return func(o *pushOptions) { o.keychain = k } }

// WithInsecure allows plain HTTP to any registry, not only loopback ones.
func WithInsecure() PushOption { return func(o *pushOptions) { o.insecure = true } }

// WithTransport sets the HTTP transport under the scheme guard. The default
// is remote.DefaultTransport without a proxy, bounded by nettimeout's
// default budgets: proxy settings come from the environment, which the CLI
// reads, not this package; a caller's transport brings its own timeouts
// (nettimeout.Transport).
func WithTransport(t http.RoundTripper) PushOption {
	return func(o *pushOptions) { o.transport = t }
}

// WithProgress sends upload progress to ch; Push closes it, on every return.
func WithProgress(ch chan<- v1.Update) PushOption { return func(o *pushOptions) { o.progress = ch } }

// ErrPlainHTTP refuses plain HTTP to a registry that is not on a loopback
// address, unless WithInsecure.
var ErrPlainHTTP = errors.New("plain HTTP to a non-loopback registry (use --insecure to allow)")

// Push uploads the one image of the OCI layout at dir to ref and returns the
// manifest digest the registry stored, which is the layout's own: the
// manifest is sent as the bytes the layout holds. Loopback registries
// (127.0.0.0/8, ::1, localhost) are spoken to over plain HTTP, others over
// TLS only.
func Push(ctx context.Context, dir, ref string, opts ...PushOption) (string, error) {
	o := pushOptions{keychain: authn.NewMultiKeychain(), transport: noProxyTransport()}
	for _, f := range opts {
		f(&o)
	}
	if o.progress != nil {
		// remote.Write closes the channel once it runs; before that, Push does.
		handed := false
		defer func() {
			if !handed {
				close(o.progress)
			}
		}()
		return pushWith(ctx, dir, ref, o, &handed)
	}
	return pushWith(ctx, dir, ref, o, new(bool))
}

func pushWith(ctx context.Context, dir, ref string, o pushOptions, handed *bool) (string, error) {
	nameOpts := []name.Option{name.StrictValidation}
	r, err := name.ParseReference(ref, nameOptsFor(ref, o.insecure, nameOpts)...)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	img, local, err := layoutImage(dir)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", dir, err)
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithTransport(schemeGuard{next: o.transport, insecure: o.insecure}),
	}
	if o.progress != nil {
		ropts = append(ropts, remote.WithProgress(o.progress))
	}
	*handed = true
	if err := remote.Write(r, img, ropts...); err != nil {
		return "", fmt.Errorf("push %s to %s: %w", dir, ref, err)
	}
	// Ask the registry what it stored under the reference.
	desc, err := remote.Head(r, ropts[:3]...)
	if err != nil {
		return "", fmt.Errorf("push %s: check %s: %w", dir, ref, err)
	}
	if desc.Digest != local {
		return "", fmt.Errorf("push %s: registry has %s under %s, the layout %s", dir, desc.Digest, ref, local)
	}
	return local.String(), nil
}

// nameOptsFor marks the registry insecure (plain HTTP allowed) for loopback
// hosts or when asked; go-containerregistry also tries plain HTTP for
// private addresses, which schemeGuard then refuses.
func nameOptsFor(ref string, insecure bool, opts []name.Option) []name.Option {
	host := ref
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		host = ref[:i]
	}
	if insecure || isLoopback(host) {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// layoutImage opens the single image of an OCI layout and its digest.
func layoutImage(dir string) (v1.Image, v1.Hash, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if len(im.Manifests) != 1 {
		return nil, v1.Hash{}, fmt.Errorf("index.json lists %d manifests, want 1", len(im.Manifests))
	}
	h := im.Manifests[0].Digest
	img, err := idx.Image(h)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return img, h, nil
}

// isLoopback reports whether a registry host[:port] is a loopback address.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// schemeGuard refuses plain-HTTP requests to non-loopback hosts.
type schemeGuard struct {
	next     http.RoundTripper
	insecure bool
}

func (g schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !g.insecure && !isLoopback(req.URL.Host) {
		return nil, fmt.Errorf("%s: %w", req.URL.Host, ErrPlainHTTP)
	}
	return g.next.RoundTrip(req)
}

// noProxyTransport is the default: no proxy, and nettimeout's default
// budgets, so that a registry that stops answering cannot hang a push.
func noProxyTransport() http.RoundTripper {
	var base *http.Transport
	if t, ok := remote.DefaultTransport.(*http.Transport); ok {
		base = t.Clone()
		base.Proxy = nil
	}
	return nettimeout.Transport(base, nettimeout.Timeouts{})
}
