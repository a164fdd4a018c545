//go:build unix

package getty

import (
	"io"
	"os"
	"syscall"

	"github.com/getty-go/getty/internal/bufpool"
)

// rawReadSupported: on Unix a reader can park in the runtime poller until
// its socket is readable without holding a read buffer.
const rawReadSupported = true

// rawRead reads through syscall.RawConn: the buffer is taken from the pool
// only when the socket has bytes, and given back before parking on EAGAIN.
type rawRead struct {
	fn   func(uintptr) bool // made once, so a read allocates nothing
	buf  *[]byte
	err  error
	size int32 // int32s: a read buffer is far below 2 GiB
	n    int32
}

func (r *rawRead) init() { r.fn = r.try }

func (r *rawRead) read(raw syscall.RawConn, size int) (*[]byte, int, error) {
	r.size, r.buf, r.n, r.err = int32(size), nil, 0, nil
	if err := raw.Read(r.fn); err != nil {
		return nil, 0, err
	}
	return r.buf, int(r.n), r.err
}

// try is the RawConn.Read callback; false parks until readable.
func (r *rawRead) try(fd uintptr) bool {
	bp := bufpool.Get(int(r.size))
	for {
		n, err := syscall.Read(int(fd), *bp)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			bufpool.Put(bp)
			return false
		case err != nil:
			bufpool.Put(bp)
			r.err = os.NewSyscallError("read", err)
		case n == 0:
			bufpool.Put(bp)
			r.err = io.EOF
		default:
			r.buf, r.n = bp, int32(n)
		}
		return true
	}
}
