//go:build unix

package getty

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// peekSupported: on Unix a header can be looked at before it is consumed.
const peekSupported = true

// peekConn copies into p the bytes waiting on c without consuming them,
// once more than have bytes are waiting; it parks in the runtime poller
// (honouring c's read deadline) until then. It returns io.EOF when the
// peer closed with nothing more to read.
func peekConn(c net.Conn, p []byte, have int) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("getty: cannot peek at a %T", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		perr error
	)
	err = raw.Read(func(fd uintptr) bool {
		for {
			m, _, err := syscall.Recvfrom(int(fd), p, syscall.MSG_PEEK)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return false
			case err != nil:
				perr = os.NewSyscallError("recvfrom", err)
			case m == 0:
				perr = io.EOF
			case m <= have && m < len(p):
				return false // nothing new yet: wait for more
			}
			n = m
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	return n, perr
}
