package getty_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/race"
)

func TestDispatchBuiltinPoolUnorderedLosesNothing(t *testing.T) {
	dispatchOrder(t, false, getty.WithServerWorkerPool(8), getty.WithServerOrderedDispatch(false))
}

// barrierEcho holds every OnMessage until want of them are running at once,
// then echoes: only dispatch that runs one session's messages in parallel
// gets through.
type barrierEcho struct {
	getty.BaseListener
	want    int64
	arrived atomic.Int64
	all     chan struct{}
	stuck   atomic.Bool
}

func (b *barrierEcho) OnMessage(s getty.Session, pkg any) {
	if b.arrived.Add(1) == b.want {
		close(b.all)
	}
	select {
	case <-b.all:
	case <-time.After(waitLimit):
		b.stuck.Store(true)
	}
	_, _, _ = s.WritePkg(pkg, 0)
}

// Unordered dispatch runs one connection's messages in parallel, the case
// of many calls multiplexed over one connection whose handlers block.
func TestDispatchUnorderedRunsOneSessionInParallel(t *testing.T) {
	const inFlight = 8
	modes := map[string]func() []getty.ServerOption{
		"builtin": func() []getty.ServerOption {
			return []getty.ServerOption{getty.WithServerWorkerPool(inFlight), getty.WithServerOrderedDispatch(false)}
		},
		"gost": func() []getty.ServerOption {
			p := gxsync.NewTaskPoolSimple(inFlight)
			t.Cleanup(p.Close)
			return []getty.ServerOption{getty.WithServerTaskPool(p)}
		},
	}
	for name, opts := range modes {
		t.Run(name, func(t *testing.T) {
			l := &barrierEcho{want: inFlight, all: make(chan struct{})}
			srv := startServer(t, row("tcp").newServer(t, opts()...), withCodec(l))
			c := rawDial(t, srv)
			sendNumbered(t, c, inFlight)
			got := map[string]bool{}
			for i := 0; i < inFlight; i++ {
				got[readFrame(t, c)] = true
			}
			assert.Len(t, got, inFlight, "replies")
			assert.False(t, l.stuck.Load(), "messages of one session did not run in parallel")
		})
	}
}

// echoRig is an echo server with opts and a raw peer; round is one
// request and its reply.
func echoRig(tb testing.TB, opts ...getty.ServerOption) (round func()) {
	srv := getty.NewTCPServer(append(opts, getty.WithLocalAddress("127.0.0.1:0"))...)
	srv.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(benchEcho{})
		return nil
	})
	tb.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	req := make([]byte, 4+128)
	binary.BigEndian.PutUint32(req, 128)
	resp := make([]byte, len(req))
	return func() {
		if _, err := c.Write(req); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			tb.Fatal(err)
		}
	}
}

// Every dispatch mode echoes without allocating per message (counted
// process-wide; the raw peer allocates nothing).
func TestEchoAllocsPerDispatchMode(t *testing.T) {
	if race.Enabled {
		t.Skip("sync.Pool drops items under -race")
	}
	modes := map[string]func() []getty.ServerOption{
		"inline":     func() []getty.ServerOption { return nil },
		"workerpool": func() []getty.ServerOption { return []getty.ServerOption{getty.WithServerWorkerPool(2)} },
		"workerpool/unordered": func() []getty.ServerOption {
			return []getty.ServerOption{getty.WithServerWorkerPool(2), getty.WithServerOrderedDispatch(false)}
		},
		"gostpool": func() []getty.ServerOption {
			p := gxsync.NewTaskPoolSimple(4)
			t.Cleanup(p.Close)
			return []getty.ServerOption{getty.WithServerTaskPool(p)}
		},
		"gostpool/ordered": func() []getty.ServerOption {
			p := gxsync.NewTaskPoolSimple(4)
			t.Cleanup(p.Close)
			return []getty.ServerOption{getty.WithServerTaskPool(p), getty.WithServerOrderedDispatch(true)}
		},
	}
	for name, opts := range modes {
		t.Run(name, func(t *testing.T) {
			round := echoRig(t, opts()...)
			for i := 0; i < 100; i++ {
				round()
			}
			allocs := testing.AllocsPerRun(2000, round)
			assert.Zerof(t, allocs, "%.2f allocations per echoed message", allocs)
		})
	}
}
