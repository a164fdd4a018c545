package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	getty "github.com/getty-go/getty"
	"github.com/getty-go/getty/internal/leakcheck"
)

type lines struct {
	getty.BaseListener
	ch chan string
}

func (l lines) OnMessage(_ getty.Session, pkg any) { l.ch <- string(pkg.(*getty.Frame).Payload) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServe(t *testing.T) {
	defer goleak.VerifyNone(t, leakcheck.Options()...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuf
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, &log) }()
	addr := ln.Addr().String()

	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if !strings.Contains(string(body), "new WebSocket") {
		t.Fatalf("the page: %s", body)
	}

	got := lines{ch: make(chan string, 8)}
	cli := getty.NewWSClient(getty.WithServerAddress("ws://" + addr + "/ws"))
	defer cli.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if err := cli.RunEventLoopContext(cctx, func(s getty.Session) error {
		s.SetPkgHandler(&getty.DelimiterCodec{})
		s.SetEventListener(got)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := cli.Session()
	if err != nil {
		t.Fatal(err)
	}
	// Two commands in one message, the last without its newline.
	if _, err := s.WriteBytes([]byte("upper hello\nlower WORLD")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HELLO", "world"} {
		select {
		case line := <-got.ch:
			if line != want {
				t.Errorf("got %q, want %q", line, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply %q", want)
		}
	}
	cli.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "open from") {
		t.Errorf("log: %s", log.String())
	}
}
