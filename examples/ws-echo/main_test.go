package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
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
	if n := strings.Count(out.String(), "echoed intact"); n != 2 {
		t.Errorf("%d rounds echoed intact, want 2:\n%s", n, out.String())
	}
	m := regexp.MustCompile(`deflate: (\d+)% of the raw bytes upstream, (\d+)% downstream`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no compression summary:\n%s", out.String())
	}
	for _, pct := range m[1:] {
		if v, _ := strconv.Atoi(pct); v > 50 {
			t.Errorf("compressed traffic is %d%% of raw, want well under half:\n%s", v, out.String())
		}
	}
}
