package getty_test

// Slow readers and slowloris peers: a peer that does not read, or drips a
// package, is bounded by the timeouts. See reliability_test.go.

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// relSessionGrabber hands the server's sessions to the test.
func relSessionGrabber(l getty.EventListener, ch chan<- getty.Session, extra ...func(getty.Session)) getty.NewSessionCallback {
	return withCodec(l, append([]func(getty.Session){func(s getty.Session) {
		s.SetMaxMsgLen(128 << 10)
		ch <- s
	}}, extra...)...)
}

// A peer that never reads: WritePkg(64 KiB, 200 ms) fails within about its
// timeout, the session closes, and the heap does not grow with the backlog.
func TestReliabSlowReader(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		const timeout = 200 * time.Millisecond
		sessCh := make(chan getty.Session, 1)
		rec := newRelErrRecorder(false)
		srv := startServer(t, tr.newServer(t), relSessionGrabber(rec, sessCh))
		p := relConnect(t, relTargetOf(t, tr, srv)) // never reads
		s := <-sessCh
		pkg := bytes.Repeat([]byte{'x'}, 64<<10)

		heap0 := relHeapAfterGC()
		var (
			err     error
			n       int
			lastDur time.Duration
			worst   time.Duration
		)
		start := time.Now()
		for n = 0; n < 4000 && time.Since(start) < 30*time.Second; n++ {
			t0 := time.Now()
			_, _, err = s.WritePkg(pkg, timeout)
			lastDur = time.Since(t0)
			worst = max(worst, lastDur)
			if err != nil {
				break
			}
		}
		require.Error(t, err, "WritePkg kept succeeding on a peer that never reads")
		t.Logf("%d packages of 64 KiB (%d MiB) taken before the failure; failing call took %v (worst %v): %v",
			n, n*len(pkg)>>20, lastDur.Round(time.Millisecond), worst.Round(time.Millisecond), err)
		assert.Less(t, worst, 2*time.Second, "a WritePkg(pkg, %v) call took too long", timeout)
		var ne net.Error // gorilla hides the cause of a ws timeout, so not os.ErrDeadlineExceeded there
		assert.True(t, errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout(),
			"the write error is a timeout: %v", err)
		eventually(t, "the session to close", s.IsClosed)
		errs := rec.waitClose(t, p.tcp.LocalAddr().String())
		require.Len(t, errs, 1)
		_, _, err = s.WritePkg(pkg, timeout)
		assert.ErrorIs(t, err, getty.ErrSessionClosed)
		heap1 := relHeapAfterGC()
		growth := int64(heap1) - int64(heap0)
		t.Logf("heap %d KiB -> %d KiB", heap0>>10, heap1>>10)
		assert.Less(t, growth, int64(4<<20), "heap growth after writing to a slow reader")
	}, connected)
}

// Writers with different timeouts on one session that a peer does not
// read: each call is bounded by its own timeout, not by the one of the
// writer ahead of it.
func TestReliabSlowReaderMixedTimeouts(t *testing.T) {
	runAtOnce(t, func(t *testing.T, tr transport) {
		sessCh := make(chan getty.Session, 1)
		srv := startServer(t, tr.newServer(t), relSessionGrabber(getty.BaseListener{}, sessCh))
		relConnect(t, relTargetOf(t, tr, srv)) // never reads
		s := <-sessCh
		pkg := bytes.Repeat([]byte{'x'}, 16<<10)

		// A patient writer fills the socket buffers and waits (3 s).
		patient := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < 4000 && err == nil; i++ {
				_, _, err = s.WritePkg(pkg, 3*time.Second)
			}
			patient <- err
		}()
		time.Sleep(500 * time.Millisecond) // the buffers are full by now
		start := time.Now()
		_, _, err := s.WritePkg("hurried", 200*time.Millisecond)
		took := time.Since(start)
		t.Logf("WritePkg(.., 200ms) behind a blocked writer returned after %v: %v", took.Round(time.Millisecond), err)
		assert.Error(t, err)
		assert.Less(t, took, 2*time.Second, "a 200 ms WritePkg waited for the writer ahead of it")
		s.Close()
		select {
		case <-patient:
		case <-time.After(10 * time.Second):
			t.Fatal("the patient writer never returned")
		}
	}, connected)
}

// relDrip is how a slowloris peer starts and what it drips.
type relDrip struct {
	name  string
	row   string
	phase string // data, wsframe: after the handshake; handshake: TLS; upgrade: HTTP
}

func (d relDrip) bytes() []byte {
	switch d.phase {
	case "data":
		return frame("hello, slowly")
	case "wsframe": // a 14-byte header (64-bit length, mask), then the payload
		b := []byte{0x82, 0x80 | 127}
		b = binary.BigEndian.AppendUint64(b, 9)
		b = append(b, 0, 0, 0, 0)
		return append(b, frame("hello")...)
	case "handshake": // a TLS handshake record header declaring 512 bytes
		return append([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, make([]byte, 512)...)
	case "upgrade":
		return []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	}
	panic(d.phase)
}

// One byte every 500 ms: the connection is closed within the read timeout
// (or handshake timeout) plus slack, while a normal client keeps connecting
// and echoing quickly.
func TestReliabSlowloris(t *testing.T) {
	const (
		limit  = time.Second
		drip   = 500 * time.Millisecond
		peers  = 8
		slack  = 1500 * time.Millisecond
		giveUp = 8 * time.Second
	)
	drips := []relDrip{
		{"tcp data", "tcp", "data"},
		{"tls data", "tls", "data"},
		{"tls handshake", "tls", "handshake"},
		{"ws upgrade", "ws", "upgrade"},
		{"ws frame header", "ws", "wsframe"},
		{"wss handshake", "wss", "handshake"},
		{"wss upgrade", "wss", "upgrade"},
	}
	relSilence(t) // once for all the cases, which run at once
	atOnce(t, drips, func(d relDrip) string { return d.name }, func(t *testing.T, d relDrip) {
		tr := row(d.row)
		rec := newRelErrRecorder(true)
		srv := startServer(t, tr.newServer(t, getty.WithServerHandshakeTimeout(limit)),
			withCodec(rec, func(s getty.Session) { s.SetReadTimeout(limit) }))
		tg := relTargetOf(t, tr, srv)

		type result struct {
			addr string
			took time.Duration
			err  error
		}
		results := make(chan result, peers)
		for i := 0; i < peers; i++ {
			go func() {
				var (
					p   *relPeer
					err error
				)
				if d.phase == "data" || d.phase == "wsframe" {
					p, err = tg.connect()
				} else {
					var tc *net.TCPConn
					if tc, err = tg.dialTCP(nil); err == nil {
						p = &relPeer{tcp: tc, c: tc}
						if d.row == "wss" && d.phase == "upgrade" {
							tlc := tls.Client(tc, tg.tlsCfg)
							err = tlc.Handshake()
							p.c = tlc
						}
					}
				}
				if err != nil {
					results <- result{err: err}
					return
				}
				defer p.Close()
				closed := make(chan time.Time, 1)
				go func() {
					_, _ = io.Copy(io.Discard, p.c)
					closed <- time.Now()
				}()
				b := d.bytes()
				start := time.Now()
				tick := time.NewTicker(drip)
				defer tick.Stop()
				deadline := time.After(giveUp)
				for i := 0; ; {
					if i < len(b) {
						_ = p.c.SetWriteDeadline(time.Now().Add(time.Second))
						if _, err := p.c.Write(b[i : i+1]); err == nil {
							i++
						}
					}
					select {
					case at := <-closed:
						results <- result{addr: p.tcp.LocalAddr().String(), took: at.Sub(start)}
						return
					case <-deadline:
						p.Close()
						<-closed
						results <- result{addr: p.tcp.LocalAddr().String(), err: fmt.Errorf("still open after %v", giveUp)}
						return
					case <-tick.C:
					}
				}
			}()
		}

		// A normal client meanwhile.
		var lat []time.Duration
		for i := 0; i < 10; i++ {
			t0 := time.Now()
			p, err := tg.connect()
			require.NoError(t, err)
			err = p.echo("normal")
			lat = append(lat, time.Since(t0))
			p.Close()
			require.NoError(t, err)
			time.Sleep(100 * time.Millisecond)
		}
		worst := lat[0]
		for _, l := range lat {
			worst = max(worst, l)
		}
		t.Logf("normal client: connect+echo %v first, %v worst, during the drip", lat[0].Round(time.Microsecond), worst.Round(time.Microsecond))
		assert.Less(t, worst, time.Second, "a normal client was slowed down by the slowloris peers")

		var slowest time.Duration
		for i := 0; i < peers; i++ {
			r := <-results
			if !assert.NoError(t, r.err, "slowloris peer %s", r.addr) {
				continue
			}
			slowest = max(slowest, r.took)
			assert.Less(t, r.took, limit+slack, "slowloris peer %s cut after %v", r.addr, r.took)
			assert.Greater(t, r.took, limit*8/10, "slowloris peer %s cut before the timeout", r.addr)
			if d.phase == "data" {
				errs := rec.waitClose(t, r.addr)
				if assert.Len(t, errs, 1) {
					assert.ErrorIs(t, errs[0], getty.ErrReadTimeout)
				}
			}
		}
		t.Logf("%d slowloris peers cut after at most %v (limit %v)", peers, slowest.Round(time.Millisecond), limit)
	})
}
