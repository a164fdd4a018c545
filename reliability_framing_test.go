package getty_test

// Hostile framing: lengths and frames a Reader must refuse, over every
// connection-oriented transport. See reliability_test.go.

import (
	"encoding/binary"
	mrand "math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// relSignedCodec is a naive codec with a signed 4-byte length: a negative
// length yields a total <= 4 (or <= 0), which the session must refuse.
// headerForm reports the total before the package is there, as a
// length-field codec does; otherwise it returns a package at once.
type relSignedCodec struct{ headerForm bool }

func (c relSignedCodec) Read(_ getty.Session, b []byte) (any, int, error) {
	if len(b) < 4 {
		return nil, 0, nil
	}
	total := 4 + int(int32(binary.BigEndian.Uint32(b)))
	if c.headerForm && total > 4 && total > len(b) {
		return nil, total, nil
	}
	if c.headerForm && total <= 4 {
		return nil, total, nil
	}
	if total > len(b) {
		return nil, total, nil
	}
	return []byte("pkg"), total, nil
}

// relHostile is one hostile input: the bytes a peer sends after its
// handshake, the Reader the server uses for it, and the error expected.
type relHostile struct {
	name   string
	reader getty.Reader // nil: LengthFieldCodec{}
	data   []byte
	want   error // errors.Is target; nil: any getty sentinel
	wantSE bool  // only a *SessionError is expected (no sentinel fits)

	// a large limit, so the declared length is allowed and the peer
	// stalls: what is allocated must follow what arrives, not what is
	// declared; the read timeout ends the session
	bigLimit bool
}

const (
	relBigLimit     = 64 << 20
	relStallTimeout = 300 * time.Millisecond
)

func relRandom(n int, first byte, avoid byte) []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
		if b[i] == avoid {
			b[i]++
		}
	}
	b[0] = first
	return b
}

func relHostileStream() []relHostile {
	hdr := func(v uint32, rest int) []byte {
		b := binary.BigEndian.AppendUint32(nil, v)
		return append(b, make([]byte, rest)...)
	}
	neg := func(v int32) uint32 { return uint32(v) }
	return []relHostile{
		{name: "declared 1 GiB", data: hdr(1<<30, 100), want: getty.ErrMsgTooLong},
		{name: "declared 4 GiB", data: hdr(0xffffffff, 100), want: getty.ErrMsgTooLong},
		{name: "declared 64 MiB within the limit, then stalls", data: hdr(relBigLimit-4, 100), want: getty.ErrReadTimeout, bigLimit: true},
		{name: "signed negative header", reader: relSignedCodec{headerForm: true}, data: hdr(neg(-100), 100), want: getty.ErrReaderContract},
		{name: "signed negative package", reader: relSignedCodec{}, data: hdr(neg(-100), 100), want: getty.ErrReaderContract},
		{name: "signed zero total", reader: relSignedCodec{}, data: hdr(neg(-4), 100), want: getty.ErrReaderContract},
		{name: "signed most negative", reader: relSignedCodec{headerForm: true}, data: hdr(neg(-1<<31), 100), want: getty.ErrReaderContract},
		// A field that counts its own 4 bytes, and says 0: a negative payload.
		{name: "adjusted negative", reader: &getty.LengthFieldCodec{Adjustment: -4}, data: hdr(0, 100)},
		{name: "garbage", data: relRandom(256<<10, 0x7f, 0), want: getty.ErrMsgTooLong},
		{name: "garbage lines", reader: &getty.DelimiterCodec{}, data: relRandom(256<<10, 'x', '\n'), want: getty.ErrMsgTooLong},
		{name: "reader never progresses", reader: getty.ReaderFunc(func(getty.Session, []byte) (any, int, error) { return nil, 0, nil }),
			data: relRandom(256<<10, 0, 0), want: getty.ErrMsgTooLong},
		{name: "reader always wants one more", reader: getty.ReaderFunc(func(_ getty.Session, b []byte) (any, int, error) { return nil, len(b) + 1, nil }),
			data: relRandom(256<<10, 0, 0), want: getty.ErrMsgTooLong},
	}
}

func relHostileWS() []relHostile {
	var big []byte // one frame declaring 1 GiB, and the start of its payload
	big = append(big, 0x82, 0x80|127)
	big = binary.BigEndian.AppendUint64(big, 1<<30)
	big = append(big, 1, 2, 3, 4)
	big = append(big, make([]byte, 1024)...)
	var frags []byte // 8 fragments of 16 KiB: one 128 KiB message
	for i := 0; i < 8; i++ {
		op := byte(0x02)
		if i > 0 {
			op = 0x00
		}
		if i == 7 {
			op |= 0x80
		}
		frags = append(frags, relWSFrame(op, make([]byte, 16<<10))...)
	}
	var stall []byte // a frame declaring 64 MiB - 14 within a 64 MiB limit, stalled
	stall = append(stall, 0x82, 0x80|127)
	stall = binary.BigEndian.AppendUint64(stall, relBigLimit-14)
	stall = append(stall, 1, 2, 3, 4)
	stall = append(stall, make([]byte, 100)...)
	return []relHostile{
		{name: "frame declares 1 GiB", data: big, want: getty.ErrMsgTooLong},
		{name: "frame declares 64 MiB within the limit, then stalls", data: stall, want: getty.ErrReadTimeout, bigLimit: true},
		{name: "fragments over the limit", data: frags, want: getty.ErrMsgTooLong},
		{name: "codec declares 1 GiB in a message", data: relWSFrame(0x82, []byte{0x40, 0, 0, 0, 'a'})},
		{name: "garbage", data: relRandom(64<<10, 0xff, 0), wantSE: true},
	}
}

// Hostile bytes close their session with a matchable error, cost less than
// 1 MiB of allocation, and leave the other sessions served.
func TestReliabHostileFraming(t *testing.T) {
	run(t, func(t *testing.T, tr transport) {
		const maxLen = 64 << 10
		cases := relHostileStream()
		if !tr.stream {
			cases = relHostileWS()
		}
		rec := newRelErrRecorder(true)
		srv := startServer(t, tr.newServer(t), func(s getty.Session) error {
			codec := &getty.LengthFieldCodec{}
			s.SetPkgHandler(codec)
			s.SetEventListener(rec)
			s.SetMaxMsgLen(maxLen)
			if i := relPeerIndex(s.RemoteAddr(), 2); i >= 0 {
				if cases[i].reader != nil {
					s.SetReader(cases[i].reader)
				}
				if cases[i].bigLimit {
					s.SetMaxMsgLen(relBigLimit)
					s.SetReadTimeout(relStallTimeout)
				}
			}
			return nil
		})
		tg := relTargetOf(t, tr, srv)
		good := relConnect(t, tg)
		require.NoError(t, good.echo("before"))

		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p, err := tg.connectFrom(relPeerIP(2, i))
				require.NoError(t, err)
				defer p.Close()
				addr := p.tcp.LocalAddr().String()
				eventually(t, "the session to open", func() bool {
					rec.mu.Lock()
					defer rec.mu.Unlock()
					return rec.opens[addr] == 1
				})

				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				_ = p.raw(c.data) // may fail: the server can close first
				_, err = p.waitClosed(10 * time.Second)
				require.NoError(t, err, "hostile peer not disconnected")
				errs := rec.waitClose(t, addr)
				runtime.ReadMemStats(&after)

				alloc := after.TotalAlloc - before.TotalAlloc
				t.Logf("allocated %d KiB while refusing %d bytes", alloc>>10, len(c.data))
				assert.Less(t, alloc, uint64(1<<20), "bytes allocated for the hostile session")
				require.Len(t, errs, 1, "one OnError")
				var se *getty.SessionError
				assert.ErrorAs(t, errs[0], &se, "OnError gets a *SessionError")
				switch {
				case c.wantSE:
				case c.want != nil:
					assert.ErrorIs(t, errs[0], c.want)
				default:
					assert.True(t, relMatchesSentinel(errs[0]),
						"error not matchable with errors.Is against any getty sentinel: %v", errs[0])
				}
				require.NoError(t, good.echo("after "+c.name), "the other session is still served")
			})
		}
	}, connected)
}
