package getty

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/getty-go/getty/internal/bufpool"
)

func (s *session) WritePkg(pkg any, timeout time.Duration) (int, int, error) {
	if pkg == nil {
		return 0, 0, s.opError(opWrite, errors.New("getty: nil package"))
	}
	if s.closing.Load() {
		return 0, 0, s.opError(opWrite, ErrSessionClosed)
	}
	if s.writer == nil {
		return 0, 0, s.opError(opWrite, ErrWriterNil)
	}
	peer, err := s.peerOf(pkg)
	if err != nil {
		return 0, 0, err
	}
	if peer == nil && s.appender != nil {
		// A built-in codec frames the package without a scratch buffer;
		// a large one takes the writev path below.
		var f framed
		ok, err := frameBuiltin(s.appender, pkg, &f)
		if err != nil {
			return 0, 0, s.opError(opEncode, err)
		}
		if ok && f.size() < bigWrite {
			return s.writeFramed(&f, timeout)
		}
	}
	var dst []byte
	if s.appender != nil {
		// Encode into a pooled scratch buffer (the transport copies or
		// writes it before send returns); one that append outgrew is left
		// to the collector and the scratch goes back.
		bp := bufpool.Get(4096)
		defer bufpool.Put(bp)
		dst = (*bp)[:0]
	}
	data, more, err := s.encode(dst, pkg)
	if err != nil {
		return 0, 0, err
	}
	total := len(data)
	for _, b := range more {
		total += len(b)
	}
	n, err := s.send(data, more, peer, timeout)
	if err == nil {
		s.writePkgs.Add(1)
	}
	return total, n, err
}

// encode runs the Writer: AppendPkg onto dst when the Writer can append
// (dst is then non-nil), else Write. A built-in codec leaves a large
// payload where it is, in more. A panic in the Writer, on the caller's
// goroutine, closes the session and comes back as the caller's error.
func (s *session) encode(dst []byte, pkg any) (data []byte, more [][]byte, err error) {
	var panicked error
	data, more, err = s.callWriter(dst, pkg, &panicked)
	switch {
	case panicked != nil:
		s.closeWith(panicked)
		return nil, nil, s.opError(opEncode, panicked)
	case err != nil:
		return data, nil, s.opError(opEncode, err)
	}
	return data, more, nil
}

func (s *session) callWriter(dst []byte, pkg any, panicked *error) ([]byte, [][]byte, error) {
	defer recoverAs("Writer.Write", panicked)
	if dst == nil {
		data, err := s.writer.Write(s, pkg)
		return data, nil, err
	}
	if head, body, tail, ok, err := splitBuiltin(s.appender, dst, pkg, bigWrite); ok {
		if body == nil || err != nil {
			return head, nil, err
		}
		if tail == nil {
			return head, [][]byte{body}, nil
		}
		return head, [][]byte{body, tail}, nil
	}
	data, err := s.appender.AppendPkg(s, dst, pkg)
	return data, nil, err
}

// peerOf asks a packet transport where pkg goes; nil on the others.
func (s *session) peerOf(pkg any) (net.Addr, error) {
	pt := s.packetTr()
	if pt == nil {
		return nil, nil
	}
	peer, err := pt.peerOf(pkg)
	if err != nil {
		return nil, s.opError(opWrite, err)
	}
	return peer, nil
}

func (s *session) WriteBytes(b []byte) (int, error) {
	if s.closing.Load() {
		return 0, s.opError(opWrite, ErrSessionClosed)
	}
	return s.send(b, nil, nil, 0)
}

func (s *session) WriteBytesArray(bs ...[]byte) (int, error) {
	if s.closing.Load() {
		return 0, s.opError(opWrite, ErrSessionClosed)
	}
	if len(bs) == 0 {
		return 0, nil
	}
	return s.send(bs[0], bs[1:], nil, 0)
}

// writeRaw sends a UDPContext whose Pkg is raw bytes, for Send.
func (s *session) writeRaw(pkg any) (int, int, error) {
	peer, err := s.peerOf(pkg)
	if err != nil {
		return 0, 0, err
	}
	var inner any
	switch c := pkg.(type) {
	case UDPContext:
		inner = c.Pkg
	case *UDPContext:
		inner = c.Pkg
	}
	b, str, err := payloadOf(inner)
	if err != nil {
		return 0, 0, s.opError(opSend, err)
	}
	if str != "" {
		b = []byte(str)
	}
	n, err := s.send(b, nil, peer, 0)
	return len(b), n, err
}

// writeFramed is WritePkg for a package a built-in codec framed.
func (s *session) writeFramed(f *framed, timeout time.Duration) (int, int, error) {
	n, err := s.sent(s.framedToTransport(f, s.timeoutOr(timeout)))
	if err == nil {
		s.writePkgs.Add(1)
	}
	return f.size(), n, err
}

// framedToTransport is writeToTransport for a framed package.
func (s *session) framedToTransport(f *framed, timeout time.Duration) (n int, err error) {
	defer recoverFault("the transport's write", &err)
	return s.tr.writeFramed(*f, timeout) // a copy: a pointer would escape
}

// timeoutOr is a write's timeout: its own, or the session's.
func (s *session) timeoutOr(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return time.Duration(s.writeTimeout.Load())
	}
	return timeout
}

// send hands encoded bytes to the transport with this call's deadline.
func (s *session) send(first []byte, more [][]byte, peer net.Addr, timeout time.Duration) (int, error) {
	return s.sent(s.writeToTransport(first, more, peer, s.timeoutOr(timeout)))
}

// sent counts what a write to the transport took and handles its error.
func (s *session) sent(n int, err error) (int, error) {
	if n > 0 {
		s.writeBytes.Add(uint64(n))
	}
	if err != nil {
		if s.closing.Load() {
			return n, s.opError(opWrite, fmt.Errorf("%w (%v)", ErrSessionClosed, err))
		}
		err = s.opError(opWrite, err)
		if !errors.Is(err, errDatagram) {
			s.closeWith(err)
		}
	}
	return n, err
}

// writeToTransport calls the transport's write. A panic in it (a bug in
// getty or in a library it calls) comes back as an error, which closes the
// session in send, and never reaches the caller of WritePkg or WriteBytes.
func (s *session) writeToTransport(first []byte, more [][]byte, peer net.Addr, timeout time.Duration) (n int, err error) {
	defer recoverFault("the transport's write", &err)
	if peer != nil {
		return s.packetTr().writeTo(peer, first, more, timeout)
	}
	return s.tr.write(first, more, timeout)
}

// errDatagram marks write errors that spoil one datagram only, so the
// session stays open.
var errDatagram = errors.New("getty: datagram not sent")
