package getty

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/flate"

	"github.com/getty-go/getty/internal/bufpool"
)

// tcpTransport carries a session over a stream: TCP, or TLS over TCP.
type tcpTransport struct {
	c   net.Conn     // *net.TCPConn or *tls.Conn
	tcp *net.TCPConn // the socket, for linger and raw waits

	// raw lets the reader wait for readability without holding a buffer;
	// nil for TLS, whose records must be read through the tls.Conn.
	raw syscall.RawConn
	rawRead

	out sendQueue
	// zr decompresses the read side once SetCompressType turned
	// compression on; nil for raw bytes.
	zr io.Reader

	tlsTimeout time.Duration // handshake bound for TLS
}

func newTCPTransport(c net.Conn) *tcpTransport {
	t := &tcpTransport{c: c}
	switch cc := c.(type) {
	case *net.TCPConn:
		t.tcp = cc
		if raw, err := cc.SyscallConn(); err == nil && rawReadSupported {
			t.raw = raw
			t.rawRead.init()
		}
	case *net.UnixConn:
		if raw, err := cc.SyscallConn(); err == nil && rawReadSupported {
			t.raw = raw
			t.rawRead.init()
		}
	case *tls.Conn:
		t.tcp, _ = cc.NetConn().(*net.TCPConn)
	}
	t.out.init(t.c)
	return t
}

func (t *tcpTransport) conn() net.Conn { return t.c }

func (t *tcpTransport) readLoop(s sessionPort) error { return s.readStream(t) }

func (t *tcpTransport) readFresh(size int) (*[]byte, int, error) {
	if t.raw == nil {
		bp := bufpool.Get(size)
		n, err := t.read(*bp)
		return bp, n, err
	}
	return t.rawRead.read(t.raw, size)
}

func (t *tcpTransport) read(p []byte) (int, error) {
	if t.zr != nil {
		return t.zr.Read(p)
	}
	return t.c.Read(p)
}

func (t *tcpTransport) setReadDeadline(d time.Time) error { return t.c.SetReadDeadline(d) }

// timeoutIsFatal: flate and snappy readers keep the first error they see,
// a timeout included.
func (t *tcpTransport) timeoutIsFatal() bool { return t.zr != nil }

func (t *tcpTransport) write(first []byte, more [][]byte, timeout time.Duration) (int, error) {
	return t.out.write(first, more, timeout)
}

func (t *tcpTransport) cork() { t.out.cork() }

func (t *tcpTransport) uncork(flush bool, timeout time.Duration) error {
	return t.out.uncork(timeout, flush)
}

func (t *tcpTransport) shutdown(deadline time.Time, _ error) error {
	err := t.out.close(deadline)
	if t.tcp == nil || t.c == net.Conn(t.tcp) {
		t.c.Close()
		return err
	}
	if err != nil {
		// The stream is broken: no close_notify either.
		t.tcp.Close()
	}
	// The close_notify may take what is left of the wait time, within
	// bounds.
	closeTLS(t.tcp, min(max(time.Until(deadline), 10*time.Millisecond), time.Second), t.c.Close)
	return err
}

func (t *tcpTransport) closeNow(linger int) {
	if linger >= 0 && t.tcp != nil {
		_ = t.tcp.SetLinger(linger)
	}
	t.out.abort()
	t.c.Close()
}

// setCompress wraps both directions of the stream: flate (raw deflate, as
// upstream) at the given level, or snappy's framed format. Every flush of
// the send queue ends with a compressor flush, so each write reaches the
// peer whole and deadlines keep applying to the socket underneath. Call it
// before any byte flows (the new-session callback).
func (t *tcpTransport) setCompress(c CompressType) bool {
	var (
		zw  compressor
		err error
	)
	switch c {
	case CompressNone:
		t.zr = nil
		t.out.setCompressor(nil)
		return true
	case CompressSnappy:
		zw = snappy.NewBufferedWriter(t.c)
		t.zr = snappy.NewReader(t.c)
	case CompressZip, CompressBestSpeed, CompressBestCompression, CompressHuffman:
		zw, err = flate.NewWriter(t.c, int(c))
		if err != nil {
			return false
		}
		t.zr = flate.NewReader(t.c)
	default:
		if c < CompressHuffman || c > CompressBestCompression {
			return false
		}
		zw, _ = flate.NewWriter(t.c, int(c))
		t.zr = flate.NewReader(t.c)
	}
	// The decompressor must see every byte, so raw reads are off.
	t.raw = nil
	t.out.setCompressor(zw)
	return true
}

// handshake runs the TLS handshake with its timeout before the session
// starts, so a failed or stalled handshake never reaches a callback.
func (t *tcpTransport) handshake() error {
	tc, ok := t.c.(*tls.Conn)
	if !ok {
		return nil
	}
	timeout := t.tlsTimeout
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return tc.HandshakeContext(ctx)
}
