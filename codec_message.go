package getty

import "fmt"

// MessageEndReader is a Reader whose last package may end where a whole
// message ends: a WebSocket message or a datagram, whose end the peer
// marks. The session calls Read on a message until it is used up; when
// bytes are left that Read cannot complete (it asks for more), and the
// Reader is a MessageEndReader, ReadEnd gets them.
//
// ReadEnd returns the package those bytes make, or an error, which closes
// the session as an error from Read does. A nil package without an error
// leaves the bytes incomplete, as without ReadEnd: the session then fails
// with a decode error matching ErrReaderContract and io.ErrUnexpectedEOF
// (a WebSocket session closes with 1007; a UDP endpoint drops the rest of
// the datagram and counts it in Drops). buf is valid only until ReadEnd
// returns.
//
// On a TCP stream ReadEnd is never called: more bytes may always come.
type MessageEndReader interface {
	Reader
	ReadEnd(s Session, buf []byte) (pkg any, err error)
}

// ReadEnd implements MessageEndReader: the end of a message ends its last
// package, so "sub a\nping" in one WebSocket message is two packages,
// "sub a" and "ping".
func (c *DelimiterCodec) ReadEnd(_ Session, buf []byte) (any, error) {
	if c.MaxLength > 0 && len(buf) > c.MaxLength {
		return nil, fmt.Errorf("%w: package %d > %d", ErrMsgTooLong, len(buf), c.MaxLength)
	}
	return newFrame(buf), nil
}
