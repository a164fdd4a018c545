package getty

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
)

// wsWriteEcho echoes every package.
type wsWriteEcho struct{ BaseListener }

func (wsWriteEcho) OnMessage(s Session, pkg any) { _, _, _ = s.WritePkg(pkg, 0) }

// wsWriteServer starts a WebSocket echo server over loopback, dials it with
// a raw client, and returns the client and the server side's wsNetConn,
// whose socketWrites counts the writes that reached the socket.
func wsWriteServer(t *testing.T, opts ...ServerOption) (net.Conn, *bufio.Reader, *wsNetConn) {
	t.Helper()
	srv := NewWSServer(append([]ServerOption{WithLocalAddress("127.0.0.1:0")}, opts...)...)
	conns := make(chan *wsNetConn, 1)
	srv.RunEventLoop(func(s Session) error {
		s.SetPkgHandler(&LengthFieldCodec{})
		s.SetEventListener(wsWriteEcho{})
		s.SetMaxMsgLen(1 << 20)
		conns <- s.(*session).tr.(*wsTransport).nc
		return nil
	})
	t.Cleanup(srv.Close)
	addr := srv.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	resp.Body.Close()
	select {
	case nc := <-conns:
		if nc == nil {
			t.Fatal("the session's connection is not a wsNetConn")
		}
		return c, br, nc
	case <-time.After(10 * time.Second):
		t.Fatal("no session")
	}
	return nil, nil, nil
}

// wsPkg is a LengthFieldCodec package holding p.
func wsPkg(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

// wsReadFrame reads one unmasked server frame and returns its payload.
func wsReadFrame(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	first, p := wsReadAnyFrame(t, br)
	if first != 0x82 {
		t.Fatalf("frame %#x, want a final binary frame", first)
	}
	return p
}

// wsReadAnyFrame reads one unmasked frame: its first byte and its payload.
func wsReadAnyFrame(t *testing.T, br *bufio.Reader) (byte, []byte) {
	t.Helper()
	var h [10]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		t.Fatal(err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		_, _ = io.ReadFull(br, h[2:4])
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		_, _ = io.ReadFull(br, h[2:10])
		n = binary.BigEndian.Uint64(h[2:10])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatal(err)
	}
	return h[0], p
}

var wsWriteModes = []struct {
	name      string
	opts      func(t *testing.T) []ServerOption
	maxWrites uint64 // for a batch of replies
}{
	{"inline", func(*testing.T) []ServerOption { return nil }, 1},
	// Ordered: a queued message holds a cork until its drain has begun
	// (session.post), so the reader's batch and the drains' overlap to
	// the last reply.
	{"workerpool", func(*testing.T) []ServerOption { return []ServerOption{WithServerWorkerPool(2)} }, 1},
	// Unordered: a reply waits for the tasks queued behind it to start,
	// not for their handlers, so the last task's reply may leave alone.
	{"workerpool-unordered", func(*testing.T) []ServerOption {
		return []ServerOption{WithServerWorkerPool(1), WithServerOrderedDispatch(false)}
	}, 2},
	// A gost pool is unordered by default (as upstream): the same as above.
	{"gost", func(t *testing.T) []ServerOption {
		p := gxsync.NewTaskPoolSimple(1)
		t.Cleanup(p.Close)
		return []ServerOption{WithServerTaskPool(p)}
	}, 2},
}

// The replies to messages that arrive together, and to the packages of one
// message, leave in one write (at most two with an unordered pool), in
// every dispatch mode, each its own frame and in order.
func TestWSRepliesGatheredInEveryMode(t *testing.T) {
	const n = 16
	for _, m := range wsWriteModes {
		t.Run(m.name, func(t *testing.T) {
			c, br, nc := wsWriteServer(t, m.opts(t)...)
			for _, together := range []string{"messages", "packages"} {
				var batch, msg []byte
				for i := 0; i < n; i++ {
					p := wsPkg([]byte(fmt.Sprintf("%s %d", together, i)))
					if together == "messages" {
						batch = append(batch, wsTestFrame(0x82, p)...)
					} else {
						msg = append(msg, p...)
					}
				}
				if together == "packages" {
					batch = wsTestFrame(0x82, msg)
				}
				before := nc.socketWrites()
				if _, err := c.Write(batch); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					want := wsPkg([]byte(fmt.Sprintf("%s %d", together, i)))
					if got := wsReadFrame(t, br); !bytes.Equal(got, want) {
						t.Fatalf("%s: reply %d is %q, want %q", together, i, got, want)
					}
				}
				if w := nc.socketWrites() - before; w < 1 || w > m.maxWrites {
					t.Errorf("%s: %d replies took %d writes, want 1..%d", together, n, w, m.maxWrites)
				}
			}
		})
	}
}

// A large message leaves in one writev: gorilla writes its header and first
// bytes apart from the rest of the payload, and wsNetConn holds both.
func TestWSLargeWriteIsOneWritev(t *testing.T) {
	c, br, nc := wsWriteServer(t)
	// 40 KiB: gorilla's WriteMessage; 100 KiB: the codec's head and body
	// through NextWriter (a frame of its own for the body, and a last
	// empty one).
	for _, size := range []int{40 << 10, 100 << 10} {
		p := bytes.Repeat([]byte{byte(size)}, size)
		before := nc.socketWrites()
		if _, err := c.Write(wsTestFrame(0x82, wsPkg(p))); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for len(got) < 4+size {
			_, f := wsReadAnyFrame(t, br)
			got = append(got, f...)
		}
		if !bytes.Equal(got, wsPkg(p)) {
			t.Fatalf("%d bytes: the echo differs", size)
		}
		if w := nc.socketWrites() - before; w != 1 {
			t.Errorf("a %d-byte message took %d writes, want one writev", size, w)
		}
	}
}

// lockWithin's pooled timers: one that timed out, and one stopped after
// the lock came, both serve the next wait.
func TestWriteLockPooledTimers(t *testing.T) {
	l := newWriteLock()
	l.lock()
	for i := 0; i < 3; i++ {
		if l.lockWithin(time.Millisecond) {
			t.Fatal("locked a held lock")
		}
	}
	got := make(chan bool)
	go func() { got <- l.lockWithin(time.Hour) }()
	l.unlock()
	if !<-got {
		t.Fatal("the waiter did not get the lock")
	}
	if l.lockWithin(time.Millisecond) {
		t.Fatal("locked a held lock after a timer was reused")
	}
	l.unlock()
	if !l.lockWithin(time.Millisecond) {
		t.Fatal("a free lock was not taken")
	}
}

// A server's data frames are written by wsNetConn itself: none may follow
// a close frame gorilla wrote (on a protocol error it closes by itself).
func TestWSNoDataFrameAfterClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	nc := newWSNetConn(c, false)
	defer nc.Close()
	if _, err := nc.writeMessage(2, []byte("hi"), [][]byte{[]byte("!")}, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write([]byte{0x88, 2, 0x03, 0xea}); err != nil { // gorilla's close frame, 1002
		t.Fatal(err)
	}
	if _, err := nc.writeMessage(2, []byte("late"), nil, time.Second); err == nil {
		t.Fatal("a data frame was written after the close frame")
	}
	nc.Close()
	got, _ := io.ReadAll(peer)
	want := []byte{0x82, 3, 'h', 'i', '!', 0x88, 2, 0x03, 0xea}
	if !bytes.Equal(got, want) {
		t.Fatalf("the peer read % x, want % x", got, want)
	}
}

// A read that brings a message marks the session active (wsNetConn, once
// per read however many messages it holds).
func TestWSReadMarksActive(t *testing.T) {
	c, br, nc := wsWriteServer(t)
	echo := func(p string) {
		if _, err := c.Write(wsTestFrame(0x82, wsPkg([]byte(p)))); err != nil {
			t.Fatal(err)
		}
		if got := wsReadFrame(t, br); !bytes.Equal(got, wsPkg([]byte(p))) {
			t.Fatalf("echo %q, want %q", got, wsPkg([]byte(p)))
		}
	}
	echo("first") // the session is reading now
	s := nc.t.session().(*session)
	s.active.Store(0)
	start := time.Now()
	echo("second")
	if a := s.GetActive(); a.Before(start) {
		t.Fatalf("active at %v, before the message was sent (%v)", a, start)
	}
}
