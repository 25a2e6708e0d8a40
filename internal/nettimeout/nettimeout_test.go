package nettimeout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-build/cairn/internal/testenv"
)

// stalled starts a TCP server on 127.0.0.1 that accepts connections and
// then runs serve on each (which may never answer). It is closed with t.
func stalled(t *testing.T, serve func(net.Conn)) string { return testenv.TCPServer(t, serve) }

// silent reads the request and never answers.
func silent(c net.Conn) { io.Copy(io.Discard, c) }

// headersThenStall answers with headers and part of a body, then stops.
func headersThenStall(c net.Conn) {
	br := bufio.NewReader(c)
	if _, err := http.ReadRequest(br); err != nil {
		return
	}
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
	c.Write(make([]byte, 4096))
	io.Copy(io.Discard, c)
}

func TestTimeouts(t *testing.T) {
	tm := Timeouts{Net: 300 * time.Millisecond, Stall: 300 * time.Millisecond}
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		https bool
		op    string
		want  string
	}{
		{"header", silent, false, OpHeader, "no response from 127.0.0.1:"},
		{"tls", silent, true, OpTLS, "TLS handshake with 127.0.0.1:"},
		{"stall", headersThenStall, false, OpRead, "no data from 127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := stalled(t, tc.serve)
			scheme := "http"
			if tc.https {
				scheme = "https"
			}
			u := scheme + "://" + addr + "/file.tar.gz"
			c := Client(nil, tm)
			start := time.Now()
			err := get(c, u)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s, want it bounded by the %s budget", took, tm.Net)
			}
			var te *Error
			if !errors.As(err, &te) || te.Op != tc.op {
				t.Fatalf("err = %v, want a %s timeout", err, tc.op)
			}
			if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), tc.want+strings.Split(addr, ":")[1]) || !strings.Contains(err.Error(), "300ms") {
				t.Errorf("err = %q, want it to contain %q and the port and 300ms", err, tc.want)
			}
		})
	}
}

func get(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// fullBacklog returns the address of a listening socket whose accept
// queue is full: Linux drops further SYNs, so a connect to it hangs.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("%s: accept queue never filled", addr)
	return ""
}

func TestConnectTimeout(t *testing.T) {
	addr := fullBacklog(t)
	tm := Timeouts{Net: 300 * time.Millisecond, Stall: time.Second}
	err := get(Client(nil, tm), "http://"+addr+"/x")
	var te *Error
	if !errors.As(err, &te) || te.Op != OpConnect {
		t.Fatalf("err = %v, want a connect timeout", err)
	}
	if want := "connect to " + addr + " timed out after 300ms"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to contain %q", err, want)
	}
}

// A slow but steady body is not a stall: the budget is per pause.
func TestSlowBodyIsNotAStall(t *testing.T) {
	addr := stalled(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
		for i := 0; i < 10; i++ {
			time.Sleep(100 * time.Millisecond)
			c.Write([]byte("x"))
		}
	})
	tm := Timeouts{Net: time.Second, Stall: 400 * time.Millisecond}
	if err := get(Client(nil, tm), "http://"+addr+"/slow"); err != nil {
		t.Fatalf("a body that pauses 100ms at a time over 1s failed with a 400ms stall budget: %v", err)
	}
}

// A request through ContextTransport takes the transport its context carries.
func TestContextTransport(t *testing.T) {
	addr := stalled(t, silent)
	ctx := WithTransport(context.Background(), Transport(nil, Timeouts{Net: 200 * time.Millisecond}))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/info/refs", nil)
	_, err := (&http.Client{Transport: ContextTransport{}}).Do(req)
	var te *Error
	if !errors.As(err, &te) || te.After != 200*time.Millisecond {
		t.Fatalf("err = %v, want the context's 200ms header timeout", err)
	}
}
