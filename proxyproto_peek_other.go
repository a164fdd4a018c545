//go:build !unix

package getty

import (
	"errors"
	"net"
)

// peekSupported: elsewhere headers are read exactly, without peeking.
const peekSupported = false

func peekConn(net.Conn, []byte, int) (int, error) {
	return 0, errors.New("getty: peeking is not supported on this system")
}
