package getty_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"time"

	getty "github.com/getty-go/getty"
)

// The whole life of a server in main: Serve on its own goroutine, wait for
// Ctrl-C (or SIGTERM), Shutdown gracefully with a deadline, then wait for
// Serve to return. Serve returns ErrServerClosed as soon as Shutdown
// starts, so main must wait for Shutdown, not for Serve, before it exits.
func Example_lifecycle() {
	// In a real main: signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(echoSession) }()

	// The example talks to itself, then stops itself as Ctrl-C would.
	for srv.Addr() == nil {
		time.Sleep(time.Millisecond)
	}
	if conn, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		for srv.SessionCount() == 0 {
			time.Sleep(time.Millisecond)
		}
		fmt.Println("sessions:", srv.SessionCount())
		defer conn.Close()
	}
	stop()

	select {
	case err := <-served: // Serve failed before any signal, e.g. the port is taken
		fmt.Println("serve:", err)
		return
	case <-ctx.Done(): // the signal
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Println("shutdown:", err) // ctx ended first: sessions were cut off
	}
	if err := <-served; !errors.Is(err, getty.ErrServerClosed) {
		fmt.Println("serve:", err)
	}
	fmt.Println("stopped; sessions:", srv.SessionCount())
	// Output:
	// sessions: 1
	// stopped; sessions: 0
}

// A server with its own log/slog logger. Its BaseListener leaves OnError
// alone, so when a peer announces a frame over the 4,096-byte default
// limit, getty logs the error that ended the session at WARN (here without
// the attributes that vary from run to run: time, endpoint, session_id,
// remote_addr, error).
func ExampleWithServerLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "endpoint", "session_id", "remote_addr", "error":
				return slog.Attr{}
			}
			return a
		},
	}))
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerLogger(logger))
	srv.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(getty.BaseListener{})
		return nil
	})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = conn.Write([]byte{0, 0, 0x13, 0x88}) // a 5,000-byte frame follows
	_, _ = conn.Read(make([]byte, 1))           // the server closes the connection
	conn.Close()
	srv.Close() // every OnClose has run, and the line is written
	// Output:
	// level=WARN msg="getty: session ended by an error no OnError handled (override OnError to handle it; this line is rate-limited)" session=tcp-session
}
