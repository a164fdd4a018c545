//go:build unix

package interop

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	getty "github.com/getty-go/getty"
)

// maxMsg is the servers' max message length here (getty's default is 4096).
const maxMsg = 128 << 10

// ---- ws (npm) as the client of a getty server -------------------------------

// echoServer echoes LengthFieldCodec packages; "cmd:compress" turns on
// per-message deflate for this session's replies, "cmd:close" closes it.
type echoServer struct{ recorder }

func (l *echoServer) OnMessage(s getty.Session, pkg any) {
	f := pkg.(*getty.Frame)
	switch string(f.Payload) {
	case "cmd:compress":
		s.SetCompressType(getty.CompressBestSpeed)
		_, _, _ = s.WritePkg("ok", time.Second)
	case "cmd:close":
		s.Close()
	default:
		_, _, _ = s.WritePkg(f, time.Second)
	}
}

func startServer(t *testing.T, opts []getty.ServerOption, cb getty.NewSessionCallback) getty.Server {
	t.Helper()
	srv := getty.NewWSServer(append([]getty.ServerOption{getty.WithLocalAddress("127.0.0.1:0")}, opts...)...)
	srv.RunEventLoop(cb)
	if srv.Addr() == nil {
		t.Fatal("server did not start")
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestWSPackageAsClient(t *testing.T) {
	requireInterop(t, false)
	l := &echoServer{}
	srv := startServer(t, []getty.ServerOption{getty.WithWebsocketServerPath("/echo")}, func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(l)
		s.SetMaxMsgLen(maxMsg)
		return nil
	})
	u := "ws://" + srv.Addr().String() + "/echo"
	env := []string{"INTEROP_MAX_MSG=" + strconv.Itoa(maxMsg)}

	node := start(t, 90*time.Second, env, "node", "client.js", u, "echo", "deflate", "toolong", "badframe", "serverclose")
	if err := node.wait(90 * time.Second); err != nil {
		t.Fatalf("client.js: %v", err)
	}
	opens, errs := l.settled(t)
	if opens != 5 {
		t.Errorf("%d sessions, want 5 (one per scenario)", opens)
	}
	// Exactly the two sessions that broke the rules ended with an error.
	if len(errs) != 2 || !hasErr(errs, getty.ErrMsgTooLong) || !hasErr(errs, getty.ErrReaderContract) {
		t.Errorf("OnError got %v, want one ErrMsgTooLong and one ErrReaderContract", errs)
	}

	// Shutdown with a ws client connected: it sees a close frame.
	node = start(t, 30*time.Second, env, "node", "client.js", u, "shutdown")
	node.waitLine("READY", 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := node.wait(20 * time.Second); err != nil {
		t.Fatalf("client.js shutdown: %v", err)
	}
}

// ---- a getty client of ws (npm) as the server ------------------------------

type echoClient struct {
	recorder
	got chan []byte
}

func (c *echoClient) OnMessage(_ getty.Session, pkg any) {
	c.got <- bytes.Clone(pkg.(*getty.Frame).Payload)
}

func (c *echoClient) next(t *testing.T, what string) []byte {
	t.Helper()
	select {
	case b := <-c.got:
		return b
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		return nil
	}
}

func TestWSPackageAsServer(t *testing.T) {
	requireInterop(t, false)
	for _, deflate := range []bool{false, true} {
		name := "plain"
		args := []string{"server.js"}
		if deflate {
			name = "permessage-deflate"
			args = append(args, "--deflate")
		}
		t.Run(name, func(t *testing.T) {
			node := start(t, 120*time.Second, nil, "node", args...)
			port := strings.TrimPrefix(node.waitLine("LISTENING ", 20*time.Second), "LISTENING ")

			c := &echoClient{got: make(chan []byte, 1000)}
			cli := getty.NewWSClient(getty.WithServerAddress("ws://127.0.0.1:"+port+"/"),
				getty.WithReconnectInterval(int(50*time.Millisecond)))
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := cli.RunEventLoopContext(ctx, func(s getty.Session) error {
				s.SetPkgHandler(&getty.LengthFieldCodec{})
				s.SetEventListener(c)
				s.SetMaxMsgLen(maxMsg)
				if deflate {
					s.SetCompressType(getty.CompressBestSpeed)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("connect to ws: %v", err)
			}
			s, err := cli.Session()
			if err != nil {
				t.Fatal(err)
			}

			// Random packages, pipelined: echoes byte for byte, in order.
			// (With deflate, ws compresses the echoes; incompressible data
			// grows a little on the wire, so the largest one here keeps a
			// margin below the limit: see the last step.)
			rnd := rand.New(rand.NewPCG(1, 2))
			largest := maxMsg - 4
			if deflate {
				largest = maxMsg - 64
			}
			var sent [][]byte
			for i := range 200 {
				n := rnd.IntN(40000)
				if i < 4 {
					n = []int{0, 1, 125, largest}[i]
				}
				p := randomBytes(rnd, n)
				sent = append(sent, p)
				if _, _, err := s.WritePkg(p, 5*time.Second); err != nil {
					_, _, errs := c.counts()
					t.Fatalf("write %d (%d bytes): %v; OnError: %v", i, len(p), err, errs)
				}
			}
			for i, p := range sent {
				if got := c.next(t, fmt.Sprintf("echo %d", i)); !bytes.Equal(got, p) {
					t.Fatalf("echo %d: %d bytes differ from the %d sent", i, len(got), len(p))
				}
			}
			// WriteBytesArray is one message: a header and two parts.
			if _, err := s.WriteBytesArray([]byte{0, 0, 0, 7}, []byte("two"), []byte("part")); err != nil {
				t.Fatal(err)
			}
			if got := c.next(t, "the WriteBytesArray echo"); string(got) != "twopart" {
				t.Fatalf("WriteBytesArray echo %q", got)
			}
			// A text message from ws reaches the Reader as its bytes.
			_, _, _ = s.WritePkg("cmd:text:héllo ✓", time.Second)
			if got := c.next(t, "a text message"); string(got) != "héllo ✓" {
				t.Fatalf("text message %q", got)
			}

			// Compressible payloads: with deflate, far fewer bytes reach ws.
			type stats struct {
				Messages   int    `json:"messages"`
				Pongs      int    `json:"pongs"`
				Extensions string `json:"extensions"`
				BytesRead  int    `json:"bytesRead"`
			}
			getStats := func() (st stats) {
				t.Helper()
				_, _, _ = s.WritePkg("cmd:stats", time.Second)
				if err := json.Unmarshal(c.next(t, "stats"), &st); err != nil {
					t.Fatal(err)
				}
				return st
			}
			st0 := getStats()
			total := 0
			for i := range 20 {
				p := bytes.Repeat([]byte(fmt.Sprintf("compressible %d ", i)), 4000)
				total += len(p) + 4
				_, _, _ = s.WritePkg(p, 5*time.Second)
				if got := c.next(t, "a compressible echo"); !bytes.Equal(got, p) {
					t.Fatalf("compressible echo %d differs", i)
				}
			}
			st := getStats()
			onWire := st.BytesRead - st0.BytesRead
			t.Logf("ws saw %d messages, extensions %q, %d pong(s); %d bytes of compressible packages took %d bytes on the wire",
				st.Messages, st.Extensions, st.Pongs, total, onWire)
			if st.Pongs < 1 {
				t.Error("ws's ping was not answered")
			}
			if got := strings.Contains(st.Extensions, "permessage-deflate"); got != deflate {
				t.Errorf("extensions %q, want permessage-deflate: %v", st.Extensions, deflate)
			}
			if deflate && onWire*4 > total {
				t.Errorf("getty's writes not compressed: %d bytes on the wire for %d of compressible packages", onWire, total)
			}
			if !deflate && onWire < total {
				t.Errorf("%d bytes on the wire, fewer than the %d written uncompressed", onWire, total)
			}

			// ws closes with an application code: the session ends with
			// that code as its error, and the client dials again.
			_, _, _ = s.WritePkg("cmd:close:4001", time.Second)
			deadline := time.Now().Add(10 * time.Second)
			for {
				opens, closes, errs := c.counts()
				if opens >= 2 && closes >= 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after ws's close: %d opens, %d closes, errors %v", opens, closes, errs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			_, _, errs := c.counts()
			var ce *websocket.CloseError
			switch {
			case len(errs) == 1 && errors.As(errs[0], &ce) && ce.Code == 4001:
				t.Logf("ws closed with 4001: OnError %v", errs[0])
			case len(errs) == 0:
				knownBug(t, "ws closed the session with code 4001 and OnError was not called: "+
					"the WS close handler sets session.closing before readLoop returns the *websocket.CloseError, "+
					"and session.finish drops a read error once closing is set")
			default:
				t.Fatalf("OnError got %v, want one close error with code 4001", errs)
			}
			// The new session's OnOpen has run; the client offers it once
			// OnOpen has returned.
			for s, err = cli.Session(); err != nil; s, err = cli.Session() {
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			_, _, _ = s.WritePkg("after the reconnect", time.Second)
			if got := c.next(t, "an echo after the reconnect"); string(got) != "after the reconnect" {
				t.Fatalf("echo after the reconnect %q", got)
			}
			t.Log("the client reconnected and echoes again")

			if deflate {
				// An incompressible package of exactly the max length: ws
				// compresses the echo, which makes it a few bytes longer on
				// the wire than the message it carries.
				p := randomBytes(rnd, maxMsg-4)
				before := len(errs)
				_, _, _ = s.WritePkg(p, 5*time.Second)
				deadline := time.Now().Add(10 * time.Second)
				for done := false; !done; {
					select {
					case got := <-c.got:
						if !bytes.Equal(got, p) {
							t.Fatal("the echo of the max-length package differs")
						}
						t.Log("an incompressible max-length package, compressed by ws, echoed")
						done = true
					case <-time.After(20 * time.Millisecond):
						_, _, errs := c.counts()
						if len(errs) > before && errors.Is(errs[len(errs)-1], getty.ErrMsgTooLong) {
							knownBug(t, "a %d-byte message (= SetMaxMsgLen) that the peer sent compressed was refused with "+
								"ErrMsgTooLong/1009: the gorilla read limit is set to the max message length, which counts "+
								"compressed bytes on the wire, and deflate grows incompressible data (%v)", maxMsg, errs[len(errs)-1])
							done = true
						} else if time.Now().After(deadline) {
							t.Fatalf("no echo of the max-length package; errors %v", errs)
						}
					}
				}
			}
			cli.Close()
			c.settled(t)
		})
	}
}

func randomBytes(rnd *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(rnd.Uint32())
	}
	return p
}

// ---- headless Chromium ------------------------------------------------------

//go:embed pages/echo.html
var echoPage []byte

// browserEcho echoes whole messages; "cmd:compress" and "cmd:close" as above.
type browserEcho struct{ recorder }

func (l *browserEcho) OnMessage(s getty.Session, pkg any) {
	b := pkg.([]byte)
	switch string(b) {
	case "cmd:compress":
		s.SetCompressType(getty.CompressBestSpeed)
		_, _, _ = s.WritePkg("ok", time.Second)
	case "cmd:close":
		s.Close()
	default:
		_, _, _ = s.WritePkg(b, time.Second)
	}
}

func servePage(t *testing.T, page []byte) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close() })
	return ln, "http://" + ln.Addr().String()
}

func TestChromiumEcho(t *testing.T) {
	requireInterop(t, true)
	_, origin := servePage(t, echoPage)

	l := &browserEcho{}
	srv := startServer(t, []getty.ServerOption{
		getty.WithWebsocketServerPath("/echo"),
		getty.WithWebsocketOriginCheck(func(o string) bool { return o == origin }),
	}, func(s getty.Session) error {
		s.SetPkgHandler(rawCodec)
		s.SetEventListener(l)
		s.SetMaxMsgLen(maxMsg)
		return nil
	})
	denied := &recorder{}
	def := startServer(t, nil, func(s getty.Session) error {
		s.SetPkgHandler(rawCodec)
		s.SetEventListener(denied)
		return nil
	})

	q := url.Values{
		"ws":     {"ws://" + srv.Addr().String() + "/echo"},
		"denied": {"ws://" + def.Addr().String() + "/"},
		"max":    {strconv.Itoa(maxMsg)},
	}
	env := []string{"CHROMIUM=" + chromiumPath()}
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		env = append(env, "SCREENSHOT_DIR="+dir)
	}
	node := start(t, 120*time.Second, env, "node", "browser.js", "echo", origin+"/?"+q.Encode())
	if err := node.wait(120 * time.Second); err != nil {
		t.Fatalf("browser.js echo: %v", err)
	}
	for _, l := range strings.Split(node.output(), "\n") {
		if _, bug, ok := strings.Cut(l, "KNOWN BUG: "); ok {
			knownBug(t, "%s", bug)
		}
	}
	opens, errs := l.settled(t)
	if opens != 4 {
		t.Errorf("%d sessions from the page, want 4", opens)
	}
	for _, err := range errs {
		if !errors.Is(err, getty.ErrMsgTooLong) {
			t.Errorf("OnError got %v; want only ErrMsgTooLong", err)
		}
	}
	if o, _, _ := denied.counts(); o != 0 {
		t.Errorf("the default origin check let %d cross-origin sessions in", o)
	}
}

// chatPeer is a getty WebSocket client in the chat room.
type chatPeer struct {
	recorder
	mu  sync.Mutex
	got []map[string]any
}

func (c *chatPeer) OnMessage(_ getty.Session, pkg any) {
	var m map[string]any
	if json.Unmarshal(pkg.([]byte), &m) == nil {
		c.mu.Lock()
		c.got = append(c.got, m)
		c.mu.Unlock()
	}
}

func (c *chatPeer) saw(name, text string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.got {
		if m["name"] == name && m["text"] == text {
			return true
		}
	}
	return false
}

// The chat example as built: two Chromium pages and a getty client talk.
func TestChromiumChat(t *testing.T) {
	requireInterop(t, true)
	bin := filepath.Join(t.TempDir(), "chat")
	build := start(t, 3*time.Minute, nil, "go", "build", "-o", bin, "github.com/getty-go/getty/examples/chat")
	if err := build.wait(3 * time.Minute); err != nil {
		t.Fatalf("go build ./examples/chat: %v", err)
	}
	chat := start(t, 2*time.Minute, nil, bin, "-addr", "127.0.0.1:0")
	page := strings.Fields(chat.waitLine("chat: page ", 10*time.Second))[2]
	wsURL := strings.Fields(chat.waitLine("chat: websocket ", 10*time.Second))[2]
	chat.waitLine("chat: open ", 10*time.Second)

	peer := &chatPeer{}
	// A slow reconnect: the client is closed once the chat has gone.
	cli := getty.NewWSClient(getty.WithServerAddress(wsURL), getty.WithReconnectInterval(int(min(int64(5*time.Second), math.MaxInt))))
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.RunEventLoopContext(ctx, func(s getty.Session) error {
		s.SetPkgHandler(rawCodec)
		s.SetEventListener(peer)
		return nil
	}); err != nil {
		t.Fatalf("getty client to %s: %v", wsURL, err)
	}

	env := []string{"CHROMIUM=" + chromiumPath()}
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		env = append(env, "SCREENSHOT_DIR="+dir)
	}
	node := start(t, 120*time.Second, env, "node", "browser.js", "chat", page)
	node.waitLine("READY", 90*time.Second)
	for _, m := range [][2]string{{"alice", "hi from alice"}, {"bob", "hi <b>alice</b> & co"}} {
		deadline := time.Now().Add(5 * time.Second)
		for !peer.saw(m[0], m[1]) {
			if time.Now().After(deadline) {
				t.Fatalf("the getty client did not get %s's message %q", m[0], m[1])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Log("the getty client got both pages' messages")
	s, err := cli.Session()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WritePkg(`{"name":"getty","text":"hello from a getty client"}`, time.Second); err != nil {
		t.Fatal(err)
	}

	// Ctrl-C: the chat shuts down cleanly, and every page sees it.
	node.waitLine("STOP", 30*time.Second)
	_ = chat.cmd.Process.Signal(syscall.SIGINT)
	if err := chat.wait(10 * time.Second); err != nil {
		t.Fatalf("chat after SIGINT: %v", err)
	}
	if !strings.Contains(chat.output(), "chat: stopped") {
		t.Error("the chat did not print its last line")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, closes, _ := peer.counts(); closes >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the getty client's session did not close on the chat's shutdown")
		}
	}
	cli.Close()
	if err := node.wait(60 * time.Second); err != nil {
		t.Fatalf("browser.js chat: %v", err)
	}
}
