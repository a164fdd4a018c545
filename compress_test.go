package getty_test

import (
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/race"
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
			srv := startServer(t, row("tcp").newServer(t), withCodec(newRecorder(true), setCompress))
			cliRec := newRecorder(false)
			cli := startClient(t, row("tcp").newClient(t, srv), withCodec(cliRec, setCompress))
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
			srv := startServer(t, row("tcp").newServer(t), withCodec(newRecorder(true), func(s getty.Session) { s.SetCompressType(ct.typ) }))
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
	srv := startServer(t, row("tcp").newServer(t), withCodec(newRecorder(true), func(s getty.Session) { s.SetCompressType(getty.CompressNone) }))
	c := rawDial(t, srv)
	_, _ = c.Write(frame("raw"))
	assert.Equal(t, "raw", readFrame(t, c))
}

// A compressed session whose package arrived in pieces stays usable after
// sitting idle past its read timeout (a decompressor keeps any error, so a
// stale deadline must never fire).
func TestCompressedIdleAfterSplitPackage(t *testing.T) {
	rec := newRecorder(true)
	srv := startServer(t, row("tcp").newServer(t), withCodec(rec, func(s getty.Session) {
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

// Compressed writes of every size, across the send queue's small/big write
// boundary (64 KiB) and up to 8 MiB, through every write path and every
// compression type, single and concurrent writers: every byte arrives, in
// order, and no write panics or wedges the queue (issue 12: a big write with
// nothing pending used to panic in the compressor branch).
func TestCompressedWritesAllSizes(t *testing.T) {
	t.Parallel() // CPU-bound, asserts no timing: overlaps the other parallel tests
	const boundary = 64 << 10
	sizes := []int{1, 100, boundary - 5, boundary - 4, boundary, boundary + 1, 1 << 20, 8 << 20}
	for _, ct := range compressTypes {
		t.Run(ct.name, func(t *testing.T) {
			t.Parallel() // best alone is ~10 s of CPU under -race: the other types run beside it
			setUp := func(s getty.Session) {
				s.SetCompressType(ct.typ)
				s.SetMaxMsgLen(16 << 20)
				s.SetReadTimeout(30 * time.Second)
				s.SetWriteTimeout(30 * time.Second)
			}
			srv := startServer(t, row("tcp").newServer(t), withCodec(newRecorder(true), setUp))
			rec := newRecorder(false)
			cli := startClient(t, row("tcp").newClient(t, srv), withCodec(rec, setUp))
			s, err := cli.Session()
			require.NoError(t, err)

			for i, size := range sizes {
				if size > 1<<20 && ct.typ != getty.CompressZip {
					continue // zip is what dubbo-go and seata-go use; the rest is the same code, and 8 MiB is slow under -race
				}
				if size >= 1<<20 && ct.typ == getty.CompressBestCompression && race.Enabled {
					// Level 9 takes 6 s of CPU per MiB of this data under -race,
					// twice (the write, the echo), for a 38 KiB stream that the
					// send queue handles as it does the 64 KiB+1 one; the
					// concurrent writers' 100 KiB packages slide its window too.
					continue
				}
				msg := patterned(size, i)
				switch i % 3 {
				case 0:
					_, _, err = s.WritePkg(msg, 30*time.Second)
				case 1:
					_, err = s.WriteBytes(frame(msg))
				default:
					f := frame(msg)
					_, err = s.WriteBytesArray(f[:4], f[4:])
				}
				require.NoError(t, err, "write of %d bytes", size)
				got := rec.next(t)
				require.Equal(t, len(msg), len(got), "size %d", size)
				require.True(t, got == msg, "size %d: bytes differ", size)
			}

			// Concurrent writers mixing small and big packages: each
			// writer's packages arrive whole and in its own order.
			const writers, each = 4, 4
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < each; k++ {
						size := []int{10, boundary + 7, 3000, 100 << 10}[k%4]
						msg := fmt.Sprintf("w%d k%d ", w, k) + patterned(size, w*each+k)
						if _, _, err := s.WritePkg(msg, 30*time.Second); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			next := make([]int, writers)
			for i := 0; i < writers*each; i++ {
				got := rec.next(t)
				var w, k int
				_, err := fmt.Sscanf(got, "w%d k%d ", &w, &k)
				require.NoError(t, err)
				require.Equal(t, next[w], k, "writer %d out of order", w)
				next[w]++
				size := []int{10, boundary + 7, 3000, 100 << 10}[k%4]
				require.True(t, got == fmt.Sprintf("w%d k%d ", w, k)+patterned(size, w*each+k), "writer %d package %d differs", w, k)
			}
		})
	}
}

// patterned makes size bytes that compress somewhat but not trivially, and
// differ with seed.
func patterned(size, seed int) string {
	b := make([]byte, size)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		if i%64 == 0 {
			x = x*1664525 + 1013904223
		}
		b[i] = byte('a' + (x>>24+uint32(i%13))%26)
	}
	return string(b)
}
