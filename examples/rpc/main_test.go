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

func runDemo(t *testing.T, ordered bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer // run serialises its writes
	if err := run(ctx, &out, ordered); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return out.String()
}

func expect(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// Unordered dispatch: only the slow call times out; the echoes sent while
// it runs, one on each session, all come back at once.
func TestRunUnordered(t *testing.T) {
	defer goleak.VerifyNone(t, leakcheck.Options()...)
	out := runDemo(t, false)
	expect(t, out,
		`call echo("hello") = "hello"`,
		`call upper("getty rpc") = "GETTY RPC"`,
		`remote error: unknown method "nope"`,
		`call echo("ping 1") = "ping 1"`,
		`call echo("ping 4") = "ping 4"`,
		"client: discarded the late reply to slow #4",
		"client: 0 calls still pending",
		"8 requests in, 8 replies out",
	)
	if n := strings.Count(out, "context deadline exceeded"); n != 1 {
		t.Errorf("%d calls timed out, want 1 (the slow one):\n%s", n, out)
	}
}

// Ordered dispatch: the echo that shares the slow call's session waits
// behind it and times out too.
func TestRunOrdered(t *testing.T) {
	defer goleak.VerifyNone(t, leakcheck.Options()...)
	out := runDemo(t, true)
	expect(t, out,
		"client: discarded the late reply to slow #4",
		"client: discarded the late reply to echo",
		"client: 0 calls still pending",
	)
	if n := strings.Count(out, "context deadline exceeded"); n < 2 {
		t.Errorf("%d calls timed out, want the slow one and at least the echo behind it:\n%s", n, out)
	}
}
