package getty_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	getty "github.com/getty-go/getty"
)

// echoHandler writes every package back to its sender. Embedding
// BaseListener supplies the callbacks it does not need.
type echoHandler struct{ getty.BaseListener }

func (echoHandler) OnMessage(s getty.Session, pkg any) {
	if _, _, err := s.WritePkg(pkg, time.Second); err != nil {
		fmt.Println("reply:", err)
	}
}

// echoSession is the new-session callback of the examples' servers.
func echoSession(s getty.Session) error {
	s.SetPkgHandler(&getty.LengthFieldCodec{}) // 4-byte big-endian length + payload
	s.SetEventListener(echoHandler{})
	return nil
}

// A TCP echo server on a free loopback port, talked to by a plain net.Conn.
func ExampleNewTCPServer() {
	server := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	server.RunEventLoop(echoSession) // listens, then accepts in the background
	defer server.Close()

	conn, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))

	frame, _ := (&getty.LengthFieldCodec{}).AppendPkg(nil, nil, "hello, getty")
	if _, err := conn.Write(frame); err != nil {
		fmt.Println(err)
		return
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		fmt.Println(err)
		return
	}
	reply := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(conn, reply); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", reply)
	// Output: hello, getty
}

// The built-in length-field codec used directly, showing the Reader's
// return shapes on a growing buffer.
func ExampleLengthFieldCodec() {
	codec := &getty.LengthFieldCodec{} // zero value: 4-byte big-endian length of the payload

	wire, _ := codec.AppendPkg(nil, nil, []byte("ping"))
	fmt.Printf("wire: % x\n", wire)

	pkg, n, err := codec.Read(nil, wire[:2]) // header incomplete
	fmt.Println(pkg, n, err)
	pkg, n, err = codec.Read(nil, wire[:5]) // header parsed: 8 bytes in all
	fmt.Println(pkg, n, err)
	pkg, n, err = codec.Read(nil, wire) // one package of 8 bytes
	fmt.Println(pkg, n, err)

	// Inside a session the package is recycled after OnMessage returns;
	// used by hand, give it back (or keep it with Detach).
	codec.ReleasePkg(pkg)
	// Output:
	// wire: 00 00 00 04 70 69 6e 67
	// <nil> 0 <nil>
	// <nil> 8 <nil>
	// "ping" 8 <nil>
}

// Splitting a byte stream on a delimiter: each Read takes one package off
// the front; the unfinished tail waits for more bytes.
func ExampleDelimiterCodec() {
	codec := &getty.DelimiterCodec{Delimiter: []byte("\r\n")}

	buf := []byte("PING\r\nECHO hi\r\nPAR")
	for {
		pkg, n, err := codec.Read(nil, buf)
		if err != nil || pkg == nil {
			fmt.Printf("pending %q\n", buf)
			break
		}
		fmt.Printf("package %q, %d bytes\n", pkg.(*getty.Frame).Payload, n)
		codec.ReleasePkg(pkg)
		buf = buf[n:]
	}

	out, _ := codec.Write(nil, "PONG")
	fmt.Printf("written %q\n", out)
	// Output:
	// package "PING", 6 bytes
	// package "ECHO hi", 9 bytes
	// pending "PAR"
	// written "PONG\r\n"
}

// A custom codec from two functions: text lines whose packages are
// strings. The Reader copies what it keeps (string(buf[:i])), since buf is
// only valid during the call.
func ExampleReaderFunc() {
	lines := getty.NewReadWriter(
		getty.ReaderFunc(func(_ getty.Session, buf []byte) (any, int, error) {
			i := bytes.IndexByte(buf, '\n')
			switch {
			case i >= 0:
				return string(buf[:i]), i + 1, nil // one package of i+1 bytes
			case len(buf) > 64:
				return nil, 0, errors.New("line too long") // protocol error: the session closes
			}
			return nil, 0, nil // need more bytes
		}),
		getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) {
			s, ok := pkg.(string)
			if !ok {
				return nil, fmt.Errorf("cannot write %T", pkg)
			}
			return append([]byte(s), '\n'), nil
		}),
	)

	for _, in := range []string{"hel", "hello\nworld", strings.Repeat("x", 65)} {
		pkg, n, err := lines.Read(nil, []byte(in))
		fmt.Printf("%q -> %v %d %v\n", in[:min(len(in), 8)], pkg, n, err)
	}
	out, _ := lines.Write(nil, "bye")
	fmt.Printf("%q\n", out)
	// A session uses it with s.SetPkgHandler(lines).

	// Output:
	// "hel" -> <nil> 0 <nil>
	// "hello\nwo" -> hello 6 <nil>
	// "xxxxxxxx" -> <nil> 0 line too long
	// "bye\n"
}

// closeReporter tells when its session's OnClose runs.
type closeReporter struct {
	echoHandler
	opened chan getty.Session
}

func (r closeReporter) OnOpen(s getty.Session) error {
	r.opened <- s
	return nil
}

func (closeReporter) OnClose(getty.Session) { fmt.Println("server: OnClose") }

// Shutdown stops accepting, closes every session after flushing what it
// had accepted for writing, and returns once OnClose has run for each, or
// when ctx ends. Writes to a closed session fail with ErrSessionClosed.
func ExampleServer_Shutdown() {
	handler := closeReporter{opened: make(chan getty.Session, 1)}
	server := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	server.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(handler)
		return nil
	})
	defer server.Close() // a no-op after Shutdown

	conn, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	session := <-handler.opened

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", server.Shutdown(ctx))

	_, _, err = session.WritePkg("too late", time.Second)
	fmt.Println(errors.Is(err, getty.ErrSessionClosed), errors.Is(err, net.ErrClosed))

	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	fmt.Println("peer:", err)
	// Output:
	// server: OnClose
	// shutdown: <nil>
	// true true
	// peer: EOF
}

// replyCollector hands each reply's payload to a channel. The *Frame is
// recycled when OnMessage returns, so it sends a copy.
type replyCollector struct {
	getty.BaseListener
	replies chan string
}

func (c replyCollector) OnMessage(_ getty.Session, pkg any) {
	c.replies <- string(pkg.(*getty.Frame).Payload)
}

// A client pool of two connections to an echo server: RunEventLoopContext
// waits until both are open, Session picks one round-robin.
func ExampleClient() {
	server := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	server.RunEventLoop(echoSession)
	defer server.Close()

	handler := replyCollector{replies: make(chan string, 1)}
	client := getty.NewTCPClient(
		getty.WithServerAddress(server.Addr().String()),
		getty.WithConnectionNumber(2),
	)
	defer client.Close() // stops reconnecting and closes the sessions

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := client.RunEventLoopContext(ctx, func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(handler)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("open sessions:", len(client.Sessions()))

	session, err := client.Session()
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, _, err := session.WritePkg("ping", time.Second); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case reply := <-handler.replies:
		fmt.Println("reply:", reply)
	case <-time.After(5 * time.Second):
		fmt.Println("no reply")
	}
	// Output:
	// open sessions: 2
	// reply: ping
}
