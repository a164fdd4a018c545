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
// The connection itself (*net.TCPConn or *tls.Conn) is the send queue's
// (conn); what only TLS or compression needs sits behind extra, so an idle
// plain TCP transport fits 192 bytes.
type tcpTransport struct {
	// raw lets the reader wait for readability without holding a buffer;
	// nil for TLS, whose records must be read through the tls.Conn.
	raw syscall.RawConn
	rawRead

	out   sendQueue
	extra *tcpExtra // nil until TLS or compression needs it
}

// tcpExtra is what only some stream transports use.
type tcpExtra struct {
	// zr decompresses the read side once SetCompressType turned
	// compression on; nil for raw bytes.
	zr         io.Reader
	tlsTimeout time.Duration // handshake bound for TLS
}

func newTCPTransport(c net.Conn) *tcpTransport {
	t := &tcpTransport{}
	switch cc := c.(type) {
	case *net.TCPConn:
		if raw, err := cc.SyscallConn(); err == nil && rawReadSupported {
			t.raw = raw
			t.rawRead.init()
		}
	case *net.UnixConn:
		if raw, err := cc.SyscallConn(); err == nil && rawReadSupported {
			t.raw = raw
			t.rawRead.init()
		}
	}
	t.out.init(c)
	return t
}

func (t *tcpTransport) conn() net.Conn { return t.out.w }

// tcp is the socket under the connection (through TLS), for linger.
func (t *tcpTransport) tcp() *net.TCPConn { return tcpConnOf(t.out.w) }

// setTLSTimeout bounds the TLS handshake.
func (t *tcpTransport) setTLSTimeout(d time.Duration) {
	if t.extra == nil {
		t.extra = new(tcpExtra)
	}
	t.extra.tlsTimeout = d
}

// decompressor is the read side's decompressor; nil for raw bytes.
func (t *tcpTransport) decompressor() io.Reader {
	if t.extra == nil {
		return nil
	}
	return t.extra.zr
}

func (t *tcpTransport) setDecompressor(zr io.Reader) {
	if t.extra == nil {
		if zr == nil {
			return
		}
		t.extra = new(tcpExtra)
	}
	t.extra.zr = zr
}

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
	if zr := t.decompressor(); zr != nil {
		return zr.Read(p)
	}
	return t.out.w.Read(p)
}

func (t *tcpTransport) setReadDeadline(d time.Time) error { return t.out.w.SetReadDeadline(d) }

// timeoutIsFatal: flate and snappy readers keep the first error they see,
// a timeout included.
func (t *tcpTransport) timeoutIsFatal() bool { return t.decompressor() != nil }

func (t *tcpTransport) write(first []byte, more [][]byte, timeout time.Duration) (int, error) {
	return t.out.write(first, more, timeout)
}

func (t *tcpTransport) writeFramed(f framed, timeout time.Duration) (int, error) {
	return t.out.writeFramed(&f, timeout)
}

func (t *tcpTransport) cork() { t.out.cork() }

func (t *tcpTransport) uncork(flush bool, timeout time.Duration) error {
	return t.out.uncork(timeout, flush)
}

func (t *tcpTransport) shutdown(deadline time.Time, _ error) error {
	err := t.out.close(deadline)
	c := t.out.w
	tcp := t.tcp()
	if tcp == nil || c == net.Conn(tcp) {
		c.Close()
		return err
	}
	if err != nil {
		// The stream is broken: no close_notify either.
		tcp.Close()
	}
	// The close_notify may take what is left of the wait time, within
	// bounds.
	closeTLS(tcp, min(max(time.Until(deadline), 10*time.Millisecond), time.Second), c.Close)
	return err
}

func (t *tcpTransport) closeNow(linger int) {
	if tcp := t.tcp(); linger >= 0 && tcp != nil {
		_ = tcp.SetLinger(linger)
	}
	t.out.abort()
	t.out.w.Close()
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
		nc  = t.out.w
	)
	switch c {
	case CompressNone:
		t.setDecompressor(nil)
		t.out.setCompressor(nil)
		return true
	case CompressSnappy:
		zw = snappy.NewBufferedWriter(nc)
		t.setDecompressor(snappy.NewReader(nc))
	case CompressZip, CompressBestSpeed, CompressBestCompression, CompressHuffman:
		zw, err = flate.NewWriter(nc, int(c))
		if err != nil {
			return false
		}
		t.setDecompressor(flate.NewReader(nc))
	default:
		if c < CompressHuffman || c > CompressBestCompression {
			return false
		}
		zw, _ = flate.NewWriter(nc, int(c))
		t.setDecompressor(flate.NewReader(nc))
	}
	// The decompressor must see every byte, so raw reads are off.
	t.raw = nil
	t.out.setCompressor(zw)
	return true
}

// handshake runs the TLS handshake with its timeout before the session
// starts, so a failed or stalled handshake never reaches a callback.
func (t *tcpTransport) handshake() error {
	tc, ok := t.out.w.(*tls.Conn)
	if !ok {
		return nil
	}
	var timeout time.Duration
	if t.extra != nil {
		timeout = t.extra.tlsTimeout
	}
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return tc.HandshakeContext(ctx)
}
