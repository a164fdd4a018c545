package getty

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

var proxySeeds = [][]byte{
	[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 5555 8080\r\n"),
	[]byte("PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\nrest"),
	[]byte("PROXY UNKNOWN\r\n"),
	[]byte("PROXY TCP4 1.2.3.4"),
	[]byte("PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n"),
	[]byte("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n"),
	[]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x09\xc0\x00\x02\x01\x9c\x40\x1f\x90"),
	[]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"),
	[]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\xd8"),
	[]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x10\xc6\x33\x64\x09\xc0\x00\x02\x01\x9c\x40\x1f\x90\x04\x00\x01\x00"),
	[]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x10\xc6\x33\x64\x09\xc0\x00\x02\x01\x9c\x40\x1f\x90\x04\x00\x05\x00"),
	[]byte("GET / HTTP/1.1\r\n"),
}

// The parser never panics, never claims more bytes than it was given or
// than the limits allow, and says "incomplete" only for a valid start.
func FuzzProxyHeader(f *testing.F) {
	for _, s := range proxySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseProxyHeader(b)
		switch {
		case err == errProxyIncomplete:
			if len(b) >= proxyV2Max {
				t.Fatalf("incomplete with %d bytes", len(b))
			}
		case err != nil:
			if !errors.Is(err, ErrProxyHeader) {
				t.Fatalf("error %v does not match ErrProxyHeader", err)
			}
		default:
			if h == nil || n <= 0 || n > len(b) || n > proxyV2Max || h.Version == 1 && n > proxyV1Max {
				t.Fatalf("header %+v of %d bytes from %d", h, n, len(b))
			}
			if !h.Local && (h.Source == nil || h.Destination == nil) {
				t.Fatalf("proxied header without addresses: %+v", h)
			}
		}
	})
}

// Without peeking (systems other than Unix) the header is read exactly:
// the bytes after it stay in the stream.
func TestReadProxyExactLeavesTheRest(t *testing.T) {
	for _, hdr := range [][]byte{proxySeeds[0], proxySeeds[2], proxySeeds[6], proxySeeds[9]} {
		a, b := net.Pipe()
		go func() {
			_, _ = b.Write(append(append([]byte(nil), hdr...), "after"...))
			b.Close()
		}()
		_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := readProxyExact(a)
		if err != nil || h == nil {
			t.Fatalf("%q: %v", hdr, err)
		}
		rest, _ := io.ReadAll(a)
		if string(rest) != "after" {
			t.Fatalf("%q: left %q, want %q", hdr, rest, "after")
		}
		a.Close()
	}
}

func TestReadProxyExactRefuses(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"PROXY TCP4 1.2", io.ErrUnexpectedEOF},
		{"HELLO WORLD", ErrProxyHeaderMissing},
		{"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff", ErrProxyHeader},
		{"", ErrProxyHeaderMissing},
	} {
		a, b := net.Pipe()
		go func() {
			_, _ = b.Write([]byte(tc.in))
			b.Close()
		}()
		_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := readProxyExact(a)
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrProxyHeader) {
			t.Errorf("%q: got %v, want %v", tc.in, err, tc.want)
		}
		a.Close()
	}
}
