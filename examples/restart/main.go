//go:build unix

// Command restart is a getty echo server that restarts without refusing a
// single connection: on SIGHUP it starts a new copy of its own binary,
// hands it the listening socket, waits until the copy serves, and then
// shuts itself down gracefully. SIGTERM or Ctrl-C stops it.
//
// The socket is never closed during the switch, so a client connecting at
// any moment is accepted, by the old process or by the new one. Sessions
// of the old process end with its graceful Shutdown and their clients
// reconnect to the new one.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	getty "github.com/getty-go/getty"
)

// envListenerFD tells a copy that it inherited the listener as file
// descriptor 3, and a pipe to report "ready" on as descriptor 4.
const envListenerFD = "GETTY_RESTART_LISTENER_FD"

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on (ignored by a copy that inherits the socket)")
	flag.Parse()
	if err := run(*addr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "restart:", err)
		os.Exit(1)
	}
}

type echo struct{ getty.BaseListener }

func (echo) OnMessage(s getty.Session, pkg any) {
	_, _, _ = s.WritePkg(pkg, time.Second)
}

func newSession(s getty.Session) error {
	s.SetPkgHandler(&getty.LengthFieldCodec{})
	s.SetEventListener(echo{})
	return nil
}

func run(addr string, out io.Writer) error {
	ln, inherited, err := listener(addr)
	if err != nil {
		return err
	}
	// The server owns the listener: Shutdown closes this process's copy of
	// the socket, while the new process keeps its own open.
	srv := getty.NewTCPServer(getty.WithListener(ln))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(newSession) }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)

	fmt.Fprintf(out, "pid %d serving on %s\n", os.Getpid(), ln.Addr())
	if inherited {
		if err := reportReady(); err != nil {
			srv.Close()
			return err
		}
	}
	for {
		select {
		case err := <-served:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				pid, err := handOver(ln)
				if err != nil {
					fmt.Fprintf(out, "pid %d: restart failed, still serving: %v\n", os.Getpid(), err)
					continue
				}
				fmt.Fprintf(out, "pid %d: pid %d serves now; shutting down\n", os.Getpid(), pid)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			<-served
			fmt.Fprintf(out, "pid %d stopped\n", os.Getpid())
			return err
		}
	}
}

// listener returns the socket inherited from the previous process, or a
// new one.
func listener(addr string) (ln net.Listener, inherited bool, err error) {
	if os.Getenv(envListenerFD) == "" {
		ln, err = net.Listen("tcp", addr)
		return ln, false, err
	}
	f := os.NewFile(3, "listener")
	defer f.Close() // FileListener made its own copy
	ln, err = net.FileListener(f)
	if err != nil {
		return nil, false, fmt.Errorf("inherited listener: %w", err)
	}
	return ln, true, nil
}

func reportReady() error {
	ready := os.NewFile(4, "ready")
	defer ready.Close()
	_, err := ready.WriteString("ready\n")
	return err
}

// handOver starts a copy of this binary with the listening socket and
// waits (at most 10 s) until it serves. It returns the copy's pid.
func handOver(ln net.Listener) (int, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return 0, fmt.Errorf("cannot hand over a %T", ln)
	}
	f, err := tl.File() // a duplicate of the socket's descriptor
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	exe, err := os.Executable()
	if err != nil {
		w.Close()
		return 0, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), envListenerFD+"=3")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{f, w} // descriptors 3 and 4
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, err
	}
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err == nil && line != "ready\n" {
		err = errors.New("unexpected " + line)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("the new process did not get ready: %w", err)
	}
	// The copy outlives this process; it is not waited for.
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return pid, nil
}
