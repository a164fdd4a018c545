package getty_test

// Panics everywhere: a panic in any user callback closes that session only
// and is counted. See reliability_test.go.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/race"
)

// relPanicKinds are the places a user's code can panic; a misbehaving peer
// dialing from 127.0.3.<k+1> makes the server panic in relPanicKinds[k].
var relPanicKinds = []string{
	"NewSessionCallback", "OnOpen", "OnMessage", "OnCron", "OnError", "OnClose", "Reader.Read", "Writer.Write",
}

type relKindKey struct{}

func relKind(s getty.Session) string {
	k, _ := s.GetAttribute(relKindKey{}).(string)
	return k
}

// relPanicListener echoes, and panics where its session's kind says.
type relPanicListener struct{ *relErrRecorder }

func (l relPanicListener) OnOpen(s getty.Session) error {
	if relKind(s) == "OnOpen" {
		panic("boom in OnOpen")
	}
	return l.relErrRecorder.OnOpen(s)
}

func (l relPanicListener) OnMessage(s getty.Session, pkg any) {
	if relKind(s) == "OnMessage" {
		panic("boom in OnMessage")
	}
	l.relErrRecorder.OnMessage(s, pkg)
}

func (l relPanicListener) OnCron(s getty.Session) {
	if relKind(s) == "OnCron" {
		panic("boom in OnCron")
	}
}

func (l relPanicListener) OnError(s getty.Session, err error) {
	l.relErrRecorder.OnError(s, err)
	if relKind(s) == "OnError" {
		panic("boom in OnError")
	}
}

func (l relPanicListener) OnClose(s getty.Session) {
	l.relErrRecorder.OnClose(s)
	if relKind(s) == "OnClose" {
		panic("boom in OnClose")
	}
}

// relPanicCodec is LengthFieldCodec with panics in Read and Write (both
// write paths: Write and AppendPkg).
type relPanicCodec struct{ *getty.LengthFieldCodec }

func (c relPanicCodec) Read(s getty.Session, b []byte) (any, int, error) {
	if relKind(s) == "Reader.Read" {
		panic("boom in Read")
	}
	return c.LengthFieldCodec.Read(s, b)
}

func (c relPanicCodec) Write(s getty.Session, pkg any) ([]byte, error) {
	if relKind(s) == "Writer.Write" {
		panic("boom in Write")
	}
	return c.LengthFieldCodec.Write(s, pkg)
}

func (c relPanicCodec) AppendPkg(s getty.Session, dst []byte, pkg any) ([]byte, error) {
	if relKind(s) == "Writer.Write" {
		panic("boom in AppendPkg")
	}
	return c.LengthFieldCodec.AppendPkg(s, dst, pkg)
}

// waitCloseErr is waitClose for any goroutine: it reports instead of failing.
func (r *relErrRecorder) waitCloseErr(addr string, timeout time.Duration) (closes int, errs []error, err error) {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		closes, errs = r.closes[addr], append([]error(nil), r.errs[addr]...)
		r.mu.Unlock()
		if closes > 0 {
			return closes, errs, nil
		}
		if time.Now().After(deadline) {
			return 0, errs, fmt.Errorf("no OnClose for %s within %v", addr, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// relEchoLoad runs echoes on one peer with up to window frames in flight
// and checks that each of n numbered frames comes back exactly once (in any
// order when ordered is false).
func relEchoLoad(p *relPeer, n, window int, ordered bool) error {
	seen := make([]bool, n)
	sent, got := 0, 0
	for sent < min(window, n) {
		if err := p.send(strconv.Itoa(sent)); err != nil {
			return fmt.Errorf("send %d: %w", sent, err)
		}
		sent++
	}
	for got < n {
		m, err := p.recv(20 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d of %d echoes: %w", got, n, err)
		}
		i, err := strconv.Atoi(m)
		if err != nil || i < 0 || i >= n {
			return fmt.Errorf("bad echo %q", m)
		}
		if seen[i] {
			return fmt.Errorf("echo %d duplicated", i)
		}
		if ordered && i != got {
			return fmt.Errorf("echo %d out of order (want %d)", i, got)
		}
		seen[i] = true
		got++
		if sent < n {
			if err := p.send(strconv.Itoa(sent)); err != nil {
				return fmt.Errorf("send %d: %w", sent, err)
			}
			sent++
		}
	}
	return nil
}

// relCheckPanicPeer makes the server panic in kind for one session and
// checks the outcome; it runs on its own goroutine and reports with Errorf.
func relCheckPanicPeer(t *testing.T, tg relTarget, rec *relErrRecorder, k int) (addr string) {
	kind := relPanicKinds[k]
	p, err := tg.connectFrom(relPeerIP(3, k))
	if err != nil {
		if kind == "NewSessionCallback" || kind == "OnOpen" {
			return "" // refused while the client finished its handshake
		}
		t.Errorf("%s: connect: %v", kind, err)
		return ""
	}
	defer p.Close()
	addr = p.tcp.LocalAddr().String()
	switch kind {
	case "OnError":
		_ = p.sendBytes([]byte{0x40, 0, 0, 0}) // 1 GiB: fails the session
	case "OnClose":
		err := p.echo("x")
		assert.NoErrorf(t, err, "%s: echo", kind)
		p.Close()
	case "OnMessage", "Reader.Read", "Writer.Write":
		_ = p.send("trigger")
	}
	if _, err := p.waitClosed(10 * time.Second); err != nil {
		t.Errorf("%s: peer not disconnected: %v", kind, err)
		return addr
	}
	if kind == "NewSessionCallback" || kind == "OnOpen" {
		return addr // checked at the end: never opened, never closed
	}
	closes, errs, err := rec.waitCloseErr(addr, 10*time.Second)
	if err != nil {
		t.Errorf("%s: %v", kind, err)
		return addr
	}
	assert.EqualValuesf(t, 1, closes, "%s: %d OnClose calls", kind, closes)
	switch kind {
	case "OnClose":
		assert.EqualValuesf(t, 0, len(errs), "%s: orderly close reported errors %v", kind, errs)
	case "OnError":
		assert.Falsef(t, len(errs) != 1 || errors.Is(errs[0], getty.ErrPanic), "%s: want the decode error, got %v", kind, errs)
	default:
		var pe *getty.PanicError
		switch {
		case len(errs) != 1:
			t.Errorf("%s: %d OnError calls: %v", kind, len(errs), errs)
		case !errors.Is(errs[0], getty.ErrPanic):
			t.Errorf("%s: OnError error does not match ErrPanic: %v", kind, errs[0])
		case !errors.As(errs[0], &pe) || pe.Callback != kind || !strings.Contains(fmt.Sprint(pe.Value), "boom") || len(pe.Stack) == 0:
			t.Errorf("%s: PanicError %+v", kind, pe)
		}
	}
	return addr
}

// Panics in every callback and in the codec, inline and on pools: the
// process survives, OnError carries the panic, and 50 other sessions
// complete their echoes without loss meanwhile.
func TestReliabPanics(t *testing.T) {
	sessions, echoes, rounds := 50, 1000, 3
	// -race makes an echo about 5x dearer: 200 on every row under -race
	// (41 s for the whole table at 1,000; 1,000 on tcp alone was a third
	// of make test's 16 s here), still well past the panicking sessions,
	// which are done within the first echoes' time.
	reduced := race.Enabled || testing.Short()
	modes := []struct {
		name    string
		opts    func() ([]getty.ServerOption, func())
		ordered bool
	}{
		{"inline", func() ([]getty.ServerOption, func()) { return nil, func() {} }, true},
		{"workers", func() ([]getty.ServerOption, func()) {
			return []getty.ServerOption{getty.WithServerWorkerPool(4)}, func() {}
		}, true},
		{"taskpool", func() ([]getty.ServerOption, func()) {
			pool := gxsync.NewTaskPoolSimple(4)
			return []getty.ServerOption{getty.WithServerTaskPool(pool)}, pool.Close
		}, false},
	}
	run(t, func(t *testing.T, tr transport) {
		echoes := echoes
		if reduced {
			echoes = 200
		}
		for _, mode := range modes {
			t.Run(mode.name, func(t *testing.T) {
				log := relSilence(t)
				opts, stop := mode.opts()
				t.Cleanup(stop) // after the server's Close (cleanups run last-in first-out)
				rec := newRelErrRecorder(true)
				l := relPanicListener{rec}
				srv := startServer(t, tr.newServer(t, opts...), func(s getty.Session) error {
					kind := ""
					if k := relPeerIndex(s.RemoteAddr(), 3); k >= 0 {
						kind = relPanicKinds[k]
					}
					if kind == "NewSessionCallback" {
						panic("boom in NewSessionCallback")
					}
					s.SetAttribute(relKindKey{}, kind)
					s.SetPkgHandler(relPanicCodec{&getty.LengthFieldCodec{}})
					s.SetEventListener(l)
					s.SetMaxMsgLen(64 << 10)
					if kind == "OnCron" {
						s.SetCronPeriod(20)
					}
					return nil
				})
				tg := relTargetOf(t, tr, srv)
				peers := make([]*relPeer, sessions)
				for i := range peers {
					peers[i] = relConnect(t, tg)
				}

				start := time.Now()
				var wg sync.WaitGroup
				for _, p := range peers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := relEchoLoad(p, echoes, 16, mode.ordered)
						assert.NoError(t, err, "good session")
					}()
				}
				var bad sync.WaitGroup
				var badAddrs sync.Map // addr -> kind
				for r := 0; r < rounds; r++ {
					for k := range relPanicKinds {
						bad.Add(1)
						go func() {
							defer bad.Done()
							if a := relCheckPanicPeer(t, tg, rec, k); a != "" {
								badAddrs.Store(a, relPanicKinds[k])
							}
						}()
					}
					time.Sleep(20 * time.Millisecond)
				}
				bad.Wait()
				wg.Wait()
				t.Logf("%d sessions x %d echoes with %d panicking sessions in %v",
					sessions, echoes, rounds*len(relPanicKinds), time.Since(start).Round(time.Millisecond))

				// Still serving after all that.
				require.NoError(t, relConnect(t, tg).echo("still here"))
				for _, p := range peers {
					p.Close()
				}
				rec.mu.Lock()
				badAddrs.Range(func(a, k any) bool {
					if k == "NewSessionCallback" || k == "OnOpen" {
						assert.Zero(t, rec.opens[a.(string)]+rec.closes[a.(string)], "%s: refused session opened or closed", k)
					}
					return true
				})
				rec.mu.Unlock()
				assert.GreaterOrEqual(t, log.count("boom in OnError"), rounds, "panic in OnError logged")
				assert.GreaterOrEqual(t, log.count("boom in OnClose"), rounds, "panic in OnClose logged")
			})
		}
	}, connected)
}

// Every recovered panic is counted in the endpoint's statistics, the
// ones that keep a session from opening included.
func TestReliabPanicsCounted(t *testing.T) {
	relSilence(t)
	tr := row("tcp")
	rec := newRelErrRecorder(true)
	l := relPanicListener{rec}
	srv := startServer(t, tr.newServer(t), func(s getty.Session) error {
		kind := ""
		if k := relPeerIndex(s.RemoteAddr(), 3); k >= 0 {
			kind = relPanicKinds[k]
		}
		if kind == "NewSessionCallback" {
			panic("boom in NewSessionCallback")
		}
		s.SetAttribute(relKindKey{}, kind)
		s.SetPkgHandler(relPanicCodec{&getty.LengthFieldCodec{}})
		s.SetEventListener(l)
		if kind == "OnCron" {
			s.SetCronPeriod(20)
		}
		return nil
	})
	tg := relTargetOf(t, tr, srv)
	for k := range relPanicKinds {
		relCheckPanicPeer(t, tg, rec, k)
	}
	var st getty.EndpointStats
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		st, _ = getty.EndpointStatsOf(srv)
		if st.Panics >= uint64(len(relPanicKinds)) {
			break
		}
	}
	assert.Equal(t, uint64(len(relPanicKinds)), st.Panics, "EndpointStats.Panics after one panic in each of %v", relPanicKinds)
}
