//go:build windows

package getty

import (
	"errors"
	"syscall"
)

// msgTrunc is zero: Windows fails the read with WSAEMSGSIZE instead, and
// the read buffer keeps one spare byte to see it.
const msgTrunc = 0

// wsaEMsgSize is WSAEMSGSIZE: the datagram did not fit the buffer.
const wsaEMsgSize = syscall.Errno(10040)

func isTruncErr(err error) bool { return errors.Is(err, wsaEMsgSize) }

// wsaEConnReset is WSAECONNRESET, what Windows reports on a UDP socket
// after an ICMP port unreachable.
const wsaEConnReset = syscall.Errno(10054)

// isUDPRefused reports the error a UDP socket returns after an ICMP port
// unreachable.
func isUDPRefused(err error) bool {
	return errors.Is(err, wsaEConnReset) || errors.Is(err, syscall.ECONNREFUSED)
}
