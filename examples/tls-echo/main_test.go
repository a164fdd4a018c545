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
		`client: got "hello over TLS #3"`,
		`peer certificate CN="getty-demo-client"`, // the server saw the client certificate
		`peer certificate CN="getty-demo-server"`,
		"without a certificate: remote error: tls: certificate required",
		"server stats: 1 sessions opened, 3 packages in, 3 out",
		"done",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
