package getty

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/getty-go/getty/internal/bufpool"
)

// chunkStream is an in-memory stream transport that delivers its bytes in
// the given chunks, so framing can be tested without sockets.
type chunkStream struct {
	chunks [][]byte
	c      net.Conn
}

func (f *chunkStream) next(p []byte) (int, error) {
	for len(f.chunks) > 0 && len(f.chunks[0]) == 0 {
		f.chunks = f.chunks[1:]
	}
	if len(f.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.chunks[0])
	f.chunks[0] = f.chunks[0][n:]
	return n, nil
}

func (f *chunkStream) readFresh(size int) (*[]byte, int, error) {
	bp := bufpool.Get(size)
	n, err := f.next(*bp)
	return bp, n, err
}
func (f *chunkStream) read(p []byte) (int, error)       { return f.next(p) }
func (f *chunkStream) setReadDeadline(time.Time) error  { return nil }
func (f *chunkStream) timeoutIsFatal() bool             { return false }
func (f *chunkStream) conn() net.Conn                   { return f.c }
func (f *chunkStream) readLoop(s sessionPort) error     { return s.readStream(f) }
func (f *chunkStream) cork()                            {}
func (f *chunkStream) uncork(bool, time.Duration) error { return nil }
func (f *chunkStream) shutdown(time.Time, error) error  { return nil }
func (f *chunkStream) closeNow(int)                     {}
func (f *chunkStream) setCompress(c CompressType) bool  { return c == CompressNone }
func (f *chunkStream) write([]byte, [][]byte, time.Duration) (int, error) {
	return 0, nil
}
func (f *chunkStream) writeFramed(framed, time.Duration) (int, error) { return 0, nil }

type collect struct {
	BaseListener
	got [][]byte
	err error
}

func (c *collect) OnMessage(_ Session, pkg any) {
	c.got = append(c.got, bytes.Clone(pkg.(*Frame).Payload))
}
func (c *collect) OnError(_ Session, err error) { c.err = err }

// decodeChunks runs a session over the chunks and returns its packages.
func decodeChunks(t testing.TB, rw ReadWriter, maxLen int, chunks [][]byte) ([][]byte, error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tr := &chunkStream{chunks: chunks, c: a}
	s := newSession(nil, tr)
	l := &collect{}
	s.run(func(s Session) error {
		s.SetPkgHandler(rw)
		s.SetEventListener(l)
		s.SetMaxMsgLen(maxLen)
		return nil
	})
	return l.got, l.err
}

func split(data []byte, sizes func() int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(max(sizes(), 1), len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func lengthFramed(payloads [][]byte) []byte {
	var buf []byte
	for _, p := range payloads {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = append(buf, p...)
	}
	return buf
}

// checkReassembly feeds stream whole, byte by byte and in random chunks and
// requires the same packages each time.
func checkReassembly(t testing.TB, rw ReadWriter, maxLen int, stream []byte, seed uint64) {
	whole, errWhole := decodeChunks(t, rw, maxLen, [][]byte{bytes.Clone(stream)})
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for name, sizes := range map[string]func() int{
		"bytes":  func() int { return 1 },
		"random": func() int { return 1 + rng.IntN(64) },
		"large":  func() int { return 1 + rng.IntN(40000) },
	} {
		got, err := decodeChunks(t, rw, maxLen, split(bytes.Clone(stream), sizes))
		require.EqualValuesf(t, (errWhole == nil), (err == nil), "%s: error %v, whole stream: %v", name, err, errWhole)
		require.EqualValuesf(t, len(whole), len(got), "%s: %d packages, whole stream gave %d", name, len(got), len(whole))
		for i := range got {
			require.Truef(t, bytes.Equal(got[i], whole[i]), "%s: package %d differs", name, i)
		}
	}
}

func TestReassembly(t *testing.T) {
	var payloads [][]byte
	for i := 0; i < 200; i++ {
		payloads = append(payloads, bytes.Repeat([]byte{byte(i)}, i*97%5000))
	}
	stream := lengthFramed(payloads)
	got, err := decodeChunks(t, &LengthFieldCodec{}, 64<<10, [][]byte{stream})
	require.Falsef(t, err != nil || len(got) != len(payloads), "got %d packages, err %v", len(got), err)
	checkReassembly(t, &LengthFieldCodec{}, 64<<10, stream, 1)

	lines := []byte("alpha\nbeta\n\ngamma delta\n" + string(bytes.Repeat([]byte("z"), 3000)) + "\n")
	checkReassembly(t, &DelimiterCodec{}, 4096, lines, 2)
	checkReassembly(t, &DelimiterCodec{Delimiter: []byte("\r\n")}, 4096, []byte("a\r\nb\r\r\n\r\n"), 3)
}

// A package longer than the buffer's first size grows it up to the limit.
func TestReassemblyGrowsToMax(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	got, err := decodeChunks(t, &LengthFieldCodec{}, 2<<20, split(lengthFramed([][]byte{big}), func() int { return 7000 }))
	require.Falsef(t, err != nil || len(got) != 1 || len(got[0]) != len(big), "got %d packages, err %v", len(got), err)
	_, err = decodeChunks(t, &LengthFieldCodec{}, 1<<20, [][]byte{lengthFramed([][]byte{big})})
	require.Error(t, err, "a package over the max length must fail")
}

func FuzzReassembly(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x03abc\x00\x00\x00\x00"), uint64(1))
	f.Add(lengthFramed([][]byte{[]byte("hello"), []byte("world"), nil}), uint64(7))
	f.Add([]byte("\xff\xff\xff\xff"), uint64(3))
	f.Add([]byte("\x00\x00\x10\x00partial"), uint64(4))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		checkReassembly(t, &LengthFieldCodec{}, 8192, stream, seed)
		checkReassembly(t, &DelimiterCodec{}, 256, stream, seed)
	})
}

func FuzzLengthFieldCodec(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x03abc"), 4, -0, false)
	f.Add([]byte("\x03abc"), 1, 0, false)
	f.Add([]byte("\x00\x07abc"), 2, -4, true)
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff"), 8, 0, false)
	f.Fuzz(func(t *testing.T, buf []byte, hs, adj int, little bool) {
		c := &LengthFieldCodec{HeaderSize: hs, Adjustment: adj % 64, MaxLength: 1 << 16}
		if little {
			c.ByteOrder = binary.LittleEndian
		}
		pkg, n, err := c.Read(nil, buf)
		if err != nil {
			return
		}
		if pkg == nil {
			require.Falsef(t, n != 0 && n <= len(buf), "need %d with %d buffered and no package", n, len(buf))
			return
		}
		require.Falsef(t, n <= 0 || n > len(buf), "package length %d of %d", n, len(buf))
		// Round trip: what Read decoded, AppendPkg encodes the same.
		out, err := c.AppendPkg(nil, nil, pkg)
		require.NoError(t, err)
		require.Truef(t, bytes.Equal(out, buf[:n]), "round trip %x != %x", out, buf[:n])
		c.ReleasePkg(pkg)
	})
}

func FuzzDelimiterCodec(f *testing.F) {
	f.Add([]byte("abc\n"), []byte("\n"))
	f.Add([]byte("a\r\nb"), []byte("\r\n"))
	f.Add([]byte("no delimiter"), []byte(""))
	f.Fuzz(func(t *testing.T, buf, delim []byte) {
		c := &DelimiterCodec{Delimiter: delim, MaxLength: 1024}
		pkg, n, err := c.Read(nil, buf)
		if err != nil || pkg == nil {
			return
		}
		require.Falsef(t, n <= 0 || n > len(buf), "package length %d of %d", n, len(buf))
		out, err := c.AppendPkg(nil, nil, pkg)
		require.NoError(t, err)
		require.Truef(t, bytes.Equal(out, buf[:n]), "round trip %q != %q", out, buf[:n])
	})
}
