// Command echo runs a getty TCP echo server and a client pool in one
// process and prints what happens: sessions opening, messages going back
// and forth, a heartbeat, and an orderly shutdown.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	getty "github.com/getty-go/getty"
)

// server side: echo every frame back.
type echoServer struct{ getty.BaseListener }

func (echoServer) OnOpen(s getty.Session) error {
	fmt.Printf("server: session %d open from %s\n", s.ID(), s.RemoteAddr())
	return nil
}

func (echoServer) OnMessage(s getty.Session, pkg any) {
	if _, _, err := s.WritePkg(pkg, time.Second); err != nil {
		fmt.Printf("server: reply failed: %v\n", err)
	}
}

func (echoServer) OnClose(s getty.Session) {
	fmt.Printf("server: session %d closed (%s)\n", s.ID(), s.Stat())
}

// client side: print replies and count them.
type echoClient struct {
	getty.BaseListener
	wg *sync.WaitGroup
}

func (c echoClient) OnMessage(s getty.Session, pkg any) {
	fmt.Printf("client %d: got %q\n", s.ID(), pkg.(*getty.Frame).Payload)
	c.wg.Done()
}

func (echoClient) OnCron(s getty.Session) {
	fmt.Printf("client %d: heartbeat, last active %s ago\n", s.ID(), time.Since(s.GetActive()).Round(time.Millisecond))
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run() error {
	codec := &getty.LengthFieldCodec{} // 4-byte big-endian length + payload

	server := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"), getty.WithServerWorkerPool(2))
	server.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(codec)
		s.SetEventListener(echoServer{})
		return nil
	})
	if server.Addr() == nil {
		return fmt.Errorf("server did not start")
	}
	fmt.Println("server: listening on", server.Addr())

	var replies sync.WaitGroup
	client := getty.NewTCPClient(getty.WithServerAddress(server.Addr().String()), getty.WithConnectionNumber(2))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := client.RunEventLoopContext(ctx, func(s getty.Session) error {
		s.SetPkgHandler(codec)
		s.SetEventListener(echoClient{wg: &replies})
		s.SetCronPeriod(100) // ms
		return nil
	})
	if err != nil {
		return err
	}

	for i := 1; i <= 4; i++ {
		s, err := client.Session() // round-robin over the open sessions
		if err != nil {
			return err
		}
		replies.Add(1)
		msg := fmt.Sprintf("hello #%d", i)
		fmt.Printf("client %d: send %q\n", s.ID(), msg)
		if _, _, err := s.WritePkg(msg, time.Second); err != nil {
			return err
		}
	}
	replies.Wait()
	time.Sleep(250 * time.Millisecond) // let a couple of heartbeats fire

	client.Close()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShutdown()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}
