package getty

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/require"
)

// writeCountingListener hands out connections that count their Write calls
// (the send queue's write(2)s: one pending buffer is one Write).
type writeCountingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeCountingConn{Conn: c, n: &l.writes}, nil
}

type writeCountingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *writeCountingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// gateEcho holds each round's OnMessage calls until `per` of them run at
// once, then lets them all echo together, as handlers that block and wake
// at the same time.
type gateEcho struct {
	BaseListener
	per     int64
	arrived atomic.Int64
	gates   []chan struct{} // one per round
}

func (g *gateEcho) OnMessage(s Session, pkg any) {
	k := g.arrived.Add(1) - 1
	gate := g.gates[k/g.per]
	if k%g.per == g.per-1 {
		close(gate)
	}
	select {
	case <-gate:
	case <-time.After(10 * time.Second):
	}
	_, _, _ = s.WritePkg(pkg, 0)
}

// Unordered dispatch: the replies of handlers that run at once and finish
// together are gathered into a few writes, not one write each
// (sendQueue.gather), and every reply arrives whole. How few depends on the
// scheduler (a burst usually takes 1-3 writes, at most about half as many
// as replies were seen with -race or GOMAXPROCS 4; one write each without
// gathering), so the bound is on the sum over several rounds.
func TestUnorderedRepliesOfConcurrentHandlersGathered(t *testing.T) {
	const n, rounds = 64, 6
	modes := map[string]func(t *testing.T) []ServerOption{
		"builtin": func(*testing.T) []ServerOption {
			return []ServerOption{WithServerWorkerPool(n), WithServerOrderedDispatch(false)}
		},
		"gost": func(t *testing.T) []ServerOption {
			p := gxsync.NewTaskPoolSimple(n)
			t.Cleanup(p.Close)
			return []ServerOption{WithServerTaskPool(p)}
		},
	}
	for name, opts := range modes {
		t.Run(name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ln := &writeCountingListener{Listener: inner}
			g := &gateEcho{per: n}
			for range rounds {
				g.gates = append(g.gates, make(chan struct{}))
			}
			srv := NewTCPServer(append(opts(t), WithListener(ln))...)
			srv.RunEventLoop(func(s Session) error {
				s.SetPkgHandler(&LengthFieldCodec{})
				s.SetEventListener(g)
				return nil
			})
			t.Cleanup(srv.Close)
			c, err := net.Dial("tcp", inner.Addr().String())
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for r := 0; r < rounds; r++ {
				var batch []byte
				for i := 0; i < n; i++ {
					p := fmt.Sprintf("round %d request %02d", r, i)
					batch = binary.BigEndian.AppendUint32(batch, uint32(len(p)))
					batch = append(batch, p...)
				}
				_, err = c.Write(batch)
				require.NoError(t, err)
				got := map[string]bool{}
				for i := 0; i < n; i++ {
					got[readGatherReply(t, br)] = true
				}
				require.Lenf(t, got, n, "round %d: distinct replies", r)
			}
			w := ln.writes.Load()
			t.Logf("%d replies, %d writes", n*rounds, w)
			require.LessOrEqualf(t, w, int64(n*rounds/3), "%d replies of handlers that finished together, %d at a time, took %d writes",
				n*rounds, n, w)
		})
	}
}

func readGatherReply(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var h [4]byte
	_, err := io.ReadFull(br, h[:])
	require.NoError(t, err)
	p := make([]byte, binary.BigEndian.Uint32(h[:]))
	_, err = io.ReadFull(br, p)
	require.NoError(t, err)
	return string(p)
}
