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

func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t, leakcheck.Options()...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer // run serialises its writes
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`got "echo: ping #4"`,
		`got "echo: hello from a plain socket"`,
		`raw peer: got "echo: still there?"`,
		"EndpointStatsOf(server).Drops = 1",
		"1 session (one for all peers), 6 datagrams in, 6 out, 1 dropped",
		"done",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
