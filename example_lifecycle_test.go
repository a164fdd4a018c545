package getty_test

import (
	"context"
	"errors"
	"fmt"
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
