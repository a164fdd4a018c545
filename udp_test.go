package getty_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/race"
)

// ---- helpers (udp-prefixed: the shared helpers are in flux) ---------------

// udpFrame encodes a 4-byte big-endian length-prefixed frame, the format of
// the zero LengthFieldCodec.
func udpFrame(p []byte) []byte {
	b := make([]byte, 4+len(p))
	binary.BigEndian.PutUint32(b, uint32(len(p)))
	copy(b[4:], p)
	return b
}

// udpListener records a UDP session's events; it echoes when echo is set,
// after sleeping delay.
type udpListener struct {
	getty.BaseListener
	echo  bool
	delay time.Duration

	opens, closes, msgs atomic.Int64
	mu                  sync.Mutex
	errs                []error
	got                 chan getty.UDPContext // payload copied, when non-nil
}

func (l *udpListener) OnOpen(getty.Session) error { l.opens.Add(1); return nil }
func (l *udpListener) OnClose(getty.Session)      { l.closes.Add(1) }

func (l *udpListener) OnError(_ getty.Session, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *udpListener) errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func (l *udpListener) OnMessage(s getty.Session, pkg any) {
	l.msgs.Add(1)
	ctx, ok := pkg.(getty.UDPContext)
	if !ok {
		l.OnError(s, fmt.Errorf("OnMessage got %T, want getty.UDPContext", pkg))
		return
	}
	if l.got != nil {
		f := ctx.Pkg.(*getty.Frame)
		select {
		case l.got <- getty.UDPContext{Pkg: bytes.Clone(f.Payload), PeerAddr: ctx.PeerAddr}:
		default:
		}
	}
	if l.delay > 0 {
		time.Sleep(l.delay)
	}
	if l.echo {
		// pkg is already UDPContext{frame, peer}: writing it back costs no
		// allocation (a new UDPContext would be boxed).
		if _, _, err := s.WritePkg(pkg, 0); err != nil {
			l.OnError(s, err)
		}
	}
}

func udpSetup(l getty.EventListener, maxLen int) getty.NewSessionCallback {
	return func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(l)
		s.SetMaxMsgLen(maxLen)
		return nil
	}
}

// udpServe starts an endpoint on 127.0.0.1:0 and closes it at cleanup.
func udpServe(t testing.TB, cb getty.NewSessionCallback, opts ...getty.ServerOption) getty.Server {
	t.Helper()
	srv := getty.NewUDPEndPoint(append([]getty.ServerOption{getty.WithLocalAddress("127.0.0.1:0")}, opts...)...)
	srv.RunEventLoop(cb)
	require.NotNil(t, srv.Addr(), "endpoint did not bind")
	t.Cleanup(srv.Close)
	return srv
}

// udpPeer is a raw UDP socket connected to addr.
func udpPeer(t testing.TB, addr net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// udpRead reads one datagram within d; ok false on timeout.
func udpRead(t testing.TB, c *net.UDPConn, d time.Duration) ([]byte, bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, false
		}
		t.Fatalf("read: %v", err)
	}
	return buf[:n], true
}

func udpDrops(t testing.TB, ep getty.EndPoint) uint64 {
	t.Helper()
	st, ok := getty.EndpointStatsOf(ep)
	require.Truef(t, ok, "%T has no stats", ep)
	return st.Drops
}

func udpEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		require.Falsef(t, time.Now().After(deadline), "timed out waiting for %s", what)
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- endpoint ---------------------------------------------------------------

func TestUDPEndpointEcho(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []getty.ServerOption
	}{
		{"inline", nil},
		{"workers", []getty.ServerOption{getty.WithServerWorkerPool(2)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			l := &udpListener{echo: true}
			srv := udpServe(t, udpSetup(l, 4096), mode.opts...)
			require.EqualValuesf(t, getty.UDP_ENDPOINT, srv.EndPointType(), "type %v", srv.EndPointType())
			ps, ok := srv.(getty.PacketServer)
			require.False(t, !ok || ps.PacketConn() == nil, "not a PacketServer with a socket")
			_, ok = ps.PacketConn().(*net.UDPConn)
			require.Truef(t, ok, "PacketConn is %T", ps.PacketConn())

			const peers, rounds = 8, 100
			var wg sync.WaitGroup
			errc := make(chan error, peers)
			for p := 0; p < peers; p++ {
				c := udpPeer(t, srv.Addr())
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 4096)
					for i := 0; i < rounds; i++ {
						msg := fmt.Sprintf("peer-%d-%d", p, i)
						if _, err := c.Write(udpFrame([]byte(msg))); err != nil {
							errc <- err
							return
						}
						_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
						n, err := c.Read(buf)
						if err != nil {
							errc <- fmt.Errorf("peer %d round %d: %w", p, i, err)
							return
						}
						if want := udpFrame([]byte(msg)); !bytes.Equal(buf[:n], want) {
							errc <- fmt.Errorf("peer %d got %q, want %q", p, buf[:n], want)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				assert.NoError(t, err)
			}
			got := l.msgs.Load()
			assert.EqualValuesf(t, peers*rounds, got, "OnMessage %d times, want %d", got, peers*rounds)
			errs := l.errors()
			assert.Falsef(t, len(errs) > 0, "errors: %v", errs)
			srv.Close()
			require.Falsef(t, !srv.IsClosed() || l.opens.Load() != 1 || l.closes.Load() != 1, "closed %v, opens %d, closes %d", srv.IsClosed(), l.opens.Load(), l.closes.Load())
			srv.Close() // idempotent
			require.EqualValues(t, 1, l.closes.Load(), "OnClose fired twice")
		})
	}
}

func TestUDPOversizeDropped(t *testing.T) {
	const maxLen = 1024
	l := &udpListener{echo: true}
	srv := udpServe(t, udpSetup(l, maxLen))
	c := udpPeer(t, srv.Addr())

	huge := udpFrame(make([]byte, 65507-4)) // the largest IPv4 UDP payload
	for i := 0; i < 3; i++ {
		_, err := c.Write(huge)
		require.NoError(t, err)
	}
	_, err := c.Write(udpFrame(make([]byte, maxLen+1-4))) // one byte over
	require.NoError(t, err)
	_, err = c.Write(nil) // empty datagram
	require.NoError(t, err)
	exact := udpFrame(bytes.Repeat([]byte("x"), maxLen-4)) // exactly the max
	_, err = c.Write(exact)
	require.NoError(t, err)
	got, ok := udpRead(t, c, 5*time.Second)
	require.Falsef(t, !ok || !bytes.Equal(got, exact), "reply %d bytes (ok %v), want the %d-byte datagram echoed", len(got), ok, len(exact))
	_, ok = udpRead(t, c, 100*time.Millisecond)
	require.False(t, ok, "an oversize datagram was answered")
	d := udpDrops(t, srv)
	require.EqualValuesf(t, 5, d, "Drops() = %d, want 5", d)
	require.Falsef(t, l.msgs.Load() != 1 || len(l.errors()) != 0 || l.closes.Load() != 0, "msgs %d, errors %v, closes %d", l.msgs.Load(), l.errors(), l.closes.Load())
	// Still serving.
	_, err = c.Write(udpFrame([]byte("ping")))
	require.NoError(t, err)
	got, ok = udpRead(t, c, 5*time.Second)
	require.Falsef(t, !ok || string(got[4:]) != "ping", "after drops: %q %v", got, ok)
}

// TestUDPGarbageFlood sends up to 100k datagrams the Reader rejects (bounded
// to 10 s) while OnMessage is slow: memory stays bounded, the rejects are
// counted, and the endpoint answers afterwards.
func TestUDPGarbageFlood(t *testing.T) {
	t.Run("inline", func(t *testing.T) { testUDPGarbageFlood(t) })
	t.Run("workers", func(t *testing.T) { testUDPGarbageFlood(t, getty.WithServerWorkerPool(1)) })
}

func testUDPGarbageFlood(t *testing.T, opts ...getty.ServerOption) {
	const (
		total   = 100_000
		timeout = 10 * time.Second
		ceiling = 64 << 20
	)
	l := &udpListener{echo: true, delay: 2 * time.Millisecond}
	srv := udpServe(t, udpSetup(l, 4096), opts...)
	c := udpPeer(t, srv.Addr())
	_ = c.SetWriteBuffer(1 << 20)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64

	garbage := make([]byte, 512)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	// The header declares more bytes than the datagram has: the codec asks
	// for more, which a whole datagram cannot give (a contract violation).
	binary.BigEndian.PutUint32(garbage, 4000)
	valid := udpFrame([]byte("slow"))

	start := time.Now()
	sent := 0
	for sent < total && time.Since(start) < timeout {
		b := garbage
		if sent%1000 == 0 {
			b = valid // keeps the slow handler busy
		}
		if _, err := c.Write(b); err != nil {
			// ECONNREFUSED cannot happen (the endpoint is up); ENOBUFS
			// may on a busy kernel: back off a little.
			time.Sleep(time.Millisecond)
		}
		sent++
		if sent%10_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapInuse)
	t.Logf("sent %d datagrams in %v; drops %d, OnMessage %d, heap in use %d KiB -> peak %d KiB",
		sent, time.Since(start).Round(time.Millisecond), udpDrops(t, srv), l.msgs.Load(), base>>10, peak>>10)
	assert.Falsef(t, peak > base && peak-base > ceiling, "heap in use grew by %d MiB (ceiling %d MiB)", (peak-base)>>20, ceiling>>20)
	udpEventually(t, "drops counted", func() bool { return udpDrops(t, srv) > 0 })

	// Still serving: a fresh peer gets an answer once the backlog drains
	// (the kernel may drop datagrams while the socket buffer is full, so
	// retry, boundedly).
	c2 := udpPeer(t, srv.Addr())
	var got []byte
	ok := false
	deadline := time.Now().Add(10 * time.Second)
	for !ok && time.Now().Before(deadline) {
		_, err := c2.Write(udpFrame([]byte("alive")))
		require.NoError(t, err)
		got, ok = udpRead(t, c2, 200*time.Millisecond)
	}
	require.Falsef(t, !ok || string(got[4:]) != "alive", "endpoint did not answer after the flood: %q %v", got, ok)
	errs := l.errors()
	require.Falsef(t, len(errs) != 0 || l.closes.Load() != 0, "errors %v, closes %d", errs, l.closes.Load())
}

// TestUDPReaderErrorsKeepSession: Reader errors and contract violations
// drop the datagram (counted); the session stays.
func TestUDPReaderErrorsKeepSession(t *testing.T) {
	var calls atomic.Int64
	rd := getty.ReaderFunc(func(_ getty.Session, b []byte) (any, int, error) {
		calls.Add(1)
		switch string(b) {
		case "err":
			return nil, 0, errors.New("bad datagram")
		case "short":
			return nil, 0, nil // needs more: impossible for a datagram
		case "zero":
			return "pkg", 0, nil // contract: n <= 0
		case "long":
			return "pkg", 100, nil // contract: n > len
		}
		return string(b), len(b), nil
	})
	wr := getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) {
		return []byte(pkg.(getty.UDPContext).Pkg.(string)), nil
	})
	srv := udpServe(t, func(s getty.Session) error {
		s.SetReader(rd)
		s.SetWriter(wr)
		s.SetEventListener(getty.BaseListener{})
		return nil
	})
	c := udpPeer(t, srv.Addr())
	// "connect-ping", which upstream clients send on connecting, is
	// skipped before the Reader (and not counted as a drop).
	for _, m := range []string{"err", "short", "connect-ping", "zero", "long", "ok"} {
		_, err := c.Write([]byte(m))
		require.NoError(t, err)
	}
	udpEventually(t, "5 Reader calls", func() bool { return calls.Load() == 5 })
	d := udpDrops(t, srv)
	require.EqualValuesf(t, 4, d, "Drops() = %d, want 4", d)
	require.False(t, srv.IsClosed(), "endpoint closed by Reader errors")
}

// TestUDPReaderPanicClosesEndpoint: a panic is a bug, not bad input: as
// everywhere it ends the session (with OnError), and so the endpoint.
func TestUDPReaderPanicClosesEndpoint(t *testing.T) {
	l := &udpListener{}
	srv := getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0"))
	t.Cleanup(srv.Close)
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(func(s getty.Session) error {
			s.SetReader(getty.ReaderFunc(func(getty.Session, []byte) (any, int, error) { panic("boom") }))
			s.SetEventListener(l)
			return nil
		})
	}()
	udpEventually(t, "bind", func() bool { return srv.Addr() != nil })
	c := udpPeer(t, srv.Addr())
	_, err := c.Write([]byte("x"))
	require.NoError(t, err)
	select {
	case err := <-done:
		require.ErrorIsf(t, err, getty.ErrPanic, "Serve = %v, want ErrPanic", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	require.Falsef(t, !srv.IsClosed() || l.closes.Load() != 1 || len(l.errors()) != 1, "closed %v, closes %d, errors %v", srv.IsClosed(), l.closes.Load(), l.errors())
}

func TestUDPEndpointWrites(t *testing.T) {
	sessc := make(chan getty.Session, 1)
	l := &udpListener{got: make(chan getty.UDPContext, 16)}
	srv := udpServe(t, func(s getty.Session) error {
		err := udpSetup(l, 4096)(s)
		sessc <- s
		return err
	})
	s := <-sessc
	_, ok := s.Conn().(*net.UDPConn)
	require.Truef(t, ok, "Conn is %T", s.Conn())
	_, ok = getty.EndpointStatsOf(s.EndPoint())
	require.Truef(t, ok, "EndPoint() %T has no stats", s.EndPoint())

	// No peer yet: the write fails, the session stays.
	_, err := s.WriteBytes([]byte("x"))
	require.ErrorIsf(t, err, getty.ErrNullPeerAddr, "WriteBytes without a peer: %v", err)
	_, _, err = s.WritePkg("x", 0)
	require.ErrorIsf(t, err, getty.ErrNullPeerAddr, "WritePkg without a peer: %v", err)
	require.False(t, s.IsClosed(), "closed by a write without a peer")

	a, b := udpPeer(t, srv.Addr()), udpPeer(t, srv.Addr())
	_, err = a.Write(udpFrame([]byte("from-a")))
	require.NoError(t, err)
	var ctxA getty.UDPContext
	select {
	case ctxA = <-l.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	require.Falsef(t, string(ctxA.Pkg.([]byte)) != "from-a" || ctxA.PeerAddr.String() != a.LocalAddr().String(), "got %v", ctxA)

	// WriteBytes and WriteBytesArray go to the last peer, as one datagram.
	n, err := s.WriteBytes([]byte("wb"))
	require.Falsef(t, err != nil || n != 2, "WriteBytes: %d %v", n, err)
	got, ok := udpRead(t, a, 5*time.Second)
	require.Falsef(t, !ok || string(got) != "wb", "a got %q %v", got, ok)
	n, err = s.WriteBytesArray([]byte("one,"), []byte("two,"), []byte("three"))
	require.Falsef(t, err != nil || n != 13, "WriteBytesArray: %d %v", n, err)
	got, ok = udpRead(t, a, 5*time.Second)
	require.Falsef(t, !ok || string(got) != "one,two,three", "a got %q %v", got, ok)
	// WritePkg without a PeerAddr: the last peer too; with one: that peer.
	_, _, err = s.WritePkg(getty.UDPContext{Pkg: "pkg"}, time.Second)
	require.NoError(t, err)
	got, ok = udpRead(t, a, 5*time.Second)
	require.Falsef(t, !ok || !bytes.Equal(got, udpFrame([]byte("pkg"))), "a got %q %v", got, ok)
	bAddr := b.LocalAddr().(*net.UDPAddr)
	_, _, err = s.WritePkg(&getty.UDPContext{Pkg: []byte("to-b"), PeerAddr: bAddr}, time.Second)
	require.NoError(t, err)
	got, ok = udpRead(t, b, 5*time.Second)
	require.Falsef(t, !ok || !bytes.Equal(got, udpFrame([]byte("to-b"))), "b got %q %v", got, ok)
	// Send writes raw bytes to the named peer.
	n, err = s.Send(getty.UDPContext{Pkg: []byte("raw"), PeerAddr: bAddr})
	require.Falsef(t, err != nil || n != 3, "Send: %d %v", n, err)
	got, ok = udpRead(t, b, 5*time.Second)
	require.Falsef(t, !ok || string(got) != "raw", "b got %q %v", got, ok)
	// A datagram the kernel refuses (too long) fails alone.
	_, err = s.WriteBytes(make([]byte, 70_000))
	require.Error(t, err, "a 70,000-byte datagram was sent")
	require.False(t, s.IsClosed() || srv.IsClosed(), "a failed datagram closed the session")
	_, ok = udpRead(t, a, 50*time.Millisecond)
	require.False(t, ok, "unexpected datagram")
	n, err = s.WriteBytes([]byte("after"))
	require.Falsef(t, err != nil || n != 5, "WriteBytes after a failure: %d %v", n, err)
	got, ok = udpRead(t, a, 5*time.Second)
	require.Falsef(t, !ok || string(got) != "after", "a got %q %v", got, ok)
	require.EqualValuesf(t, srv.Addr().String(), s.LocalAddr(), "LocalAddr %q, Addr %q", s.LocalAddr(), srv.Addr())
}

func TestUDPNewSessionCallbackErrors(t *testing.T) {
	refuse := errors.New("refused")
	for _, tc := range []struct {
		name string
		cb   getty.NewSessionCallback
		want error
	}{
		{"error", func(getty.Session) error { return refuse }, refuse},
		{"panic", func(getty.Session) error { panic("boom") }, getty.ErrPanic},
		{"nil", nil, nil},
		{"no reader", func(getty.Session) error { return nil }, nil},
		{"OnOpen", func(s getty.Session) error {
			s.SetPkgHandler(&getty.LengthFieldCodec{})
			s.SetEventListener(udpRefuser{})
			return nil
		}, nil},
	} {
		t.Run(tc.name+"/Serve", func(t *testing.T) {
			srv := getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0"))
			defer srv.Close()
			err := srv.Serve(tc.cb)
			require.Falsef(t, err == nil || errors.Is(err, getty.ErrServerClosed) || (tc.want != nil && !errors.Is(err, tc.want)), "Serve = %v, want %v", err, tc.want)
			require.True(t, srv.IsClosed(), "endpoint not closed")
		})
		t.Run(tc.name+"/RunEventLoop", func(t *testing.T) {
			srv := getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0"))
			defer srv.Close()
			srv.RunEventLoop(tc.cb)
			udpEventually(t, "endpoint closed", srv.IsClosed)
		})
	}
}

type udpRefuser struct{ getty.BaseListener }

func (udpRefuser) OnOpen(getty.Session) error { return errors.New("no") }

func TestUDPEndpointLifecycle(t *testing.T) {
	// Close before running: Serve and RunEventLoop refuse, nothing leaks.
	srv := getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0"))
	srv.Close()
	err := srv.Serve(udpSetup(&udpListener{}, 4096))
	require.ErrorIsf(t, err, getty.ErrServerClosed, "Serve after Close: %v", err)
	srv.RunEventLoop(udpSetup(&udpListener{}, 4096))
	require.False(t, srv.Addr() != nil || srv.(getty.PacketServer).PacketConn() != nil, "bound after Close")

	// A bad address: Serve returns the error.
	bad := getty.NewUDPEndPoint(getty.WithLocalAddress("256.0.0.1:x"))
	err = bad.Serve(udpSetup(&udpListener{}, 4096))
	require.Error(t, err, "Serve on a bad address succeeded")
	bad.Close()

	// Serve returns ErrServerClosed on Close; a second run is refused.
	l := &udpListener{}
	srv = getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0"))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(udpSetup(l, 4096)) }()
	udpEventually(t, "open", func() bool { return l.opens.Load() == 1 })
	err = srv.Serve(udpSetup(l, 4096))
	require.Error(t, err, "second Serve succeeded")
	srv.RunEventLoop(udpSetup(l, 4096)) // logged, ignored
	require.False(t, srv.IsClosed(), "a second RunEventLoop closed the running endpoint")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(ctx)
	require.NoError(t, err)
	err = <-done
	require.ErrorIsf(t, err, getty.ErrServerClosed, "Serve = %v", err)
	require.Falsef(t, l.opens.Load() != 1 || l.closes.Load() != 1, "opens %d closes %d", l.opens.Load(), l.closes.Load())

	// Closing the session closes the endpoint.
	sessc := make(chan getty.Session, 1)
	srv = udpServe(t, func(s getty.Session) error { sessc <- s; return udpSetup(&udpListener{}, 4096)(s) })
	(<-sessc).Close()
	udpEventually(t, "endpoint closed", srv.IsClosed)
}

// ---- client -----------------------------------------------------------------

func TestUDPClientNoProbe(t *testing.T) {
	raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer raw.Close()

	l := &udpListener{got: make(chan getty.UDPContext, 4)}
	cli := getty.NewUDPClient(getty.WithServerAddress(raw.LocalAddr().String()))
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = cli.RunEventLoopContext(ctx, udpSetup(l, 4096))
	require.NoError(t, err)
	require.EqualValuesf(t, getty.UDP_CLIENT, cli.EndPointType(), "type %v", cli.EndPointType())
	s, err := cli.Session()
	require.NoError(t, err)
	_, ok := s.Conn().(*net.UDPConn)
	require.Truef(t, ok, "Conn is %T", s.Conn())

	buf := make([]byte, 4096)
	_ = raw.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, from, err := raw.ReadFromUDP(buf)
	require.Errorf(t, err, "the client sent %q from %v before any write", buf[:n], from)

	_, _, err = s.WritePkg("hello", time.Second)
	require.NoError(t, err)
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err = raw.ReadFromUDP(buf)
	require.NoError(t, err)
	require.Truef(t, bytes.Equal(buf[:n], udpFrame([]byte("hello"))), "server got %q", buf[:n])
	require.EqualValuesf(t, s.LocalAddr(), from.String(), "from %v, session local %s", from, s.LocalAddr())
	_, err = raw.WriteToUDP(udpFrame([]byte("pong")), from)
	require.NoError(t, err)
	select {
	case got := <-l.got:
		require.Falsef(t, string(got.Pkg.([]byte)) != "pong" || got.PeerAddr.String() != raw.LocalAddr().String(), "client got %v", got)
	case <-time.After(5 * time.Second):
		t.Fatal("client got no reply")
	}
	cli.Close()
	require.Falsef(t, l.opens.Load() != 1 || l.closes.Load() != 1, "opens %d closes %d", l.opens.Load(), l.closes.Load())
}

func TestUDPClientEcho(t *testing.T) {
	srv := udpServe(t, udpSetup(&udpListener{echo: true}, 4096))
	l := &udpListener{got: make(chan getty.UDPContext, 64)}
	cli := getty.NewUDPClient(getty.WithServerAddress(srv.Addr().String()), getty.WithConnectionNumber(3))
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := cli.RunEventLoopContext(ctx, udpSetup(l, 4096))
	require.NoError(t, err)
	ss := cli.Sessions()
	require.EqualValuesf(t, 3, len(ss), "%d sessions", len(ss))
	for i, s := range ss {
		for j := 0; j < 10; j++ {
			msg := fmt.Sprintf("s%d-%d", i, j)
			_, _, err := s.WritePkg(msg, time.Second)
			require.NoError(t, err)
			select {
			case got := <-l.got:
				require.Falsef(t, string(got.Pkg.([]byte)) != msg || got.PeerAddr.String() != srv.Addr().String(), "got %v, want %s from %v", got, msg, srv.Addr())
			case <-time.After(5 * time.Second):
				t.Fatalf("no echo of %s", msg)
			}
		}
	}
	d := udpDrops(t, cli)
	require.EqualValuesf(t, 0, d, "client drops %d", d)
}

// TestUDPClientRefused: with nobody listening, the ICMP errors a connected
// socket reports are ignored; the session stays until Close.
func TestUDPClientRefused(t *testing.T) {
	hole, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	addr := hole.LocalAddr().String()
	hole.Close()

	l := &udpListener{}
	cli := getty.NewUDPClient(getty.WithServerAddress(addr))
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = cli.RunEventLoopContext(ctx, udpSetup(l, 4096))
	require.NoError(t, err)
	s, err := cli.Session()
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		// A write may report the refusal of the previous one; it fails
		// that datagram only.
		_, _, _ = s.WritePkg("anyone?", time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	require.Falsef(t, s.IsClosed() || l.closes.Load() != 0 || len(l.errors()) != 0, "closed %v, closes %d, errors %v", s.IsClosed(), l.closes.Load(), l.errors())
	cli.Close()
	require.EqualValuesf(t, 1, l.closes.Load(), "closes %d", l.closes.Load())
}

// ---- allocations ------------------------------------------------------------

// udpEchoRig is an echo endpoint and a raw connected peer.
func udpEchoRig(tb testing.TB) (round func()) {
	srv := udpServe(tb, udpSetup(&udpListener{echo: true}, 4096))
	c := udpPeer(tb, srv.Addr())
	req := udpFrame(bytes.Repeat([]byte("x"), 128))
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(time.Hour))
	return func() {
		if _, err := c.Write(req); err != nil {
			tb.Fatal(err)
		}
		if n, err := c.Read(buf); err != nil || n != len(req) {
			tb.Fatalf("read %d %v", n, err)
		}
	}
}

// TestUDPEchoAllocs pins the allocations per echoed datagram, counted
// process-wide (the peer's side allocates nothing): boxing the UDPContext
// that OnMessage receives is the only one.
func TestUDPEchoAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("sync.Pool drops items under -race")
	}
	round := udpEchoRig(t)
	for i := 0; i < 100; i++ {
		round()
	}
	allocs := testing.AllocsPerRun(2000, round)
	t.Logf("%.2f allocations per echoed datagram", allocs)
	require.Falsef(t, allocs > 1.5, "%.2f allocations per echoed datagram, want at most 1", allocs)
}

// BenchmarkUDPEcho: one op is a 132-byte datagram echoed by the endpoint
// (LengthFieldCodec, OnMessage writing back the UDPContext it got);
// allocs/op is the allocations per echoed datagram, process-wide.
func BenchmarkUDPEcho(b *testing.B) {
	round := udpEchoRig(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		round()
	}
}
