package dispatch

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in the tests so a bug shows up as a failure, not a hung test binary.
const waitTimeout = 10 * time.Second

// blockedFor is how long a test watches a goroutine to conclude it is blocked.
const blockedFor = 50 * time.Millisecond

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// stillBlocked reports whether ch stays open for blockedFor.
func stillBlocked(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return false
	case <-time.After(blockedFor):
		return true
	}
}
