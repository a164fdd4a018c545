package getty_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// dialLog is a WithDialContext dialer that records its calls and dials
// for real.
type dialLog struct {
	mu    sync.Mutex
	calls []string
}

func (d *dialLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, network+" "+addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *dialLog) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// The dialer opens every connection, the redials after a loss included,
// for TCP, TLS and WebSocket.
func TestDialContextUsedForEveryDial(t *testing.T) {
	for _, tr := range []string{"tcp", "tls", "ws"} {
		t.Run(tr, func(t *testing.T) {
			var (
				srv getty.Server
				cli getty.Client
				d   dialLog
			)
			opts := []getty.ClientOption{getty.WithDialContext(d.dial), getty.WithConnectionNumber(2),
				getty.WithReconnectInterval(int(20 * time.Millisecond))}
			srvRec := newRecorder(true)
			switch tr {
			case "tcp":
				srv = startServer(t, row("tcp").newServer(t), withCodec(srvRec))
				cli = row("tcp").newClient(t, srv, opts...)
			case "tls":
				srv = startServer(t, row("tls").newServer(t), withCodec(srvRec))
				cli = row("tls").newClient(t, srv, opts...)
			case "ws":
				srv = startServer(t, getty.NewWSServer(getty.WithLocalAddress("127.0.0.1:0")), withCodec(srvRec))
				cli = getty.NewWSClient(append(opts, getty.WithServerAddress("ws://"+srv.Addr().String()+"/"))...)
			}
			echoOnce(t, cli, "dialled by the user")
			require.Equal(t, 2, d.count())
			assert.Equal(t, "tcp "+srv.Addr().String(), d.calls[0])

			// Lose one session: the redial goes through the dialer too.
			s, err := cli.Session()
			require.NoError(t, err)
			s.Close()
			eventually(t, "the session redialled", func() bool { return d.count() == 3 && len(cli.Sessions()) == 2 })
		})
	}
}

// dialFailure runs a client whose dials all fail and returns the error it
// gave up with.
func dialFailure(t *testing.T, dial getty.DialContextFunc, opts ...getty.ClientOption) error {
	t.Helper()
	gaveUp := make(chan error, 1)
	cli := getty.NewTCPClient(append([]getty.ClientOption{
		getty.WithServerAddress("192.0.2.1:9"), // never dialled for real
		getty.WithDialContext(dial),
		getty.WithReconnectAttempts(1),
		getty.WithClientErrorHandler(func(_ getty.Client, err error) { gaveUp <- err }),
	}, opts...)...)
	defer cli.Close()
	cli.Start(withCodec(newRecorder(false)))
	select {
	case err := <-gaveUp:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not give up within 5s")
		return nil
	}
}

// The dial timeout reaches the dialer as its context's deadline.
func TestDialContextHonoursDialTimeout(t *testing.T) {
	var deadlineSet bool
	err := dialFailure(t, func(ctx context.Context, _, _ string) (net.Conn, error) {
		_, deadlineSet = ctx.Deadline()
		<-ctx.Done()
		return nil, ctx.Err()
	}, getty.WithDialTimeout(50*time.Millisecond))
	assert.True(t, deadlineSet)
	assert.ErrorIs(t, err, getty.ErrReconnectGaveUp)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// Close cancels a dial in progress through its context.
func TestDialContextCancelledByClose(t *testing.T) {
	entered := make(chan struct{})
	result := make(chan error, 1)
	cli := getty.NewTCPClient(getty.WithServerAddress("192.0.2.1:9"), getty.WithDialTimeout(time.Minute),
		getty.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			close(entered)
			<-ctx.Done()
			result <- ctx.Err()
			return nil, ctx.Err()
		}))
	cli.Start(withCodec(newRecorder(false)))
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the dialer was not called")
	}
	closed := make(chan struct{})
	go func() { cli.Close(); close(closed) }()
	select {
	case err := <-result:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the dial")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// A dialer that ignores its context and returns late has its connection
// closed; one that panics or returns nothing fails the dial with an error.
func TestDialContextMisbehavingDialers(t *testing.T) {
	t.Run("late", func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		err := dialFailure(t, func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return a, nil
		}, getty.WithDialTimeout(20*time.Millisecond))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		_, werr := a.Write([]byte("x"))
		assert.ErrorIs(t, werr, io.ErrClosedPipe, "closed by getty")
	})
	t.Run("panic", func(t *testing.T) {
		err := dialFailure(t, func(context.Context, string, string) (net.Conn, error) { panic("dialer bug") })
		assert.ErrorIs(t, err, getty.ErrPanic)
	})
	t.Run("nothing", func(t *testing.T) {
		err := dialFailure(t, func(context.Context, string, string) (net.Conn, error) { return nil, nil })
		assert.Contains(t, err.Error(), "neither a connection nor an error")
	})
	t.Run("error", func(t *testing.T) {
		boom := errors.New("proxy said no")
		err := dialFailure(t, func(context.Context, string, string) (net.Conn, error) { return nil, boom })
		assert.ErrorIs(t, err, boom)
	})
}

func TestDialContextUDP(t *testing.T) {
	var d dialLog
	srv := startServer(t, getty.NewUDPEndPoint(getty.WithLocalAddress("127.0.0.1:0")), withCodec(newRecorder(false)))
	cli := getty.NewUDPClient(getty.WithServerAddress(srv.Addr().String()), getty.WithDialContext(d.dial))
	startClient(t, cli, withCodec(newRecorder(false)))
	assert.Equal(t, []string{"udp " + srv.Addr().String()}, d.calls)
}
