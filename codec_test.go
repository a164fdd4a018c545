package getty

import (
	"bytes"
	"testing"
)

// A pooled frame keeps its buffer, and a later package of another size
// still gets exactly its own payload.
func TestFrameReuseKeepsPayloads(t *testing.T) {
	for _, n := range []int{10, 600, 3, 5000, 100, 0, 70} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		f := newFrame(p)
		if !bytes.Equal(f.Payload, p) {
			t.Fatalf("payload of %d bytes differs", n)
		}
		releaseFrame(f)
	}
}
