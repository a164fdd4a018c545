package getty

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/getty-go/getty/internal/bufpool"
)

// sinkConn is a net.Conn that takes every write at once and never has
// bytes to read: the send queue's socket without the kernel. The methods it
// does not override are never called (the embedded Conn is nil).
type sinkConn struct{ net.Conn }

func (sinkConn) Write(p []byte) (int, error)      { return len(p), nil }
func (sinkConn) Read([]byte) (int, error)         { return 0, nil }
func (sinkConn) SetWriteDeadline(time.Time) error { return nil }
func (sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (sinkConn) Close() error                     { return nil }

type batchEcho struct{ BaseListener }

func (batchEcho) OnMessage(s Session, pkg any) { _, _, _ = s.WritePkg(pkg, 0) }

// BenchmarkBatchEcho is getty's own work for one read of 16 frames of
// 128 B echoed inline (decode, dispatch, encode, gather, one flush), with
// the kernel left out: the transport's socket takes every write at once.
// An op is the whole batch; ns/op over 16 is the cost per message.
func BenchmarkBatchEcho(b *testing.B) {
	const frames, size = 16, 128
	tr := newTCPTransport(sinkConn{})
	s := newSession(nil, tr)
	s.SetPkgHandler(&LengthFieldCodec{})
	s.SetEventListener(batchEcho{})
	s.setupDispatch()
	var batch []byte
	for range frames {
		batch = binary.BigEndian.AppendUint32(batch, size)
		batch = append(batch, make([]byte, size)...)
	}
	round := func() {
		bp := bufpool.Get(readBufSize)
		n := copy(*bp, batch)
		s.rbuf, s.rlen = bp, 0
		if err := s.afterRead(tr, n, nil); err != nil {
			b.Fatal(err)
		}
	}
	for range 100 {
		round()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round()
	}
}
