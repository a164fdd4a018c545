package getty

import (
	"testing"
	"unsafe"

	"github.com/getty-go/getty/internal/wheel"
)

// TestIdleSessionSizes keeps an idle TCP session's own objects within the
// runtime size classes they were cut to (issue 14): one byte more than the
// bound costs a whole size class (16 to 64 bytes) on every connection. See
// BenchmarkIdleSession for the per-connection figures.
func TestIdleSessionSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		size, max uintptr
	}{
		{"session", unsafe.Sizeof(session{}), 320},
		{"tcpTransport", unsafe.Sizeof(tcpTransport{}), 192},
		{"wheel.Timer", unsafe.Sizeof(wheel.Timer{}), 48}, // the cron timer
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, over its %d-byte size class", c.name, c.size, c.max)
		}
	}
}
