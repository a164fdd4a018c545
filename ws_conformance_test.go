package getty_test

import (
	"bytes"
	"compress/flate"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// The WebSocket conformance table: in the spirit of the Autobahn
// testsuite's sections 1-7 and 9, a raw peer sends frames to an echo
// server (one package per message) and checks what the RFCs prescribe:
// the echo, the pong, or the close code that fails the connection.
// RFC 6455 §5 (framing), §5.5 (control frames), §7.4 (close codes), §8.1
// (UTF-8); RFC 7692 §6 (permessage-deflate).

const (
	wsConfLimit   = 70_000 // max message length: a 64-bit length frame fits
	wsConfTimeout = 300 * time.Millisecond
)

// wsConfStep is what a case does: send frames and expect answers.
type wsConfStep func(t *testing.T, r *rawWS)

func sendF(first byte, p []byte) wsConfStep {
	return func(_ *testing.T, r *rawWS) { r.send(first, true, p) }
}

func sendUnmasked(first byte, p []byte) wsConfStep {
	return func(_ *testing.T, r *rawWS) { r.send(first, false, p) }
}

// expectF reads the next frame: op with payload p.
func expectF(op byte, p []byte) wsConfStep {
	return func(t *testing.T, r *rawWS) {
		t.Helper()
		fin, gotOp, got, err := r.read()
		require.NoError(t, err)
		assert.True(t, fin)
		assert.Equal(t, op, gotOp)
		assert.Equal(t, len(p), len(got))
		assert.True(t, bytes.Equal(p, got), "payload")
	}
}

// echoOf expects the echo of a message (the server writes binary).
func echoOf(p []byte) wsConfStep { return expectF(opBinary, p) }

// drip sends b one byte at a time, every gap; write errors (the server
// may have closed already) end it.
func drip(b []byte, gap time.Duration) wsConfStep {
	return func(_ *testing.T, r *rawWS) {
		for i := range b {
			_ = r.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := r.c.Write(b[i : i+1]); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}
}

func pause(d time.Duration) wsConfStep {
	return func(*testing.T, *rawWS) { time.Sleep(d) }
}

// deflated compresses p as a permessage-deflate message (no context
// takeover): a raw deflate stream without its final empty block's tail.
func deflated(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

func rep(s string, n int) []byte { return []byte(strings.Repeat(s, n)) }

type wsConfCase struct {
	name    string
	deflate bool // offer permessage-deflate
	steps   []wsConfStep
	code    int // the close code the server must send; 0: the connection stays good
}

func wsConfCases() []wsConfCase {
	bin, txt, cont := byte(0x80|opBinary), byte(0x80|opText), byte(0x80|opCont)
	ping, pong, cls := byte(0x80|opPing), byte(0x80|opPong), byte(0x80|opClose)
	const rsv1, rsv2, rsv3 = 0x40, 0x20, 0x10
	c := []wsConfCase{
		// 1 framing
		// An empty message holds no package: nothing to echo.
		{name: "1 binary empty", steps: []wsConfStep{sendF(bin, nil), sendF(bin, []byte("x")), echoOf([]byte("x"))}},
		{name: "1 binary 125", steps: []wsConfStep{sendF(bin, rep("*", 125)), echoOf(rep("*", 125))}},
		{name: "1 binary 126 (16-bit length)", steps: []wsConfStep{sendF(bin, rep("*", 126)), echoOf(rep("*", 126))}},
		{name: "1 binary 65535", steps: []wsConfStep{sendF(bin, rep("*", 65535)), echoOf(rep("*", 65535))}},
		{name: "1 binary 65536 (64-bit length)", steps: []wsConfStep{sendF(bin, rep("*", 65536)), echoOf(rep("*", 65536))}},
		{name: "1 text 125", steps: []wsConfStep{sendF(txt, rep("t", 125)), echoOf(rep("t", 125))}},
		{name: "1 unmasked client frame", steps: []wsConfStep{sendUnmasked(bin, []byte("x"))}, code: 1002},

		// 2 pings and pongs
		{name: "2 ping empty", steps: []wsConfStep{sendF(ping, nil), expectF(opPong, nil)}},
		{name: "2 ping 125", steps: []wsConfStep{sendF(ping, rep("p", 125)), expectF(opPong, rep("p", 125))}},
		{name: "2 ping binary payload", steps: []wsConfStep{sendF(ping, []byte{0, 0xff, 0xfe, 1}), expectF(opPong, []byte{0, 0xff, 0xfe, 1})}},
		{name: "2 ping 126", steps: []wsConfStep{sendF(ping, rep("p", 126))}, code: 1002},
		{name: "2 unsolicited pong", steps: []wsConfStep{sendF(pong, []byte("u")), sendF(bin, []byte("after")), echoOf([]byte("after"))}},
		{name: "2 ten pings", steps: func() []wsConfStep {
			var s []wsConfStep
			for i := 0; i < 10; i++ {
				s = append(s, sendF(ping, []byte{byte(i)}))
			}
			for i := 0; i < 10; i++ {
				s = append(s, expectF(opPong, []byte{byte(i)}))
			}
			return s
		}()},
		{name: "2 fragmented ping", steps: []wsConfStep{sendF(opPing, []byte("p"))}, code: 1002},
		{name: "2 ping dripped within the read timeout", steps: []wsConfStep{
			drip(frameBytes(ping, true, nil), 20*time.Millisecond), expectF(opPong, nil)}},
		{name: "2 ping header dripped past the read timeout", steps: []wsConfStep{
			drip(frameBytes(ping, true, nil), wsConfTimeout/3)}, code: 1008},
		{name: "2 data header dripped past the read timeout", steps: []wsConfStep{
			drip(frameBytes(bin, true, rep("d", 1000))[:8], wsConfTimeout/3)}, code: 1008},
		{name: "2 idle beyond the read timeout, then a message", steps: []wsConfStep{
			sendF(bin, []byte("a")), echoOf([]byte("a")), pause(2 * wsConfTimeout),
			sendF(bin, []byte("b")), echoOf([]byte("b"))}},

		// 3 reserved bits
		{name: "3 RSV1 without an extension", steps: []wsConfStep{sendF(bin|rsv1, []byte("x"))}, code: 1002},
		{name: "3 RSV2", steps: []wsConfStep{sendF(bin|rsv2, []byte("x"))}, code: 1002},
		{name: "3 RSV3", steps: []wsConfStep{sendF(bin|rsv3, []byte("x"))}, code: 1002},
		{name: "3 RSV1-3 on a ping", steps: []wsConfStep{sendF(ping|rsv1|rsv2|rsv3, nil)}, code: 1002},
		{name: "3 RSV2 after a good message", steps: []wsConfStep{
			sendF(bin, []byte("ok")), sendF(bin|rsv2, []byte("x")), echoOf([]byte("ok"))}, code: 1002},
		{name: "3 deflate: compressed message", deflate: true, steps: []wsConfStep{
			sendF(bin|rsv1, deflated(rep("compress me ", 50))), echoOf(rep("compress me ", 50))}},
		{name: "3 deflate: RSV1 on a ping", deflate: true, steps: []wsConfStep{sendF(ping|rsv1, nil)}, code: 1002},
		{name: "3 deflate: RSV1 on a pong", deflate: true, steps: []wsConfStep{sendF(pong|rsv1, nil)}, code: 1002},
		{name: "3 deflate: RSV1 on a close", deflate: true, steps: []wsConfStep{sendF(cls|rsv1, closePayload(1000, ""))}, code: 1002},
		{name: "3 deflate: RSV1 on a continuation", deflate: true, steps: []wsConfStep{
			sendF(opBinary, []byte("a")), sendF(cont|rsv1, []byte("b"))}, code: 1002},
		{name: "3 deflate: RSV2", deflate: true, steps: []wsConfStep{sendF(bin|rsv2, []byte("x"))}, code: 1002},
	}
	// 4 opcodes
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		c = append(c, wsConfCase{name: "4 reserved opcode " + string("0123456789ABCDEF"[op]),
			steps: []wsConfStep{sendF(0x80|op, nil)}, code: 1002})
	}
	whole := rep("fragment ", 10)
	c = append(c, []wsConfCase{
		// 5 fragmentation
		{name: "5 three fragments", steps: []wsConfStep{
			sendF(opBinary, whole[:10]), sendF(opCont, whole[10:50]), sendF(cont, whole[50:]), echoOf(whole)}},
		{name: "5 empty fragments", steps: []wsConfStep{
			sendF(opBinary, nil), sendF(opCont, whole), sendF(opCont, nil), sendF(cont, nil), echoOf(whole)}},
		{name: "5 ping between fragments", steps: []wsConfStep{
			sendF(opBinary, whole[:10]), sendF(ping, []byte("mid")), sendF(cont, whole[10:]),
			expectF(opPong, []byte("mid")), echoOf(whole)}},
		{name: "5 many small fragments", steps: func() []wsConfStep {
			s := []wsConfStep{sendF(opBinary, whole[:1])}
			for i := 1; i < len(whole)-1; i++ {
				s = append(s, sendF(opCont, whole[i:i+1]))
			}
			return append(s, sendF(cont, whole[len(whole)-1:]), echoOf(whole))
		}()},
		{name: "5 continuation without a start", steps: []wsConfStep{sendF(cont, []byte("x"))}, code: 1002},
		{name: "5 new message inside a fragmented one", steps: []wsConfStep{
			sendF(opBinary, []byte("a")), sendF(bin, []byte("b"))}, code: 1002},
		{name: "5 fragmented close", steps: []wsConfStep{sendF(opClose, closePayload(1000, ""))}, code: 1002},

		// 6 UTF-8
		{name: "6 valid text", steps: []wsConfStep{
			sendF(txt, []byte("Hello-µ@ßöäüàá-UTF-8!!")), echoOf([]byte("Hello-µ@ßöäüàá-UTF-8!!"))}},
		{name: "6 valid text split inside a code point", steps: []wsConfStep{
			sendF(opText, []byte("κό")[:3]), sendF(cont, []byte("κό")[3:]), echoOf([]byte("κό"))}},
		{name: "6 invalid text", steps: []wsConfStep{sendF(txt, []byte{0xce, 0xba, 0xff})}, code: 1007},
		{name: "6 invalid text in the last fragment", steps: []wsConfStep{
			sendF(opText, []byte("ok")), sendF(cont, []byte{0xff})}, code: 1007},
		{name: "6 surrogate", steps: []wsConfStep{sendF(txt, []byte{0xed, 0xa0, 0x80})}, code: 1007},
		{name: "6 overlong", steps: []wsConfStep{sendF(txt, []byte{0xc0, 0xaf})}, code: 1007},
		{name: "6 truncated code point", steps: []wsConfStep{sendF(txt, []byte{'a', 0xe2, 0x82})}, code: 1007},

		// 7 close handling
		{name: "7 close without a body", steps: []wsConfStep{sendF(cls, nil)}, code: 1005},
		{name: "7 close with a 1-byte body", steps: []wsConfStep{sendF(cls, []byte{0x03})}, code: 1002},
		{name: "7 close 1000 with a reason", steps: []wsConfStep{sendF(cls, closePayload(1000, "bye"))}, code: 1000},
		{name: "7 close with a 123-byte reason", steps: []wsConfStep{sendF(cls, closePayload(1000, strings.Repeat("r", 123)))}, code: 1000},
		{name: "7 close reason of 124 bytes", steps: []wsConfStep{sendF(cls, closePayload(1000, strings.Repeat("r", 124)))}, code: 1002},
		{name: "7 close reason invalid UTF-8", steps: []wsConfStep{sendF(cls, closePayload(1000, "\xce\xba\xff"))}, code: 1002},
		{name: "7 data after close is ignored", steps: []wsConfStep{
			sendF(cls, closePayload(1000, "")), sendF(bin, []byte("late"))}, code: 1000},
		{name: "7 ping after close is ignored", steps: []wsConfStep{
			sendF(cls, closePayload(1000, "")), sendF(ping, nil)}, code: 1000},
	}...)
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		c = append(c, wsConfCase{name: "7 valid close code " + strconv.Itoa(code),
			steps: []wsConfStep{sendF(cls, closePayload(code, ""))}, code: code})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		c = append(c, wsConfCase{name: "7 invalid close code " + strconv.Itoa(code),
			steps: []wsConfStep{sendF(cls, closePayload(code, ""))}, code: 1002})
	}
	return append(c, []wsConfCase{
		// 9 limits
		{name: "9 message at the limit", steps: []wsConfStep{
			sendF(bin, rep("L", wsConfLimit)), echoOf(rep("L", wsConfLimit))}},
		{name: "9 message over the limit", steps: []wsConfStep{sendF(bin, rep("L", wsConfLimit+1))}, code: 1009},
		{name: "9 fragmented message over the limit", steps: []wsConfStep{
			sendF(opBinary, rep("L", wsConfLimit/2+1)), sendF(cont, rep("L", wsConfLimit/2+1))}, code: 1009},
		{name: "9 deflated message over the limit once inflated", deflate: true, steps: []wsConfStep{
			sendF(bin|rsv1, deflated(rep("L", wsConfLimit+1)))}, code: 1009},
		{name: "9 64 KiB in 4 KiB fragments", steps: func() []wsConfStep {
			big := rep("F", 64<<10)
			s := []wsConfStep{sendF(opBinary, big[:4096])}
			for off := 4096; off < len(big)-4096; off += 4096 {
				s = append(s, sendF(opCont, big[off:off+4096]))
			}
			return append(s, sendF(cont, big[len(big)-4096:]), echoOf(big))
		}()},
	}...)
}

// wholeMessageCodec takes each WebSocket message as one package.
var wholeMessageCodec = getty.NewReadWriter(
	getty.ReaderFunc(func(_ getty.Session, buf []byte) (any, int, error) {
		return bytes.Clone(buf), len(buf), nil
	}),
	getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) { return pkg.([]byte), nil }),
)

type wsConfEcho struct{ getty.BaseListener }

func (wsConfEcho) OnMessage(s getty.Session, pkg any) { _, _, _ = s.WritePkg(pkg, 0) }

func TestWSConformance(t *testing.T) {
	srv := startServer(t, row("ws").newServer(t), func(s getty.Session) error {
		s.SetPkgHandler(wholeMessageCodec)
		s.SetEventListener(wsConfEcho{})
		s.SetMaxMsgLen(wsConfLimit)
		s.SetReadTimeout(wsConfTimeout)
		return nil
	})
	for _, c := range wsConfCases() {
		t.Run(c.name, func(t *testing.T) {
			var h map[string]string
			if c.deflate {
				h = map[string]string{"Sec-WebSocket-Extensions": "permessage-deflate; client_no_context_takeover; server_no_context_takeover"}
			}
			r, resp := wsHandshake(t, srv.Addr().String(), "/", h)
			require.Equal(t, 101, resp.StatusCode)
			if c.deflate {
				require.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
			}
			for _, step := range c.steps {
				step(t, r)
			}
			want := c.code
			if want == 0 {
				// Still good: an orderly close is echoed.
				r.send(0x80|opClose, true, closePayload(1000, ""))
				want = 1000
			}
			assert.Equal(t, want, r.closeCode())
			r.waitEOF()
		})
	}
}
