// Command udp-echo runs a getty UDP echo endpoint, a getty UDP client and a
// plain net.UDPConn peer in one process. The endpoint is one socket and one
// session for every peer; each datagram reaches OnMessage as a UDPContext
// that names its sender, and the reply goes back to that sender. One
// datagram over the endpoint's maximum message length is dropped and
// counted, which EndpointStatsOf shows at the end.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	getty "github.com/getty-go/getty"
)

// maxDatagram is the endpoint's maximum message length; longer datagrams
// are dropped.
const maxDatagram = 1024

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "udp-echo:", err)
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

// datagrams is the codec: one datagram is one text package, as is. A Reader
// on UDP gets exactly one whole datagram per call, so there is no framing.
// On the endpoint the Writer receives the UDPContext given to WritePkg.
var datagrams = getty.NewReadWriter(
	getty.ReaderFunc(func(_ getty.Session, buf []byte) (any, int, error) {
		return string(buf), len(buf), nil // string() copies: buf is reused
	}),
	getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) {
		switch c := pkg.(type) {
		case getty.UDPContext:
			pkg = c.Pkg
		case *getty.UDPContext:
			pkg = c.Pkg
		}
		switch p := pkg.(type) {
		case string:
			return []byte(p), nil
		case []byte:
			return p, nil
		}
		return nil, fmt.Errorf("udp-echo: cannot write %T", pkg)
	}),
)

type echoEndpoint struct {
	getty.BaseListener
	p *printer
}

func (h echoEndpoint) OnMessage(s getty.Session, pkg any) {
	in := pkg.(getty.UDPContext)
	msg := in.Pkg.(string)
	h.p.printf("server: %d bytes from %s: %q", len(msg), in.PeerAddr, msg)
	reply := getty.UDPContext{Pkg: "echo: " + msg, PeerAddr: in.PeerAddr}
	if _, _, err := s.WritePkg(reply, time.Second); err != nil {
		h.p.printf("server: reply to %s failed: %v", in.PeerAddr, err)
	}
}

type echoClient struct {
	getty.BaseListener
	replies chan string
}

func (h echoClient) OnMessage(_ getty.Session, pkg any) {
	h.replies <- pkg.(getty.UDPContext).Pkg.(string)
}

func run(ctx context.Context, out io.Writer) error {
	p := &printer{out: out}

	server := getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0"))
	defer server.Close()
	server.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(datagrams)
		s.SetEventListener(echoEndpoint{p: p})
		s.SetMaxMsgLen(maxDatagram)
		return nil
	})
	if server.Addr() == nil {
		return errors.New("endpoint did not start (see the log)")
	}
	addr := server.Addr().String()
	p.printf("server: UDP endpoint on %s, datagrams up to %d bytes", addr, maxDatagram)

	// A getty client: two connected UDP sockets to the endpoint.
	replies := make(chan string, 8)
	client := getty.NewUDPClient(getty.WithServerAddress(addr), getty.WithConnectionNumber(2))
	defer client.Close()
	dialCtx, cancelDial := context.WithTimeout(ctx, 5*time.Second)
	defer cancelDial()
	if err := client.RunEventLoopContext(dialCtx, func(s getty.Session) error {
		s.SetPkgHandler(datagrams)
		s.SetEventListener(echoClient{replies: replies})
		return nil
	}); err != nil {
		return err
	}
	for i := 1; i <= 4; i++ {
		s, err := client.Session() // round-robin over the two sockets
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("ping #%d", i)
		p.printf("client %d (%s): send %q", s.ID(), s.LocalAddr(), msg)
		if _, _, err := s.WritePkg(msg, time.Second); err != nil {
			return err
		}
		select {
		case r := <-replies:
			p.printf("client %d: got %q", s.ID(), r)
		case <-time.After(2 * time.Second):
			return fmt.Errorf("no reply to %q (UDP is lossy, but not on loopback)", msg)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// A peer that is not getty at all: a plain net.UDPConn.
	raw, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	ask := func(msg string) (string, error) {
		if _, err := raw.Write([]byte(msg)); err != nil {
			return "", err
		}
		_ = raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 2*maxDatagram)
		n, err := raw.Read(buf)
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	r, err := ask("hello from a plain socket")
	if err != nil {
		return err
	}
	p.printf("raw peer (%s): got %q", raw.LocalAddr(), r)

	// One datagram over the maximum: the endpoint drops it, counts it, and
	// goes on serving, as the next datagram shows.
	oversize := strings.Repeat("x", 2*maxDatagram)
	p.printf("raw peer: send one datagram of %d bytes", len(oversize))
	if _, err := raw.Write([]byte(oversize)); err != nil {
		return err
	}
	if r, err = ask("still there?"); err != nil {
		return err
	}
	p.printf("raw peer: got %q", r)
	// The endpoint reads datagrams in order, so the drop was counted before
	// "still there?" was read.
	st, _ := getty.EndpointStatsOf(server)
	p.printf("server: EndpointStatsOf(server).Drops = %d", st.Drops)

	client.Close()
	shutdownCtx, cancelShutdown := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShutdown()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return err
	}
	// After Shutdown the counters are final. (Before, a write is counted
	// just after its syscall, so a peer may see a reply a moment before
	// WritePkgs does.)
	st, _ = getty.EndpointStatsOf(server)
	p.printf("server stats: %d session (one for all peers), %d datagrams in, %d out, %d dropped",
		st.SessionsTotal, st.ReadPkgs, st.WritePkgs, st.Drops)
	p.printf("done")
	return nil
}
