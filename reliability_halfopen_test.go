package getty_test

// Half-open peers: a peer that vanished without a FIN or RST. See reliability_test.go.

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// relIdleListener is the user pattern for half-open peers: OnCron closes a
// session that has been silent for longer than idle. It may also send a
// heartbeat from OnCron (a client), and echo (a server).
type relIdleListener struct {
	getty.BaseListener
	idle      time.Duration
	heartbeat bool
	echo      bool
	closes    atomic.Int64
	idleClose sync.Map // Session -> time.Time the idle check closed it
}

func (l *relIdleListener) OnCron(s getty.Session) {
	if time.Since(s.GetActive()) > l.idle {
		l.idleClose.Store(s, time.Now())
		s.Close()
		return
	}
	if l.heartbeat {
		_, _, _ = s.WritePkg("heartbeat", time.Second)
	}
}

func (l *relIdleListener) OnClose(getty.Session) { l.closes.Add(1) }

func (l *relIdleListener) OnMessage(s getty.Session, pkg any) {
	if l.echo {
		_, _, _ = s.WritePkg(pkg, time.Second)
	}
}

// A peer that stops answering but keeps its socket is found by the OnCron
// idle check within one cron period plus a tick of the idle limit, while a
// live peer sending as often is left alone.
func TestReliabHalfOpenPeer(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		const (
			period = 100 * time.Millisecond
			idle   = 300 * time.Millisecond
			tick   = 10 * time.Millisecond // the timer wheel's
			slack  = 250 * time.Millisecond
		)
		l := &relIdleListener{idle: idle, echo: true}
		srv := startServer(t, tr.newServer(t), withCodec(l, func(s getty.Session) { s.SetCronPeriod(int(period / time.Millisecond)) }))
		tg := relTargetOf(t, tr, srv)
		live := relConnect(t, tg)
		silent := relConnect(t, tg)
		// The server's last activity lies between sentAt and lastActive
		// (its read happened before the echo came back): the lower bound is
		// checked from sentAt, the upper ones from lastActive.
		sentAt := time.Now()
		require.NoError(t, silent.echo("last words"))
		lastActive := time.Now()

		// The live peer talks every 50 ms (and answers pings) meanwhile.
		stop := make(chan struct{})
		liveErr := make(chan error, 1)
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					liveErr <- nil
					return
				case <-tick.C:
				}
				if err := live.echo("alive " + strconv.Itoa(i)); err != nil {
					liveErr <- err
					return
				}
			}
		}()
		// The silent peer sends nothing (not even a WebSocket pong) and
		// just watches for the server to end the connection.
		closedCh := make(chan error, 1)
		go func() {
			_, err := silent.waitClosed(idle + period + 5*time.Second)
			closedCh <- err
		}()
		var err error
		select {
		case err = <-closedCh:
		case <-time.After(10 * time.Second):
			t.Fatal("waitClosed did not return")
		}
		seen := time.Since(lastActive)
		close(stop)
		require.NoError(t, <-liveErr, "the live peer was disturbed")
		require.NoError(t, err, "silent peer still connected %v after its last message (idle limit %v, cron %v)", seen, idle, period)
		var closedAt time.Time
		l.idleClose.Range(func(_, v any) bool { closedAt = v.(time.Time); return true })
		require.False(t, closedAt.IsZero(), "the idle check did not close the silent session")
		took := closedAt.Sub(lastActive)
		t.Logf("silent peer closed by the idle check %v after its last message (limit %v + cron %v + tick %v); the peer saw the end after %v",
			took.Round(time.Millisecond), idle, period, tick, seen.Round(time.Millisecond))
		assert.Less(t, took, idle+period+tick+slack)
		assert.GreaterOrEqual(t, closedAt.Sub(sentAt), idle, "closed before the idle limit")
		assert.Less(t, seen, took+slack, "the peer saw the end late")
		require.NoError(t, live.echo("still alive"))
	}, connected)
}

// relStuckServer echoes, except on the first session it sees, whose
// OnMessage blocks (so it also stops reading: no WebSocket pong either) until
// release closes: a server that went silent on one connection.
type relStuckServer struct {
	getty.BaseListener
	first   atomic.Pointer[getty.Session]
	release chan struct{}
	opens   atomic.Int64
}

func (l *relStuckServer) OnOpen(s getty.Session) error {
	l.opens.Add(1)
	l.first.CompareAndSwap(nil, &s)
	return nil
}

func (l *relStuckServer) OnMessage(s getty.Session, pkg any) {
	if f := l.first.Load(); f != nil && *f == s {
		<-l.release
		return
	}
	_, _, _ = s.WritePkg(pkg, time.Second)
}

// A client pool of 2 whose server goes silent on one session: the
// client's own OnCron idle check closes that session and the pool replaces
// it.
func TestReliabHalfOpenClientPool(t *testing.T) {
	runAtOnce(t, func(t *testing.T, tr transport) {
		const (
			period = 100 * time.Millisecond
			idle   = 300 * time.Millisecond
		)
		srvL := &relStuckServer{release: make(chan struct{})}
		srv := startServer(t, tr.newServer(t), withCodec(srvL))
		t.Cleanup(func() { close(srvL.release) }) // before the server closes
		cliL := &relIdleListener{idle: idle, heartbeat: true}
		cli := startClient(t, tr.newClient(t, srv, getty.WithConnectionNumber(2), getty.WithReconnectInterval(int(50*time.Millisecond))),
			withCodec(cliL, func(s getty.Session) { s.SetCronPeriod(int(period / time.Millisecond)) }))
		before := cli.Sessions()
		require.Len(t, before, 2)

		var detected time.Time
		eventually(t, "the idle check to close the silent session", func() bool {
			n := 0
			cliL.idleClose.Range(func(k, v any) bool {
				detected = v.(time.Time)
				s := k.(getty.Session)
				took := detected.Sub(s.GetActive())
				t.Logf("client idle check closed a session %v after its last read (limit %v + cron %v + tick)", took.Round(time.Millisecond), idle, period)
				assert.Less(t, took, idle+period+10*time.Millisecond+250*time.Millisecond)
				n++
				return true
			})
			return n > 0
		})
		var replaced time.Duration
		eventually(t, "the silent session to be replaced", func() bool {
			replaced = time.Since(detected)
			return len(cli.Sessions()) == 2 && srvL.opens.Load() == 3
		})
		t.Logf("client pool back to 2 sessions %v after the detection", replaced.Round(time.Millisecond))
		// WebSocket waits up to its 1 s close grace for the dead peer's close frame.
		assert.Less(t, replaced, 2*time.Second, "replacement too slow")
		assert.Equal(t, int64(1), cliL.closes.Load(), "only the silent session was closed")
		// Both sessions of the pool are served.
		for _, s := range cli.Sessions() {
			_, _, err := s.WritePkg("after", time.Second)
			require.NoError(t, err)
		}
		time.Sleep(2 * idle)
		assert.Equal(t, int64(1), cliL.closes.Load(), "a live session was closed by the idle check")
	}, connected)
}
