// Command ws-mux serves a web page and a getty WebSocket endpoint from one
// http.ServeMux on one port: getty.NewWSHandler turns a WebSocket server
// into an http.Handler whose sessions the server still owns. The socket
// speaks lines (getty.DelimiterCodec) in text messages: a message may hold
// several commands, and the end of a message ends its last one.
//
//	go run ./examples/ws-mux -addr 127.0.0.1:8080
//
// then open http://127.0.0.1:8080/ and type "upper hello" or "lower HI".
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	getty "github.com/getty-go/getty"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve the page and the socket on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ws-mux:", err)
		os.Exit(1)
	}
	fmt.Printf("open http://%s/ (Ctrl-C to stop)\n", ln.Addr())
	if err := serve(ctx, ln, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ws-mux:", err)
		os.Exit(1)
	}
}

// commands answers each line of a session.
type commands struct {
	getty.BaseListener
	log io.Writer
}

func (c commands) OnOpen(s getty.Session) error {
	fmt.Fprintf(c.log, "session %d open from %s\n", s.ID(), s.RemoteAddr())
	return nil
}

func (c commands) OnClose(s getty.Session) {
	fmt.Fprintf(c.log, "session %d closed\n", s.ID())
}

func (c commands) OnMessage(s getty.Session, pkg any) {
	line := string(pkg.(*getty.Frame).Payload)
	verb, arg, _ := strings.Cut(line, " ")
	var reply string
	switch verb {
	case "upper":
		reply = strings.ToUpper(arg)
	case "lower":
		reply = strings.ToLower(arg)
	default:
		reply = "unknown command: " + verb
	}
	_, _, _ = s.WritePkg(reply, time.Second)
}

// serve serves the page on / and the socket on /ws until ctx ends, then
// shuts both down.
func serve(ctx context.Context, ln net.Listener, log io.Writer) error {
	ws := getty.NewWSServer() // it does not listen: the mux routes to it
	socket, err := getty.NewWSHandler(ws, func(s getty.Session) error {
		s.SetPkgHandler(&getty.DelimiterCodec{})
		s.SetEventListener(commands{log: log})
		getty.SetWSTextMessages(s, true) // JavaScript gets strings
		return nil
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", socket)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The http.Server does not track upgraded connections: the getty
	// server ends its sessions.
	_ = hs.Shutdown(sctx)
	if serr := ws.Shutdown(sctx); err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
