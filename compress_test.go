package getty_test

import (
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

var compressTypes = []struct {
	name string
	typ  getty.CompressType
}{
	{"none", getty.CompressNone},
	{"zip", getty.CompressZip},
	{"bestspeed", getty.CompressBestSpeed},
	{"best", getty.CompressBestCompression},
	{"huffman", getty.CompressHuffman},
	{"level5", 5},
	{"snappy", getty.CompressSnappy},
}

// Every write path round-trips through every compression type between a
// getty server and a getty client.
func TestCompressionRoundTrip(t *testing.T) {
	for _, ct := range compressTypes {
		t.Run(ct.name, func(t *testing.T) {
			setCompress := func(s getty.Session) { s.SetCompressType(ct.typ) }
			srv := startServer(t, transports[0].newServer(t), withCodec(newRecorder(true), setCompress))
			cliRec := newRecorder(false)
			cli := startClient(t, transports[0].newClient(t, srv), withCodec(cliRec, setCompress))
			s, err := cli.Session()
			require.NoError(t, err)
			big := strings.Repeat("compressible ", 2000)
			for i := 0; i < 20; i++ {
				msg := fmt.Sprintf("pkg %d %s", i, big[:i*500])
				_, _, err := s.WritePkg(msg, time.Second)
				require.NoError(t, err)
				assert.Equal(t, msg, cliRec.next(t))
			}
			_, err = s.WriteBytes(frame("bytes"))
			require.NoError(t, err)
			assert.Equal(t, "bytes", cliRec.next(t))
			_, err = s.WriteBytesArray(frame("array-1"), frame("array-2"))
			require.NoError(t, err)
			assert.Equal(t, "array-1", cliRec.next(t))
			assert.Equal(t, "array-2", cliRec.next(t))
		})
	}
}

// A peer that speaks raw deflate (as upstream getty does for the flate
// levels) or framed snappy interoperates: each small message is flushed and
// answered promptly.
func TestCompressionRawPeer(t *testing.T) {
	for _, ct := range []struct {
		name string
		typ  getty.CompressType
		wrap func(io.ReadWriter) (io.Writer, func() error, io.Reader)
	}{
		{"flate", getty.CompressBestSpeed, func(rw io.ReadWriter) (io.Writer, func() error, io.Reader) {
			w, _ := flate.NewWriter(rw, flate.BestSpeed)
			return w, w.Flush, flate.NewReader(rw)
		}},
		{"snappy", getty.CompressSnappy, func(rw io.ReadWriter) (io.Writer, func() error, io.Reader) {
			w := snappy.NewBufferedWriter(rw)
			return w, w.Flush, snappy.NewReader(rw)
		}},
	} {
		t.Run(ct.name, func(t *testing.T) {
			srv := startServer(t, transports[0].newServer(t), withCodec(newRecorder(true), func(s getty.Session) { s.SetCompressType(ct.typ) }))
			c := rawDial(t, srv)
			w, flush, r := ct.wrap(c)
			for i := 0; i < 50; i++ {
				msg := fmt.Sprintf("small %d", i)
				_, err := w.Write(frame(msg))
				require.NoError(t, err)
				require.NoError(t, flush())
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				var hdr [4]byte
				_, err = io.ReadFull(r, hdr[:])
				require.NoError(t, err, "reply %d not flushed", i)
				body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
				_, err = io.ReadFull(r, body)
				require.NoError(t, err)
				assert.Equal(t, msg, string(body))
			}
		})
	}
}

// CompressNone is raw bytes on the wire (upstream wrapped it in stored
// deflate blocks).
func TestCompressNoneIsRaw(t *testing.T) {
	srv := startServer(t, transports[0].newServer(t), withCodec(newRecorder(true), func(s getty.Session) { s.SetCompressType(getty.CompressNone) }))
	c := rawDial(t, srv)
	_, _ = c.Write(frame("raw"))
	assert.Equal(t, "raw", readFrame(t, c))
}

// A compressed session whose package arrived in pieces stays usable after
// sitting idle past its read timeout (a decompressor keeps any error, so a
// stale deadline must never fire).
func TestCompressedIdleAfterSplitPackage(t *testing.T) {
	rec := newRecorder(true)
	srv := startServer(t, transports[0].newServer(t), withCodec(rec, func(s getty.Session) {
		s.SetCompressType(getty.CompressBestSpeed)
		s.SetReadTimeout(100 * time.Millisecond)
	}))
	c := rawDial(t, srv)
	w, _ := flate.NewWriter(c, flate.BestSpeed)
	r := flate.NewReader(c)
	msg := frame("split in two")
	_, _ = w.Write(msg[:5])
	_ = w.Flush()
	time.Sleep(20 * time.Millisecond)
	_, _ = w.Write(msg[5:])
	_ = w.Flush()
	assert.Equal(t, "split in two", rec.next(t))
	time.Sleep(300 * time.Millisecond) // idle past the read timeout
	_, _ = w.Write(frame("later"))
	_ = w.Flush()
	assert.Equal(t, "later", rec.next(t))
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len(msg)+len(frame("later")) {
		n, err := r.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	_, _, errs := rec.counts()
	assert.Empty(t, errs)
}
