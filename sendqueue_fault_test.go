package getty

import (
	"errors"
	"net"
	"testing"
	"time"
)

// panicky is a compressor with a bug: every Write panics.
type panicky struct{}

func (panicky) Write([]byte) (int, error) { panic("compressor bug") }
func (panicky) Flush() error              { return nil }

// A panic below the send queue (here a compressor's) becomes an error that
// matches ErrInternal for the writer, on both the small and the big write
// path, and the queue is not left flushing: later writes fail at once with
// the same error instead of waiting for a flush that never ends.
func TestSendQueueFaultIsAnError(t *testing.T) {
	for _, size := range []int{10, bigWrite + 1} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()

		tr := newTCPTransport(c)
		tr.out.setCompressor(panicky{})
		_, err = tr.out.write(make([]byte, size), nil, time.Second)
		if !errors.Is(err, ErrInternal) {
			t.Fatalf("%d-byte write: got %v, want an error matching ErrInternal", size, err)
		}
		tr.out.mu.Lock()
		flushing := tr.out.flushing
		tr.out.mu.Unlock()
		if flushing {
			t.Fatalf("%d-byte write: the queue is left flushing", size)
		}
		done := make(chan error, 1)
		go func() {
			_, err := tr.out.write([]byte("again"), nil, time.Second)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrInternal) {
				t.Fatalf("write after the fault: got %v, want the stream's ErrInternal", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a write after the fault hangs")
		}
		tr.closeNow(0)
		peer.Close()
	}
}
