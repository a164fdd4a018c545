package getty

import (
	"encoding/binary"
	"testing"
)

func wsTestFrame(first byte, payload []byte) []byte {
	out := []byte{first, 0x80}
	switch n := len(payload); {
	case n < 126:
		out[1] |= byte(n)
	case n < 1<<16:
		out[1] |= 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] |= 127
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	return append(append(out, 0, 0, 0, 0), payload...)
}

// feedAll feeds b to a fresh server-side tracker in pieces of at most
// step bytes, as a connection would, and returns where it stopped.
func feedAll(b []byte, step int, deflate bool) (f wsFrameTracker, n int, err error) {
	f.http, f.deflate = -1, deflate
	for n < len(b) {
		end := min(n+step, len(b))
		m, _, ferr := f.feed(b[n:end])
		n += m
		if ferr != nil {
			return f, n, ferr
		}
	}
	return f, n, nil
}

// FuzzWSFrameTracker: however the bytes are split across reads, the
// tracker finds the same frame boundaries, the same message count, and
// stops at the same bad frame.
func FuzzWSFrameTracker(f *testing.F) {
	seeds := [][]byte{
		wsTestFrame(0x82, []byte("hello")),
		append(wsTestFrame(0x02, []byte("a")), append(wsTestFrame(0x89, nil), wsTestFrame(0x80, make([]byte, 300))...)...),
		append(wsTestFrame(0x82, nil), wsTestFrame(0x88, []byte{3})...),
		append(wsTestFrame(0x82|0x40, []byte("z")), wsTestFrame(0x89|0x40, nil)...),
		wsTestFrame(0x82, make([]byte, 70000)),
	}
	for _, s := range seeds {
		f.Add(s, uint8(1), true)
		f.Add(s, uint8(7), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, step uint8, deflate bool) {
		whole, n1, err1 := feedAll(b, len(b)+1, deflate)
		split, n2, err2 := feedAll(b, int(step)+1, deflate)
		// A bad frame's header may have begun in an earlier read, whose
		// bytes are passed on already: split reads may stop up to a
		// header's length later, never earlier.
		if n2 < n1 || n2-n1 >= 14 || err1 == nil && n1 != n2 || (err1 == nil) != (err2 == nil) ||
			whole.msgs != split.msgs || whole.open() != split.open() {
			t.Fatalf("whole: n=%d err=%v msgs=%d open=%v; split by %d: n=%d err=%v msgs=%d open=%v",
				n1, err1, whole.msgs, whole.open(), int(step)+1, n2, err2, split.msgs, split.open())
		}
	})
}

func TestWSFrameTracker(t *testing.T) {
	b := append(wsTestFrame(0x02, []byte("ab")), wsTestFrame(0x89, []byte("p"))...)
	b = append(b, wsTestFrame(0x80, []byte("c"))...)
	f, n, err := feedAll(b, 1, false)
	if err != nil || n != len(b) || f.msgs != 1 || f.open() {
		t.Fatalf("fragmented message with a ping: n=%d/%d err=%v msgs=%d open=%v", n, len(b), err, f.msgs, f.open())
	}
	// A 1-byte close body stops the tracker at the close frame's start.
	good := wsTestFrame(0x82, []byte("x"))
	b = append(append([]byte(nil), good...), wsTestFrame(0x88, []byte{3})...)
	_, n, err = feedAll(b, len(b), false)
	if err == nil || n != len(good) {
		t.Fatalf("1-byte close: n=%d err=%v, want %d and an error", n, err, len(good))
	}
	// RSV1 on a message's first frame is deflate; on a ping it fails.
	if _, _, err = feedAll(wsTestFrame(0xC2, []byte("x")), 3, true); err != nil {
		t.Fatalf("RSV1 on a data frame: %v", err)
	}
	if _, _, err = feedAll(wsTestFrame(0xC9, nil), 3, true); err == nil {
		t.Fatal("RSV1 on a ping was accepted")
	}
	// The client skips the upgrade response first.
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	var c wsFrameTracker
	c.feed([]byte(resp[:20]))
	c.feed(append([]byte(resp[20:]), wsTestFrame(0x82, []byte("x"))[:3]...))
	if !c.open() || c.msgs != 0 {
		t.Fatalf("after the response: open=%v msgs=%d", c.open(), c.msgs)
	}
}
