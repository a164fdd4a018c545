//go:build unix

package getty

import (
	"errors"
	"syscall"
)

// msgTrunc is the recvmsg flag that marks a datagram longer than the
// buffer it was read into.
const msgTrunc = syscall.MSG_TRUNC

// isTruncErr reports a read error that only means "datagram truncated";
// Unix reports truncation with msgTrunc instead.
func isTruncErr(error) bool { return false }

// isUDPRefused reports the error a connected UDP socket returns after an
// ICMP port unreachable.
func isUDPRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
