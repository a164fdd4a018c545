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

// countingListener is a listener wrapped by the user, as WithListener
// allows: it counts accepts and closes.
type countingListener struct {
	net.Listener
	accepts, closes atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

func (l *countingListener) Close() error {
	l.closes.Add(1)
	return l.Listener.Close()
}

func userListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return &countingListener{Listener: ln}
}

// echoOnce sends one message through a new client of addr and waits for it.
func echoOnce(t *testing.T, cli getty.Client, msg string) {
	t.Helper()
	rec := newRecorder(false)
	startClient(t, cli, withCodec(rec))
	s, err := cli.Session()
	require.NoError(t, err)
	_, _, err = s.WritePkg(msg, time.Second)
	require.NoError(t, err)
	assert.Equal(t, msg, rec.next(t))
}

func TestWithListenerServesAndCloses(t *testing.T) {
	for _, stop := range []string{"Close", "Shutdown"} {
		t.Run(stop, func(t *testing.T) {
			ln := userListener(t)
			srv := getty.NewTCPServer(getty.WithListener(ln))
			startServer(t, srv, withCodec(newRecorder(true)))
			assert.Equal(t, ln.Addr().String(), srv.Addr().String())
			assert.Same(t, ln, srv.(getty.StreamServer).Listener())

			echoOnce(t, getty.NewTCPClient(getty.WithServerAddress(ln.Addr().String())), "on my listener")
			assert.EqualValues(t, 1, ln.accepts.Load())

			if stop == "Close" {
				srv.Close()
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				require.NoError(t, srv.Shutdown(ctx))
			}
			assert.EqualValues(t, 1, ln.closes.Load())
			_, err := ln.Listener.Accept()
			assert.ErrorIs(t, err, net.ErrClosed, "the listener is closed")
		})
	}
}

// Serve on a given listener returns ErrServerClosed after Close, as on
// its own.
func TestWithListenerServe(t *testing.T) {
	ln := userListener(t)
	srv := getty.NewTCPServer(getty.WithListener(ln))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(withCodec(newRecorder(true))) }()
	echoOnce(t, getty.NewTCPClient(getty.WithServerAddress(ln.Addr().String())), "serve")
	srv.Close()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, getty.ErrServerClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

func TestWithListenerTLSAndWebSocket(t *testing.T) {
	t.Run("tls", func(t *testing.T) {
		ln := userListener(t)
		srv := row("tls").newServer(t, getty.WithListener(ln))
		startServer(t, srv, withCodec(newRecorder(true)))
		echoOnce(t, row("tls").newClient(t, srv), "tls on my listener")
		srv.Close()
		assert.EqualValues(t, 1, ln.closes.Load())
	})
	t.Run("ws", func(t *testing.T) {
		ln := userListener(t)
		srv := getty.NewWSServer(getty.WithListener(ln))
		startServer(t, srv, withCodec(newRecorder(true)))
		echoOnce(t, getty.NewWSClient(getty.WithServerAddress("ws://"+ln.Addr().String()+"/")), "ws on my listener")
		srv.Close()
		assert.GreaterOrEqual(t, ln.closes.Load(), int32(1))
	})
}

// A server that cannot start on a given listener closes it and says why.
func TestWithListenerBadConfigClosesIt(t *testing.T) {
	ln := userListener(t)
	srv := getty.NewTCPServer(getty.WithListener(ln), getty.WithProxyProtocol(getty.ProxyProtocol{}))
	err := srv.Serve(withCodec(newRecorder(true)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Trusted")
	srv.Close()
	assert.EqualValues(t, 1, ln.closes.Load())
}

func TestWithListenerUDPRefused(t *testing.T) {
	ln := userListener(t)
	srv := getty.NewUDPEndPoint(getty.WithListener(ln), getty.WithLocalAddress("127.0.0.1:0"))
	err := srv.Serve(withCodec(newRecorder(true)))
	require.Error(t, err)
	assert.False(t, errors.Is(err, getty.ErrServerClosed))
	assert.Contains(t, err.Error(), "WithListener")
	srv.Close()
}

// WithListener(nil), a failed FileListener passed on, say, is an error, not
// a server listening on some default address.
func TestWithListenerNil(t *testing.T) {
	srv := getty.NewTCPServer(getty.WithListener(nil))
	err := srv.Serve(withCodec(newRecorder(true)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithListener(nil)")
	assert.Nil(t, srv.Addr())
	srv.Close()
}
