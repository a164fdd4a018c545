//go:build !unix && !windows

package getty

// msgTrunc is zero where ReadMsgUDP does not report truncation; the read
// buffer then keeps one spare byte to see it.
const msgTrunc = 0

func isTruncErr(error) bool { return false }

func isUDPRefused(error) bool { return false }
