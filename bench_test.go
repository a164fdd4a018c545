package getty_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"

	gxsync "github.com/dubbogo/gost/sync"

	getty "github.com/getty-go/getty"
)

type benchEcho struct{ getty.BaseListener }

func (benchEcho) OnMessage(s getty.Session, pkg any) { _, _, _ = s.WritePkg(pkg, 0) }

// benchModes are the dispatch modes the echo benchmarks run in: each gives
// the server's options and what to close after it.
var benchModes = []struct {
	name string
	opts func() ([]getty.ServerOption, func())
}{
	{"inline", func() ([]getty.ServerOption, func()) { return nil, func() {} }},
	{"workerpool", func() ([]getty.ServerOption, func()) {
		return []getty.ServerOption{getty.WithServerWorkerPool(2)}, func() {}
	}},
	{"workerpool-unordered", func() ([]getty.ServerOption, func()) {
		return []getty.ServerOption{getty.WithServerWorkerPool(2), getty.WithServerOrderedDispatch(false)}, func() {}
	}},
	{"gostpool", func() ([]getty.ServerOption, func()) {
		p := gxsync.NewTaskPoolSimple(4)
		return []getty.ServerOption{getty.WithServerTaskPool(p)}, p.Close
	}},
}

// BenchmarkEcho is one round trip per op over loopback: a plain net client
// (allocation-free) sends a length-prefixed frame, the getty server echoes
// it with the built-in codec. allocs/op are the server's.
func BenchmarkEcho(b *testing.B) {
	for _, m := range benchModes {
		for _, size := range []int{128, 1024} {
			b.Run(m.name+"/"+itoa(size), func(b *testing.B) {
				opts, done := m.opts()
				defer done()
				srv := getty.NewTCPServer(append(opts, getty.WithLocalAddress("127.0.0.1:0"))...)
				srv.RunEventLoop(func(s getty.Session) error {
					s.SetPkgHandler(&getty.LengthFieldCodec{})
					s.SetEventListener(benchEcho{})
					return nil
				})
				defer srv.Close()
				c, err := net.Dial("tcp", srv.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				req := make([]byte, 4+size)
				binary.BigEndian.PutUint32(req, uint32(size))
				resp := make([]byte, len(req))
				roundTrip := func() {
					if _, err := c.Write(req); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, resp); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < 100; i++ { // warm the pools
					roundTrip()
				}
				b.SetBytes(int64(2 * len(req)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					roundTrip()
				}
			})
		}
	}
}

// BenchmarkEchoNetBaseline is the same round trip against a plain
// goroutine-per-connection net server, for a ratio measured in one run.
func BenchmarkEchoNetBaseline(b *testing.B) {
	for _, size := range []int{128, 1024} {
		b.Run(itoa(size), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					if _, err := io.ReadFull(c, buf[:4]); err != nil {
						return
					}
					n := int(binary.BigEndian.Uint32(buf))
					if _, err := io.ReadFull(c, buf[4:4+n]); err != nil {
						return
					}
					if _, err := c.Write(buf[:4+n]); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := make([]byte, 4+size)
			binary.BigEndian.PutUint32(req, uint32(size))
			resp := make([]byte, len(req))
			b.SetBytes(int64(2 * len(req)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n >= 1024 {
		return string(rune('0'+n/1024)) + "KiB"
	}
	return string(rune('0'+n/100)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10)) + "B"
}
