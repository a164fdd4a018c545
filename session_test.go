package getty_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

func TestEcho(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		srvRec := newRecorder(true)
		srv := startServer(t, tr.newServer(t), withCodec(srvRec))
		cliRec := newRecorder(false)
		cli := startClient(t, tr.newClient(t, srv, getty.WithConnectionNumber(2)), withCodec(cliRec))

		s, err := cli.Session()
		require.NoError(t, err)
		for i := 0; i < 100; i++ {
			msg := fmt.Sprintf("hello %d", i)
			total, sent, err := s.WritePkg(msg, time.Second)
			require.NoError(t, err)
			if tr.stream {
				assert.Equal(t, 4+len(msg), total)
			}
			assert.Equal(t, total, sent)
			assert.Equal(t, msg, cliRec.next(t))
		}
		assert.Contains(t, s.Stat(), "Write Pkgs: 100")
		assert.Len(t, cli.Sessions(), 2)

		cli.Close()
		cliRec.waitClosed(t, 2)
		if tr.packet {
			// One server session serves every peer; it ends with the server.
			srv.Close()
		}
		want := 2
		if tr.packet {
			want = 1
		}
		srvRec.waitClosed(t, want)
		opens, closes, errs := srvRec.counts()
		assert.Equal(t, want, opens)
		assert.Equal(t, want, closes)
		assert.Empty(t, errs, "an orderly close reports no error")
	})
}

// The API surface an upstream program relies on.
func TestSessionSurface(t *testing.T) {
	var got getty.Session
	ready := make(chan struct{})
	srv := startServer(t, row("tcp").newServer(t), func(s getty.Session) error {
		s.SetName("surface")
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(getty.BaseListener{})
		s.SetReadTimeout(0)   // ignored
		s.SetWriteTimeout(-1) // ignored
		s.SetCronPeriod(-1)   // ignored
		s.SetMaxMsgLen(0)     // ignored
		s.SetWaitTime(0)      // ignored
		s.SetAttribute("k", 1)
		got = s
		close(ready)
		return nil
	})
	c := rawDial(t, srv)
	<-ready
	s := got
	assert.IsType(t, &net.TCPConn{}, s.Conn())
	assert.Equal(t, time.Second, s.ReadTimeout())
	assert.Equal(t, time.Second, s.WriteTimeout())
	assert.Equal(t, 1, s.GetAttribute("k"))
	s.RemoveAttribute("k")
	assert.Nil(t, s.GetAttribute("k"))
	assert.Equal(t, c.LocalAddr().String(), s.RemoteAddr())
	assert.Equal(t, getty.TCP_SERVER, s.EndPoint().EndPointType())
	assert.Equal(t, "TCP_SERVER", s.EndPoint().EndPointType().String())
	assert.Equal(t, "42", getty.EndPointType(42).String())
	assert.True(t, strings.HasPrefix(s.Stat(), "session {surface:TCP_SERVER:"), s.Stat())
	assert.False(t, s.IsClosed())
	n, err := s.WriteBytesArray(frame("a"), frame("bc"))
	require.NoError(t, err)
	assert.Equal(t, 11, n)
	assert.Equal(t, "a", readFrame(t, c))
	assert.Equal(t, "bc", readFrame(t, c))
	_, err = s.Send(frame("raw"))
	require.NoError(t, err)
	assert.Equal(t, "raw", readFrame(t, c))
	s.Close()
	assert.True(t, s.IsClosed())
	_, _, err = s.WritePkg("late", 0)
	assert.ErrorIs(t, err, getty.ErrSessionClosed)
	assert.ErrorIs(t, err, net.ErrClosed)
	waitEOF(t, c)
}

func TestOnOpenRejects(t *testing.T) {
	var closes atomic.Int32
	l := &openRejecter{closes: &closes}
	srv := startServer(t, row("tcp").newServer(t), withCodec(l))
	c := rawDial(t, srv)
	waitEOF(t, c)
	srv.Close()
	assert.Zero(t, closes.Load(), "OnClose must not follow a refused OnOpen")
}

type openRejecter struct {
	getty.BaseListener
	closes *atomic.Int32
}

func (openRejecter) OnOpen(getty.Session) error { return errors.New("no") }
func (o openRejecter) OnClose(getty.Session)    { o.closes.Add(1) }

func TestNewSessionCallbackError(t *testing.T) {
	srv := startServer(t, row("tcp").newServer(t), func(getty.Session) error { return errors.New("refused") })
	waitEOF(t, rawDial(t, srv))
}

// A Reader that breaks the contract closes its session with a clear error
// and never spins; another client is still served.
func TestReaderContractViolations(t *testing.T) {
	cases := map[string]getty.ReaderFunc{
		"zero length with package": func(getty.Session, []byte) (any, int, error) { return "x", 0, nil },
		"negative length":          func(getty.Session, []byte) (any, int, error) { return "x", -1, nil },
		"length beyond buffer":     func(_ getty.Session, b []byte) (any, int, error) { return "x", len(b) + 1, nil },
		"no progress at limit":     func(getty.Session, []byte) (any, int, error) { return nil, 0, nil },
		"header length buffered":   func(_ getty.Session, b []byte) (any, int, error) { return nil, len(b), nil },
		"protocol error":           func(getty.Session, []byte) (any, int, error) { return nil, 0, errors.New("bad magic") },
	}
	for name, rd := range cases {
		t.Run(name, func(t *testing.T) {
			bad := newRecorder(false)
			good := newRecorder(true)
			srv := startServer(t, row("tcp").newServer(t), func(s getty.Session) error {
				codec := &getty.LengthFieldCodec{}
				s.SetMaxMsgLen(1024)
				s.SetWriter(codec)
				if goodAddr.Load() == s.RemoteAddr() {
					s.SetReader(codec)
					s.SetEventListener(good)
					return nil
				}
				s.SetReader(rd)
				s.SetEventListener(bad)
				return nil
			})
			c := rawDial(t, srv)
			// Enough bytes to fill the buffer to the limit for the
			// no-progress case.
			_, _ = c.Write(make([]byte, 2048))
			waitEOF(t, c)
			bad.waitClosed(t, 1)
			_, _, errs := bad.counts()
			require.Len(t, errs, 1)
			if name == "protocol error" {
				assert.ErrorContains(t, errs[0], "bad magic")
			} else if name == "no progress at limit" {
				assert.ErrorIs(t, errs[0], getty.ErrMsgTooLong)
			} else {
				assert.ErrorIs(t, errs[0], getty.ErrReaderContract)
			}
			var se *getty.SessionError
			require.ErrorAs(t, errs[0], &se)
			assert.Equal(t, "decode", se.Op)

			gc := rawDialMarked(t, srv)
			_, _ = gc.Write(frame("still served"))
			assert.Equal(t, "still served", readFrame(t, gc))
		})
	}
}

var goodAddr atomic.Value // remote address of the next "good" client, as the server sees it

func rawDialMarked(t *testing.T, srv getty.Server) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	// Pick the port first so the server can tell this client apart.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	goodAddr.Store(d.LocalAddr.String())
	c, err := d.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// A 1 GiB declared length against a 64 KiB limit is refused as soon as the
// header is read, without allocating for it.
func TestOversizeFrameRejected(t *testing.T) {
	bad := newRecorder(false)
	srv := startServer(t, row("tcp").newServer(t), withCodec(bad))
	other := rawDial(t, srv)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := rawDial(t, srv)
	hdr := frame("")
	hdr[0] = 0x40 // 1 GiB
	_, _ = c.Write(hdr)
	waitEOF(t, c)
	bad.waitClosed(t, 1)
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated while refusing the frame")
	_, _, errs := bad.counts()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], getty.ErrMsgTooLong)

	_, _ = other.Write(frame("ping"))
	assert.Equal(t, "ping", bad.next(t))
}

// Panics in every callback are recovered: the session closes with a
// PanicError and the server keeps serving.
func TestCallbackPanics(t *testing.T) {
	for _, where := range []string{"callback", "read", "write", "open", "message", "cron", "error", "close"} {
		t.Run(where, func(t *testing.T) {
			p := &panicker{where: where, closed: make(chan struct{}, 4), errs: make(chan error, 4)}
			srv := startServer(t, row("tcp").newServer(t), func(s getty.Session) error {
				if where == "callback" && p.first.CompareAndSwap(false, true) {
					panic("boom in callback")
				}
				codec := &getty.LengthFieldCodec{}
				var rw getty.ReadWriter = codec
				if where == "read" || where == "write" {
					rw = getty.NewReadWriter(panicReader{p, codec}, panicWriter{p, codec})
				}
				s.SetPkgHandler(rw)
				s.SetEventListener(p)
				if where == "cron" {
					s.SetCronPeriod(20)
				}
				return nil
			})
			c := rawDial(t, srv)
			_, _ = c.Write(frame("x"))
			if where == "close" || where == "error" {
				// Close the first session with an error so OnError runs.
				_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff})
			}
			waitEOF(t, c)
			switch where {
			case "callback", "open":
				// The session never opened: no OnError, no OnClose.
			case "close":
				<-p.closed
			default:
				select {
				case err := <-p.errs:
					if where != "error" {
						assert.ErrorIs(t, err, getty.ErrPanic)
						var pe *getty.PanicError
						require.ErrorAs(t, err, &pe)
						assert.Contains(t, fmt.Sprint(pe.Value), "boom")
						assert.NotEmpty(t, pe.Stack)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no OnError")
				}
			}
			// The next client is served normally.
			c2 := rawDial(t, srv)
			_, _ = c2.Write(frame("ok"))
			assert.Equal(t, "ok", readFrame(t, c2))
		})
	}
}

type panicker struct {
	getty.BaseListener
	where  string
	first  atomic.Bool
	closed chan struct{}
	errs   chan error
}

// once reports whether this is the first session to reach a panic point.
func (p *panicker) once(where string) bool {
	return p.where == where && p.first.CompareAndSwap(false, true)
}

func (p *panicker) OnOpen(getty.Session) error {
	if p.once("open") {
		panic("boom in OnOpen")
	}
	return nil
}

func (p *panicker) OnMessage(s getty.Session, pkg any) {
	if p.once("message") {
		panic("boom in OnMessage")
	}
	_, _, _ = s.WritePkg(pkg, 0)
}

func (p *panicker) OnCron(getty.Session) {
	if p.once("cron") {
		panic("boom in OnCron")
	}
}

func (p *panicker) OnError(_ getty.Session, err error) {
	p.errs <- err
	if p.once("error") {
		panic("boom in OnError")
	}
}

func (p *panicker) OnClose(getty.Session) {
	p.closed <- struct{}{}
	if p.once("close") {
		panic("boom in OnClose")
	}
}

type panicReader struct {
	p *panicker
	getty.Reader
}

func (r panicReader) Read(s getty.Session, b []byte) (any, int, error) {
	if r.p.once("read") {
		panic("boom in Read")
	}
	return r.Reader.Read(s, b)
}

type panicWriter struct {
	p *panicker
	getty.Writer
}

func (w panicWriter) Write(s getty.Session, pkg any) ([]byte, error) {
	if w.p.once("write") {
		panic("boom in Write")
	}
	return w.Writer.Write(s, pkg)
}

// Many goroutines write to one session at once: every frame arrives whole.
func TestConcurrentWriters(t *testing.T) {
	sessCh := make(chan getty.Session, 1)
	srv := startServer(t, row("tcp").newServer(t), withCodec(getty.BaseListener{}, func(s getty.Session) { sessCh <- s }))
	c := rawDial(t, srv)
	s := <-sessCh
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				msg := fmt.Sprintf("w%02d-%04d-%s", w, i, strings.Repeat("x", i%100))
				if _, _, err := s.WritePkg(msg, 5*time.Second); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	for n := 0; n < writers*each; n++ {
		msg := readFrame(t, c)
		var w, i int
		_, err := fmt.Sscanf(msg[:8], "w%02d-%04d", &w, &i)
		require.NoError(t, err, msg)
		require.Equal(t, next[w], i, "writer %d out of order", w)
		require.Equal(t, fmt.Sprintf("w%02d-%04d-%s", w, i, strings.Repeat("x", i%100)), msg)
		next[w]++
	}
	wg.Wait()
}

// Close from another goroutine while 32 goroutines write: every write
// returns nil or ErrSessionClosed, and nothing panics or races.
func TestCloseWhileWriting(t *testing.T) {
	for round := 0; round < 5; round++ {
		sessCh := make(chan getty.Session, 1)
		srv := startServer(t, row("tcp").newServer(t), withCodec(getty.BaseListener{}, func(s getty.Session) { sessCh <- s }))
		c := rawDial(t, srv)
		go func() { // drain so writes do not block
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
		s := <-sessCh
		var wg sync.WaitGroup
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					_, _, err := s.WritePkg("payload", time.Second)
					if err != nil && !errors.Is(err, getty.ErrSessionClosed) {
						t.Errorf("write: %v", err)
						return
					}
				}
			}()
		}
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); time.Sleep(time.Millisecond); s.Close() }()
		}
		wg.Wait()
		srv.Close()
	}
}

// Server.Close with live sessions closes them all, runs every OnClose and
// returns with no goroutine left (goleak checks at the end).
func TestServerCloseWithLiveSessions(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		rec := newRecorder(true)
		srv := tr.newServer(t)
		srv.RunEventLoop(withCodec(rec))
		cliRec := newRecorder(false)
		startClient(t, tr.newClient(t, srv, getty.WithConnectionNumber(10), getty.WithReconnectInterval(longReconnect)), withCodec(cliRec))
		want := 10
		if tr.packet {
			want = 1
		}
		eventually(t, "the server sessions", func() bool { o, _, _ := rec.counts(); return o == want })
		srv.Close()
		_, closes, _ := rec.counts()
		assert.Equal(t, want, closes, "Close returns after every OnClose")
		assert.True(t, srv.IsClosed())
		if !tr.packet { // a connected UDP socket does not see its server go
			cliRec.waitClosed(t, 10)
		}
	})
}

// A peer that sends half a frame and stalls is cut off after the read
// timeout; an idle peer is not.
func TestPartialFrameTimeout(t *testing.T) {
	rec := newRecorder(true)
	srv := startServer(t, row("tcp").newServer(t), withCodec(rec, func(s getty.Session) { s.SetReadTimeout(200 * time.Millisecond) }))
	idle := rawDial(t, srv)
	c := rawDial(t, srv)
	_, _ = c.Write(frame("hello")[:6])
	start := time.Now()
	waitEOF(t, c)
	assert.Less(t, time.Since(start), 3*time.Second)
	rec.waitClosed(t, 1)
	_, _, errs := rec.counts()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], getty.ErrReadTimeout)
	// The idle peer outlived several read timeouts and is still served.
	time.Sleep(500 * time.Millisecond)
	_, _ = idle.Write(frame("alive"))
	assert.Equal(t, "alive", readFrame(t, idle))
}

func TestShutdown(t *testing.T) {
	rec := newRecorder(true)
	srv := row("tcp").newServer(t)
	srv.RunEventLoop(withCodec(rec))
	c := rawDial(t, srv)
	_, _ = c.Write(frame("x"))
	assert.Equal(t, "x", readFrame(t, c))
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	waitEOF(t, c)
	_, closes, _ := rec.counts()
	assert.Equal(t, 1, closes)
	_, err := net.Dial("tcp", srv.Addr().String())
	assert.Error(t, err, "listener closed")
	srv.Close() // idempotent after Shutdown
}

// An address without a port listens on a free one, as upstream.
func TestListenAddressWithoutPort(t *testing.T) {
	srv := startServer(t, getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1")), withCodec(newRecorder(true)))
	c := rawDial(t, srv)
	_, _ = c.Write(frame("p"))
	assert.Equal(t, "p", readFrame(t, c))
}

// A peer that streams without pause, every write ending in the middle of a
// package, is not cut off by the read timeout: it bounds one package, not
// a busy connection.
func TestSteadyStreamSplitPackages(t *testing.T) {
	rec := newRecorder(true)
	srv := startServer(t, row("tcp").newServer(t), withCodec(rec, func(s getty.Session) { s.SetReadTimeout(150 * time.Millisecond) }))
	c := rawDial(t, srv)
	go func() { // drain the echoes
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	// Every write carries the end of one package and the start of the
	// next, so no read ever ends on a package boundary.
	frames := make([][]byte, 200)
	for i := range frames {
		frames[i] = frame(fmt.Sprintf("package %03d", i))
	}
	_, err := c.Write(frames[0][:5])
	require.NoError(t, err)
	for i := 0; i < len(frames); i++ {
		chunk := append([]byte(nil), frames[i][5:]...)
		if i+1 < len(frames) {
			chunk = append(chunk, frames[i+1][:5]...)
		}
		_, err := c.Write(chunk)
		require.NoError(t, err)
		time.Sleep(3 * time.Millisecond) // about 600 ms in all, 4 read timeouts
	}
	eventually(t, "200 packages", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.msgs) == 200 })
	_, closes, errs := rec.counts()
	assert.Zero(t, closes)
	assert.Empty(t, errs)
}

// Shutdown honours its context even while a session is stuck flushing to
// a peer that does not read: it returns ctx.Err() on time and the
// sessions still close.
func TestShutdownStuckFlush(t *testing.T) {
	sessCh := make(chan getty.Session, 1)
	rec := newRecorder(false)
	srv := row("tcp").newServer(t)
	srv.RunEventLoop(withCodec(rec, func(s getty.Session) { s.SetWaitTime(10 * time.Second); sessCh <- s }))
	c := rawDial(t, srv) // never reads
	s := <-sessCh
	writing := make(chan struct{})
	go func() {
		close(writing)
		big := strings.Repeat("x", 60<<10)
		for i := 0; i < 1000; i++ {
			if _, _, err := s.WritePkg(big, 10*time.Second); err != nil {
				return
			}
		}
	}()
	<-writing
	time.Sleep(200 * time.Millisecond) // the socket buffers fill, the writer blocks
	ctx, cancel := contextWithTimeout(100 * time.Millisecond)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
	waitEOF(t, c)
	rec.waitClosed(t, 1)
	srv.Close()
}
