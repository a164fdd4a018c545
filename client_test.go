package getty_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// A pool of 8 sessions refills within 1 s of a server restart on the same
// port, without a storm of dials.
func TestClientRefillsAfterServerRestart(t *testing.T) {
	srv := startServer(t, row("tcp").newServer(t), withCodec(newRecorder(true)))
	addr := srv.Addr().String()
	cliRec := newRecorder(false)
	cli := startClient(t, getty.NewTCPClient(getty.WithServerAddress(addr), getty.WithConnectionNumber(8),
		getty.WithReconnectInterval(int(50*time.Millisecond)), getty.WithMaxReconnectInterval(200*time.Millisecond)), withCodec(cliRec))
	require.Len(t, cli.Sessions(), 8)

	srv.Close()
	cliRec.waitClosed(t, 8)
	time.Sleep(300 * time.Millisecond)

	srv2Rec := newRecorder(true)
	var srv2 getty.Server
	deadline := time.Now().Add(2 * time.Second)
	for {
		srv2 = getty.NewTCPServer(getty.WithLocalAddress(addr))
		srv2.RunEventLoop(withCodec(srv2Rec))
		if srv2.Addr() != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NotNil(t, srv2.Addr(), "could not listen on %s again", addr)
	t.Cleanup(srv2.Close)
	restarted := time.Now()
	eventually(t, "pool back to 8", func() bool { return len(cli.Sessions()) == 8 })
	refill := time.Since(restarted)
	t.Logf("pool refilled in %v", refill)
	assert.Less(t, refill, time.Second)
	time.Sleep(300 * time.Millisecond)
	opens, _, _ := srv2Rec.counts()
	assert.Equal(t, 8, opens, "dials after the restart: no storm, no duplicates")

	s, err := cli.Session()
	require.NoError(t, err)
	_, _, err = s.WritePkg("after restart", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "after restart", cliRec.next(t))
}

// With the server down, a bounded start returns an error; an unbounded
// client fills its pool once the server comes up.
func TestClientServerDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()

	cli := getty.NewTCPClient(getty.WithServerAddress(addr), getty.WithConnectionNumber(2), getty.WithReconnectInterval(int(20*time.Millisecond)))
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = cli.RunEventLoopContext(ctx, withCodec(newRecorder(false)))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "connection refused")

	srv := getty.NewTCPServer(getty.WithLocalAddress(addr))
	srv.RunEventLoop(withCodec(newRecorder(true)))
	require.NotNil(t, srv.Addr())
	defer srv.Close()
	eventually(t, "pool filled after the server came up", func() bool { return len(cli.Sessions()) == 2 })
}

// Close stops reconnectors at once, in a backoff sleep or a dial.
func TestClientCloseDuringBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	cli := getty.NewTCPClient(getty.WithServerAddress(addr), getty.WithConnectionNumber(4), getty.WithReconnectInterval(int(2*time.Second)))
	cli.Start(withCodec(newRecorder(false)))
	time.Sleep(100 * time.Millisecond) // every slot is now in a long backoff
	start := time.Now()
	cli.Close()
	assert.Less(t, time.Since(start), 100*time.Millisecond)
	assert.True(t, cli.IsClosed())
	_, err = cli.Session()
	assert.ErrorIs(t, err, getty.ErrClientClosed)
}

func TestClientCloseDuringDial(t *testing.T) {
	// The kernel completes the TCP handshake for a listener that never
	// accepts, so a TLS client waits in its handshake: a dial in progress.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	opened := make(chan struct{}, 1)
	cli := getty.NewTCPClient(getty.WithServerAddress(l.Addr().String()), getty.WithConnectionNumber(2),
		getty.WithDialTimeout(10*time.Second), getty.WithClientSslEnabled(true),
		getty.WithClientTlsConfigBuilder(&getty.ClientTlsConfigBuilder{}))
	cli.Start(func(getty.Session) error { opened <- struct{}{}; return nil })
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cli.Close()
	assert.Less(t, time.Since(start), 200*time.Millisecond)
	assert.Empty(t, opened, "a session opened without a TLS handshake")
}

// After the allowed attempts the client reports ErrReconnectGaveUp and
// stops dialing.
func TestClientReconnectAttemptLimit(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	reported := make(chan error, 4)
	cli := getty.NewTCPClient(getty.WithServerAddress(addr), getty.WithReconnectAttempts(3),
		getty.WithReconnectInterval(int(5*time.Millisecond)),
		getty.WithClientErrorHandler(func(_ getty.Client, err error) { reported <- err }))
	defer cli.Close()
	cli.Start(withCodec(newRecorder(false)))
	select {
	case err := <-reported:
		assert.ErrorIs(t, err, getty.ErrReconnectGaveUp)
		assert.Contains(t, err.Error(), "3 attempts")
	case <-time.After(5 * time.Second):
		t.Fatal("no give-up reported")
	}
}

// A new-session callback that refuses does not make a hot loop of dials.
func TestClientRefusingCallbackBacksOff(t *testing.T) {
	var accepted atomic.Int64
	srv := startServer(t, row("tcp").newServer(t), func(getty.Session) error { accepted.Add(1); return nil })
	_ = srv
	var calls atomic.Int64
	cli := getty.NewTCPClient(getty.WithServerAddress(srv.Addr().String()), getty.WithReconnectInterval(int(20*time.Millisecond)),
		getty.WithMaxReconnectInterval(200*time.Millisecond))
	cli.Start(func(getty.Session) error { calls.Add(1); return errors.New("no") })
	time.Sleep(500 * time.Millisecond)
	cli.Close()
	assert.Less(t, calls.Load(), int64(15), "dials in 500 ms with a refusing callback")
	assert.Greater(t, calls.Load(), int64(1))
}

func TestClientBadOptionsDoNotPanic(t *testing.T) {
	cli := getty.NewTCPClient(getty.WithConnectionNumber(-3), getty.WithReconnectInterval(-1))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.Error(t, cli.RunEventLoopContext(ctx, withCodec(newRecorder(false))))
	cli.Close()
}
