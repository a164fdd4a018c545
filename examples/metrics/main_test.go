package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/getty-go/getty/internal/leakcheck"
)

func TestRunOnce(t *testing.T) {
	defer goleak.VerifyNone(t, leakcheck.Options()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer // runOnce serialises its writes
	if err := runOnce(ctx, &out); err != nil {
		t.Fatalf("runOnce: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"client: 10 lines echoed over 2 sessions",
		"OnMessage panicked: asked to panic",
		`getty_sessions_open{endpoint="echo",type="TCP_SERVER"} 2`,
		`getty_sessions_opened_total{endpoint="echo",type="TCP_SERVER"} 3`,
		`getty_read_packages_total{endpoint="echo",type="TCP_SERVER"} 11`,
		`getty_write_packages_total{endpoint="echo",type="TCP_SERVER"} 10`,
		`getty_read_packages_total{endpoint="echo-client",type="TCP_CLIENT"} 10`,
		`getty_panics_total{endpoint="echo",type="TCP_SERVER"} 1`,
		`getty_session_errors_total{endpoint="echo",type="TCP_SERVER"} 1`,
		`getty_drops_total{endpoint="echo",type="TCP_SERVER"} 0`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// serve answers /metrics until its context ends, then stops cleanly.
func TestServe(t *testing.T) {
	defer goleak.VerifyNone(t, leakcheck.Options()...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- serve(ctx, "127.0.0.1:0", "127.0.0.1:0", ready, &out) }()

	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not start")
	}
	body, err := scrape(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `getty_sessions_open{endpoint="echo",type="TCP_SERVER"} 0`) ||
		!strings.Contains(body, "# TYPE getty_read_bytes_total counter") {
		t.Errorf("unexpected scrape:\n%s", body)
	}

	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		t.Logf("serve returned %s after its context ended", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}
