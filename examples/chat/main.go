// Command chat is a chat room in the browser over a getty WebSocket server.
//
//	go run ./examples/chat -addr 127.0.0.1:8080
//
// It serves the page (index.html, embedded in the binary) at / on -addr and
// the WebSocket at /ws on -ws-addr (by default the next port: 8081). Every message a browser sends is
// broadcast to every connected session, the sender's included.
//
// A getty WebSocket server answers only its own path (anything else is a
// 404), so the page comes from a plain net/http server on another port. The
// browser then opens the WebSocket from another origin, which getty's
// default same-origin check refuses; the server is given an origin check
// that accepts the page's own origins instead (see allowedOrigins).
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	getty "github.com/getty-go/getty"
)

//go:embed index.html
var indexHTML string

var pageTmpl = template.Must(template.New("index").Parse(indexHTML))

// Limits of one chat message, checked by the server.
const (
	maxName = 32   // runes
	maxText = 1000 // runes
	maxMsg  = 8 << 10
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` of the page (HTTP)")
	wsAddr := flag.String("ws-addr", "", "`host:port` of the WebSocket server (default: the -addr host, its port + 1; a free port with -addr port 0)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *wsAddr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run serves the chat until ctx ends, then shuts down.
func run(ctx context.Context, addr, wsAddr string, out io.Writer) error {
	c, err := start(addr, wsAddr, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "chat: page      %s\n", c.PageURL())
	fmt.Fprintf(out, "chat: websocket %s\n", c.WSURL())
	fmt.Fprintf(out, "chat: open %s in a browser; Ctrl-C stops\n", c.PageURL())
	<-ctx.Done()
	fmt.Fprintln(out, "chat: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = c.Shutdown(sctx)
	fmt.Fprintln(out, "chat: stopped")
	return err
}

// chat is the page server, the WebSocket server and the room.
type chat struct {
	room   *room
	page   *http.Server
	pageLn net.Listener
	ws     getty.Server
	wsPort string
	served chan struct{} // closed when the page server's Serve returns
}

func start(addr, wsAddr string, out io.Writer) (*chat, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	if wsAddr == "" {
		wsPort := 0
		if _, p, _ := net.SplitHostPort(addr); p != "0" && p != "" {
			wsPort = ln.Addr().(*net.TCPAddr).Port + 1
		}
		wsAddr = net.JoinHostPort(host, strconv.Itoa(wsPort))
	}
	origins := allowedOrigins(addr, ln.Addr().(*net.TCPAddr))

	c := &chat{room: newRoom(out), pageLn: ln, served: make(chan struct{})}
	c.ws = getty.NewWSServer(
		getty.WithLocalAddress(wsAddr),
		getty.WithWebsocketServerPath("/ws"),
		getty.WithWebsocketOriginCheck(func(origin string) bool {
			if origin == "" {
				return true // not a browser: no page to protect
			}
			return origins(origin)
		}),
	)
	codec := getty.NewReadWriter(
		// A WebSocket session hands the Reader one whole message.
		getty.ReaderFunc(func(_ getty.Session, b []byte) (any, int, error) {
			return bytes.Clone(b), len(b), nil
		}),
		getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) {
			return pkg.([]byte), nil
		}),
	)
	c.ws.RunEventLoop(func(s getty.Session) error {
		s.SetName("chat")
		s.SetPkgHandler(codec)
		s.SetEventListener(c.room)
		s.SetMaxMsgLen(maxMsg)
		s.SetCronPeriod(30_000) // ms: a WebSocket ping every 30 s keeps idle tabs connected
		return nil
	})
	if c.ws.Addr() == nil {
		ln.Close()
		return nil, fmt.Errorf("websocket server on %s did not start (see the log above)", wsAddr)
	}
	_, c.wsPort, _ = net.SplitHostPort(c.ws.Addr().String())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.servePage)
	c.page = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() {
		defer close(c.served)
		_ = c.page.Serve(ln)
	}()
	return c, nil
}

func (c *chat) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTmpl.Execute(w, struct{ WSPort string }{c.wsPort})
}

// PageURL is where a browser opens the chat.
func (c *chat) PageURL() string { return "http://" + c.pageLn.Addr().String() + "/" }

// WSURL is the chat's WebSocket, for programs (the page builds its own from
// the host it was loaded from).
func (c *chat) WSURL() string { return "ws://" + c.ws.Addr().String() + "/ws" }

// Shutdown stops the page server and closes every chat session.
func (c *chat) Shutdown(ctx context.Context) error {
	err := c.page.Shutdown(ctx)
	<-c.served
	return errors.Join(err, c.ws.Shutdown(ctx))
}

// allowedOrigins returns the check for a browser's Origin: the page's own
// scheme://host:port, for the names this machine answers to on the page's
// listener (loopback names for a loopback listener; the interface addresses
// and the host name for an unspecified one). Any other site's page is
// refused, so it cannot open the chat from a visitor's browser.
func allowedOrigins(addr string, ln *net.TCPAddr) func(origin string) bool {
	port := strconv.Itoa(ln.Port)
	hosts := map[string]bool{ln.IP.String(): true}
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
		hosts[strings.ToLower(h)] = true
	}
	if ln.IP.IsLoopback() || ln.IP.IsUnspecified() {
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			hosts[h] = true
		}
	}
	if ln.IP.IsUnspecified() {
		if as, err := net.InterfaceAddrs(); err == nil {
			for _, a := range as {
				if ipn, ok := a.(*net.IPNet); ok {
					hosts[ipn.IP.String()] = true
				}
			}
		}
		if h, err := os.Hostname(); err == nil {
			hosts[strings.ToLower(h)] = true
		}
	}
	return func(origin string) bool {
		u, err := url.Parse(origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return false
		}
		p := u.Port()
		if p == "" {
			p = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		return p == port && hosts[strings.ToLower(u.Hostname())]
	}
}

// ---- the room ---------------------------------------------------------------

// message is what the page sends ({name, text}) and what the server
// broadcasts (with the time; system messages have no name).
type message struct {
	Name   string `json:"name,omitempty"`
	Text   string `json:"text"`
	Time   string `json:"time,omitempty"`
	System bool   `json:"system,omitempty"`
}

// room keeps the open sessions and broadcasts to them.
type room struct {
	getty.BaseListener
	out io.Writer

	mu      sync.Mutex
	members map[getty.Session]struct{}
}

func newRoom(out io.Writer) *room {
	return &room{out: out, members: map[getty.Session]struct{}{}}
}

func (r *room) OnOpen(s getty.Session) error {
	r.mu.Lock()
	r.members[s] = struct{}{}
	n := len(r.members)
	r.mu.Unlock()
	fmt.Fprintf(r.out, "chat: session %d joined from %s (%d online)\n", s.ID(), s.RemoteAddr(), n)
	r.broadcast(message{System: true, Text: fmt.Sprintf("someone joined; %d online", n)})
	return nil
}

func (r *room) OnClose(s getty.Session) {
	r.mu.Lock()
	delete(r.members, s)
	n := len(r.members)
	r.mu.Unlock()
	fmt.Fprintf(r.out, "chat: session %d left (%d online)\n", s.ID(), n)
	r.broadcast(message{System: true, Text: fmt.Sprintf("someone left; %d online", n)})
}

func (r *room) OnError(s getty.Session, err error) {
	fmt.Fprintf(r.out, "chat: session %d: %v\n", s.ID(), err)
}

func (r *room) OnMessage(s getty.Session, pkg any) {
	var m message
	if err := json.Unmarshal(pkg.([]byte), &m); err != nil {
		r.send(s, message{System: true, Text: "not understood: send {\"name\": ..., \"text\": ...}"})
		return
	}
	m.Name = clip(strings.TrimSpace(m.Name), maxName)
	m.Text = clip(strings.TrimSpace(m.Text), maxText)
	if m.Name == "" {
		m.Name = "anonymous"
	}
	if m.Text == "" {
		return
	}
	m.System = false
	m.Time = time.Now().Format("15:04:05")
	fmt.Fprintf(r.out, "chat: %s: %q\n", m.Name, m.Text)
	r.broadcast(m)
}

// broadcast sends m to every session. A session that cannot take it within
// a second is closed (WritePkg closes it on a write error), so one stalled
// browser cannot hold the room up for long.
func (r *room) broadcast(m message) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	r.mu.Lock()
	to := make([]getty.Session, 0, len(r.members))
	for s := range r.members {
		to = append(to, s)
	}
	r.mu.Unlock()
	for _, s := range to {
		_, _, _ = s.WritePkg(b, time.Second)
	}
}

func (r *room) send(s getty.Session, m message) {
	if b, err := json.Marshal(m); err == nil {
		_, _, _ = s.WritePkg(b, time.Second)
	}
}

// clip cuts s to at most n runes (s is valid UTF-8: JSON decoding made it so).
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
