package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// Stall is how a StalledServer misbehaves.
type Stall int

const (
	// StallSilent accepts the connection, reads the request and never
	// answers.
	StallSilent Stall = iota
	// StallMidBody answers 200 with a Content-Length of BodyAnnounced,
	// sends BodySent zero bytes of it (or a given prefix), then stops
	// without closing.
	StallMidBody
)

// Sizes of a StallMidBody answer.
const (
	BodyAnnounced = 1 << 20
	BodySent      = 4096
)

// StalledServer starts a TCP server on 127.0.0.1 that misbehaves as s on
// every connection, and returns its address (HOST:PORT). Connections and
// listener are closed when the test ends.
func StalledServer(t testing.TB, s Stall) string {
	t.Helper()
	return StalledServerBody(t, s, make([]byte, BodySent))
}

// StalledServerBody is StalledServer whose StallMidBody answer begins with
// prefix (so that a client that parses as it reads waits for more).
func StalledServerBody(t testing.TB, s Stall, prefix []byte) string {
	t.Helper()
	return TCPServer(t, func(c net.Conn) { stall(c, s, prefix) })
}

func stall(c net.Conn, s Stall, prefix []byte) {
	if s == StallMidBody {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", BodyAnnounced)
		c.Write(prefix)
	}
	io.Copy(io.Discard, c) // until the client or the test closes it
}

// TCPServer starts a TCP server on 127.0.0.1 that runs serve on each
// connection it accepts (serve may never answer) and returns its address.
// The listener and every connection are closed with t.
func TCPServer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
