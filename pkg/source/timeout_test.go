package source

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/nettimeout"
	"github.com/cairn-build/cairn/internal/testenv"
)

// TestNetworkStall fetches from servers on 127.0.0.1 that accept the
// connection and then stall, through the archive transport and through
// go-git's HTTP transport: each fetch fails with a timeout naming the host,
// well before a generous bound, and leaves nothing in the store.
func TestNetworkStall(t *testing.T) {
	fx := newFixture(t, "stall")
	tm := nettimeout.Timeouts{Net: 500 * time.Millisecond, Stall: 500 * time.Millisecond}
	tests := []struct {
		name   string
		stall  testenv.Stall
		prefix string // of a stalled body
		toml   func(addr string) string
		op     string
		want   string
	}{
		{"archive: no answer", testenv.StallSilent, "",
			func(a string) string {
				return `archives = ["http://` + a + `/fixture-1.0.tar.gz"]` + "\ntransports = [\"archive\"]"
			},
			nettimeout.OpHeader, "no response from "},
		{"archive: stall mid-body", testenv.StallMidBody, "",
			func(a string) string {
				return `archives = ["http://` + a + `/fixture-1.0.tar.gz"]` + "\ntransports = [\"archive\"]"
			},
			nettimeout.OpRead, "no data from "},
		{"git over http: no answer", testenv.StallSilent, "",
			func(a string) string {
				return `git = "http://` + a + `/fx.git"` + "\ngit_commit = \"" + strings.Repeat("a", 40) + "\"\ntransports = [\"git\"]"
			},
			nettimeout.OpHeader, "no response from "},
		{"git over http: stall mid-body", testenv.StallMidBody, "001e# service=git-upload-pack\n0000",
			func(a string) string {
				return `git = "http://` + a + `/fx.git"` + "\ngit_commit = \"" + strings.Repeat("a", 40) + "\"\ntransports = [\"git\"]"
			},
			nettimeout.OpRead, "no data from "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr string
			if tt.prefix != "" {
				addr = testenv.StalledServerBody(t, tt.stall, []byte(tt.prefix))
			} else {
				addr = testenv.StalledServer(t, tt.stall)
			}
			st := stackOf(t, t.TempDir(), sourceTOML("fx", fx, tt.toml(addr)))
			s := openStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := New(s, WithTimeouts(tm)).FetchAll(ctx, st, nil)
			if ctx.Err() != nil {
				t.Fatalf("still waiting after 60s: the %s budget was not applied", tm.Net)
			}
			var te *nettimeout.Error
			if !errors.As(err, &te) || te.Op != tt.op {
				t.Fatalf("err = %v, want a %s timeout", err, tt.op)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want+addr) || !strings.Contains(msg, "500ms") {
				t.Errorf("err = %q, want it to contain %q and the budget 500ms", msg, tt.want+addr)
			}
			if tt.stall == testenv.StallMidBody && strings.HasPrefix(tt.name, "archive") {
				var short *ShortDownloadError
				if !errors.As(err, &short) || !strings.Contains(err.Error(), "/fixture-1.0.tar.gz") {
					t.Errorf("err = %v, want a *ShortDownloadError naming the URL", err)
				}
			}
			if got := storeEntries(t, s); len(got) != 0 {
				t.Errorf("store after a stalled fetch: got %v, want nothing", got)
			}
		})
	}
}
