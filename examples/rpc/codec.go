package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	getty "github.com/getty-go/getty"
)

// The wire format, the same both ways:
//
//	+-----------+-------------+-------------------------------------------+
//	| id        | length      | payload (length bytes)                    |
//	| 8 bytes   | 4 bytes     | kind (1) | method length (1) | method | body |
//	+-----------+-------------+-------------------------------------------+
//
// all big-endian. A reply carries its request's id, which is how the client
// matches replies to calls: they may come back in any order.
const (
	headerLen  = 8 + 4
	maxPayload = 1 << 20
)

// Kinds of message.
const (
	kindRequest = 0
	kindReply   = 1
	kindError   = 2 // a reply whose body is an error text
)

type message struct {
	ID     uint64
	Kind   byte
	Method string
	Body   []byte
}

// codec implements getty.ReadWriter and getty.PkgAppender for *message.
// It has no state, so one value serves every session.
type codec struct{}

var _ interface {
	getty.ReadWriter
	getty.PkgAppender
} = codec{}

var errBadMessage = errors.New("rpc: malformed message")

// Read follows the getty.Reader contract: (nil, 0, nil) while the header
// is incomplete, (nil, total, nil) once the header tells the message's
// size (getty checks it against the session's max message length before
// buffering it), and (msg, total, nil) for a whole message. buf is only
// valid during the call, so the message copies what it keeps.
func (codec) Read(_ getty.Session, buf []byte) (any, int, error) {
	if len(buf) < headerLen {
		return nil, 0, nil
	}
	n := binary.BigEndian.Uint32(buf[8:12])
	if n > maxPayload {
		return nil, 0, fmt.Errorf("%w: payload of %d bytes", errBadMessage, n)
	}
	total := headerLen + int(n)
	if len(buf) < total {
		return nil, total, nil
	}
	p := buf[headerLen:total]
	if len(p) < 2 || len(p) < 2+int(p[1]) {
		return nil, 0, errBadMessage
	}
	m := &message{
		ID:     binary.BigEndian.Uint64(buf[:8]),
		Kind:   p[0],
		Method: string(p[2 : 2+int(p[1])]),
		Body:   bytes.Clone(p[2+int(p[1]):]),
	}
	return m, total, nil
}

// AppendPkg encodes straight into the session's pooled write buffer, so a
// write allocates nothing.
func (codec) AppendPkg(_ getty.Session, dst []byte, pkg any) ([]byte, error) {
	m, ok := pkg.(*message)
	if !ok {
		return dst, fmt.Errorf("rpc: cannot write %T", pkg)
	}
	if len(m.Method) > 255 || 2+len(m.Method)+len(m.Body) > maxPayload {
		return dst, fmt.Errorf("rpc: message %d too long", m.ID)
	}
	dst = binary.BigEndian.AppendUint64(dst, m.ID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(2+len(m.Method)+len(m.Body)))
	dst = append(dst, m.Kind, byte(len(m.Method)))
	dst = append(dst, m.Method...)
	return append(dst, m.Body...), nil
}

// Write implements getty.Writer for callers that do not append.
func (c codec) Write(s getty.Session, pkg any) ([]byte, error) {
	return c.AppendPkg(s, nil, pkg)
}
