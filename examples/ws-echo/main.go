// Command ws-echo runs a getty WebSocket echo server on the path /echo and a
// getty WebSocket client in one process, twice: once with raw messages and
// once with per-message deflate turned on at both ends with
// SetCompressType(getty.CompressBestSpeed). The client reaches the server
// through a small TCP relay that counts the bytes on the wire, so the
// effect of compression shows in numbers.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	getty "github.com/getty-go/getty"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ws-echo:", err)
		os.Exit(1)
	}
}

// printer serialises lines written from several goroutines.
type printer struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
}

// messages is the codec: a WebSocket Reader gets one whole message per call,
// so a package is simply the message's bytes (copied: buf is reused).
var messages = getty.NewReadWriter(
	getty.ReaderFunc(func(_ getty.Session, buf []byte) (any, int, error) {
		return bytes.Clone(buf), len(buf), nil
	}),
	getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) {
		switch p := pkg.(type) {
		case []byte:
			return p, nil
		case string:
			return []byte(p), nil
		}
		return nil, fmt.Errorf("ws-echo: cannot write %T", pkg)
	}),
)

type echoServer struct {
	getty.BaseListener
	p *printer
}

func (h echoServer) OnOpen(s getty.Session) error {
	h.p.printf("  server: session %d open from %s", s.ID(), s.RemoteAddr())
	return nil
}

func (h echoServer) OnMessage(s getty.Session, pkg any) {
	if _, _, err := s.WritePkg(pkg, time.Second); err != nil {
		h.p.printf("  server: reply failed: %v", err)
	}
}

type echoClient struct {
	getty.BaseListener
	replies chan []byte
}

func (h echoClient) OnMessage(_ getty.Session, pkg any) { h.replies <- pkg.([]byte) }

func run(ctx context.Context, out io.Writer) error {
	p := &printer{out: out}
	// A text that compresses well, as JSON or logs do.
	msg := []byte(strings.Repeat(`{"event":"tick","source":"getty"} `, 30))
	const count = 5

	var wire [2]struct{ up, down int64 }
	for i, c := range []struct {
		name     string
		compress getty.CompressType
	}{
		{"CompressNone", getty.CompressNone},
		{"CompressBestSpeed", getty.CompressBestSpeed},
	} {
		p.printf("round %d: SetCompressType(getty.%s) at both ends", i+1, c.name)
		up, down, err := round(ctx, p, c.compress, msg, count)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		wire[i].up, wire[i].down = up, down
		p.printf("  wire: %d bytes client->server, %d bytes server->client (HTTP upgrade included)", up, down)
	}
	p.printf("per-message deflate: %.0f%% of the raw bytes upstream, %.0f%% downstream",
		100*float64(wire[1].up)/float64(wire[0].up), 100*float64(wire[1].down)/float64(wire[0].down))
	return nil
}

// round runs a server, a metering relay and a client with the given
// compression, echoes count copies of msg, and returns the bytes the relay
// carried each way.
func round(ctx context.Context, p *printer, compress getty.CompressType, msg []byte, count int) (up, down int64, err error) {
	server := getty.NewWSServer(
		getty.WithLocalAddress("127.0.0.1:0"),
		getty.WithWebsocketServerPath("/echo"),
	)
	defer server.Close() // a no-op after Shutdown
	server.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(messages)
		s.SetEventListener(echoServer{p: p})
		s.SetCompressType(compress) // compresses what this side writes, if the client negotiated deflate
		return nil
	})
	if server.Addr() == nil {
		return 0, 0, errors.New("server did not start (see the log)")
	}

	relay, err := startMeter(server.Addr().String())
	if err != nil {
		return 0, 0, err
	}
	defer relay.close()
	url := "ws://" + relay.addr() + "/echo"
	p.printf("  server: ws://%s/echo; the client dials %s through the relay", server.Addr(), url)

	replies := make(chan []byte, count)
	client := getty.NewWSClient(getty.WithServerAddress(url))
	defer client.Close()
	dialCtx, cancelDial := context.WithTimeout(ctx, 5*time.Second)
	defer cancelDial()
	if err := client.RunEventLoopContext(dialCtx, func(s getty.Session) error {
		s.SetPkgHandler(messages)
		s.SetEventListener(echoClient{replies: replies})
		s.SetCompressType(compress)
		return nil
	}); err != nil {
		return 0, 0, err
	}
	s, err := client.Session()
	if err != nil {
		return 0, 0, err
	}
	for range count {
		if _, _, err := s.WritePkg(msg, time.Second); err != nil {
			return 0, 0, err
		}
	}
	for i := range count {
		select {
		case r := <-replies:
			if !bytes.Equal(r, msg) {
				return 0, 0, fmt.Errorf("echo %d differs", i)
			}
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	p.printf("  client: %d messages of %d bytes sent and echoed intact", count, len(msg))

	client.Close()
	shutdownCtx, cancelShutdown := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShutdown()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return 0, 0, err
	}
	relay.close() // both ends are closed: the relay's copies have ended
	return relay.up.Load(), relay.down.Load(), nil
}

// meter is a TCP relay that counts the bytes it carries each way.
type meter struct {
	ln       net.Listener
	target   string
	up, down atomic.Int64
	wg       sync.WaitGroup
	once     sync.Once

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startMeter(target string) (*meter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &meter{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	m.wg.Add(1)
	go m.accept()
	return m, nil
}

func (m *meter) addr() string { return m.ln.Addr().String() }

func (m *meter) accept() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.wg.Add(1)
		go m.pipe(c)
	}
}

func (m *meter) track(c net.Conn, add bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if add {
		m.conns[c] = struct{}{}
	} else {
		delete(m.conns, c)
	}
}

func (m *meter) pipe(client net.Conn) {
	defer m.wg.Done()
	defer client.Close()
	server, err := net.Dial("tcp", m.target)
	if err != nil {
		return
	}
	defer server.Close()
	m.track(client, true)
	m.track(server, true)
	defer m.track(client, false)
	defer m.track(server, false)

	var copies sync.WaitGroup
	copies.Add(2)
	half := func(dst, src net.Conn, n *atomic.Int64) {
		defer copies.Done()
		_, _ = io.Copy(counter{dst, n}, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // pass the EOF on
		}
	}
	go half(server, client, &m.up)
	go half(client, server, &m.down)
	copies.Wait()
}

// close stops the relay, cuts what is still connected and waits for its
// goroutines.
func (m *meter) close() {
	m.once.Do(func() {
		_ = m.ln.Close()
		m.mu.Lock()
		for c := range m.conns {
			_ = c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
}

// counter is an io.Writer that counts what it writes.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
