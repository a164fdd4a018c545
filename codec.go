package getty

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/getty-go/getty/internal/bufpool"
)

// Reader turns bytes from the connection into packages.
//
// The session calls Read with the bytes it has buffered and acts on the
// result:
//
//	(nil, 0, err)   a protocol error: the session closes and OnError gets err
//	(nil, 0, nil)   not enough bytes yet: read more and call again
//	(nil, n, nil)   the header is parsed and the package is n bytes in all;
//	                n is checked against the max message length at once,
//	                then the session reads until it has n bytes
//	(pkg, n, nil)   one package of n bytes; it goes to OnMessage and Read is
//	                called again on the bytes after it
//
// A package with n <= 0 or n > len(buf), or a full buffer at the max
// message length on which Read makes no progress, breaks the contract: the
// session closes with an error matching ErrReaderContract (or ErrMsgTooLong)
// rather than spinning or growing its buffer.
//
// buf is valid only until Read returns: a package must not alias it. On UDP
// and WebSocket sessions buf holds the rest of one whole datagram or
// message: Read is called until it is used up, and bytes at its end that
// Read cannot complete go to a MessageEndReader's ReadEnd, or are an
// incomplete package (see MessageEndReader).
type Reader interface {
	Read(Session, []byte) (any, int, error)
}

// Writer turns a package into bytes for the connection. On a UDP endpoint
// it receives the UDPContext given to WritePkg. The session does not keep
// the returned slice after the write returns.
type Writer interface {
	Write(Session, any) ([]byte, error)
}

// ReadWriter is a codec: both directions of one wire format.
type ReadWriter interface {
	Reader
	Writer
}

// PkgAppender is an optional Writer extension: encoding by appending to
// dst lets the session encode straight into a pooled buffer, so writes
// allocate nothing. The built-in codecs implement it.
type PkgAppender interface {
	AppendPkg(s Session, dst []byte, pkg any) ([]byte, error)
}

// PkgReleaser is an optional Reader extension for codecs whose packages
// come from a pool: the session calls ReleasePkg once OnMessage has
// returned for pkg (or the package was dropped). The built-in codecs
// implement it for their *Frame packages.
type PkgReleaser interface {
	ReleasePkg(pkg any)
}

// ReaderFunc adapts a function to Reader.
type ReaderFunc func(Session, []byte) (any, int, error)

// Read calls f.
func (f ReaderFunc) Read(s Session, b []byte) (any, int, error) { return f(s, b) }

// WriterFunc adapts a function to Writer.
type WriterFunc func(Session, any) ([]byte, error)

// Write calls f.
func (f WriterFunc) Write(s Session, pkg any) ([]byte, error) { return f(s, pkg) }

// NewReadWriter joins a Reader and a Writer into a ReadWriter.
func NewReadWriter(r Reader, w Writer) ReadWriter {
	return readWriter{r, w}
}

type readWriter struct {
	Reader
	Writer
}

// Frame is the package the built-in codecs produce: the payload of one
// frame, without its header or delimiter.
//
// Frames are recycled: Payload is valid until OnMessage returns. To keep
// it, copy it (bytes.Clone) or call Detach.
type Frame struct {
	Payload []byte
	buf     *[]byte // pooled backing store; nil once detached
}

// framePool holds released frames with their buffers: a frame and its
// payload's buffer travel together, one pool round trip per package
// instead of two (the frame's, the buffer's).
var framePool = sync.Pool{New: func() any { return new(Frame) }}

// frameKeep is the largest buffer a pooled frame keeps; a larger one goes
// back to its size class, so that idle frames pin no large buffers.
const frameKeep = 4096

func newFrame(payload []byte) *Frame {
	f := framePool.Get().(*Frame)
	if f.buf == nil || len(*f.buf) < len(payload) {
		bufpool.Put(f.buf)
		f.buf = bufpool.Get(len(payload))
	}
	f.Payload = (*f.buf)[:len(payload)]
	copy(f.Payload, payload)
	return f
}

// Detach hands the payload to the caller for good: it stays valid after
// OnMessage returns, and the frame's buffer is not recycled.
func (f *Frame) Detach() []byte {
	f.buf = nil
	return f.Payload
}

// String prints the payload, quoted.
func (f *Frame) String() string { return fmt.Sprintf("%q", f.Payload) }

func releaseFrame(pkg any) {
	f, ok := pkg.(*Frame)
	if !ok || f == nil {
		return
	}
	if f.buf != nil && len(*f.buf) > frameKeep {
		bufpool.Put(f.buf)
		f.buf = nil
	}
	f.Payload = nil
	framePool.Put(f)
}

// payloadOf accepts what the built-in codecs write: *Frame, []byte, string,
// and a UDPContext holding one of those.
func payloadOf(pkg any) ([]byte, string, error) {
	switch p := pkg.(type) {
	case *Frame:
		return p.Payload, "", nil
	case []byte:
		return p, "", nil
	case string:
		return nil, p, nil
	case UDPContext:
		return payloadOf(p.Pkg)
	case *UDPContext:
		return payloadOf(p.Pkg)
	}
	return nil, "", fmt.Errorf("getty: built-in codec cannot write %T (want *Frame, []byte or string)", pkg)
}

// LengthFieldCodec frames each package as a length field followed by the
// payload. The zero value is a 4-byte big-endian length that counts the
// payload only, the most common framing.
//
// Read returns a *Frame (see Frame for its lifetime). Write and AppendPkg
// accept a *Frame, a []byte or a string. It is safe for concurrent use and
// can be shared by sessions.
type LengthFieldCodec struct {
	// HeaderSize is the length field's size in bytes: 1, 2, 4 or 8.
	// Zero means 4.
	HeaderSize int
	// ByteOrder of the length field. Nil means big-endian.
	ByteOrder binary.ByteOrder
	// Adjustment is added to the field's value to get the payload length,
	// for formats whose field counts more than the payload (a field that
	// includes its own 4 bytes wants -4). Write subtracts it.
	Adjustment int
	// MaxLength caps the payload length; zero means no cap beyond the
	// session's max message length.
	MaxLength int
}

func (c *LengthFieldCodec) header() (int, binary.ByteOrder, error) {
	order := c.ByteOrder
	if order == nil {
		order = binary.BigEndian
	}
	switch c.HeaderSize {
	case 0:
		return 4, order, nil
	case 1, 2, 4, 8:
		return c.HeaderSize, order, nil
	}
	return 0, nil, fmt.Errorf("getty: LengthFieldCodec.HeaderSize %d is not 1, 2, 4 or 8", c.HeaderSize)
}

// Read implements Reader.
func (c *LengthFieldCodec) Read(_ Session, buf []byte) (any, int, error) {
	hs, total, err := c.bounds(buf)
	switch {
	case err != nil:
		return nil, 0, err
	case hs == 0:
		return nil, 0, nil
	case total > len(buf):
		return nil, total, nil
	}
	return newFrame(buf[hs:total]), total, nil
}

// adopt is Read for a read buffer that holds exactly one package, n bytes
// long: the frame takes the buffer over instead of copying the payload out
// of it (the session then lets go of it). ok is false for anything else,
// which Read then handles.
func (c *LengthFieldCodec) adopt(bp *[]byte, n int) (f *Frame, ok bool) {
	hs, total, err := c.bounds((*bp)[:n])
	if err != nil || hs == 0 || total != n {
		return nil, false
	}
	f = framePool.Get().(*Frame)
	bufpool.Put(f.buf) // the frame's own buffer: this one replaces it
	f.buf = bp
	f.Payload = (*bp)[hs:total]
	return f, true
}

// bounds parses the length field at the start of buf: the package is
// buf[:total] and its payload buf[hs:total]. hs == 0 without an error
// means the field itself is not all in yet.
func (c *LengthFieldCodec) bounds(buf []byte) (hs, total int, err error) {
	var field uint64
	if c.ByteOrder == nil && (c.HeaderSize == 0 || c.HeaderSize == 4) {
		// The zero value's framing, read on every package: without
		// header's checks and the ByteOrder interface.
		if len(buf) < 4 {
			return 0, 0, nil
		}
		hs, field = 4, uint64(binary.BigEndian.Uint32(buf))
	} else if hs, field, err = c.fieldAt(buf); err != nil || hs == 0 {
		return 0, 0, err
	}
	// Work in int64 with a bound before converting, so a hostile field
	// (2^63 and beyond) cannot wrap into a small or negative length.
	const limit = 1 << 40
	if field > limit {
		return 0, 0, fmt.Errorf("%w: declared length %d", ErrMsgTooLong, field)
	}
	payload := int64(field) + int64(c.Adjustment)
	if payload < 0 {
		return 0, 0, fmt.Errorf("%w: negative payload length %d", ErrBadLength, payload)
	}
	if c.MaxLength > 0 && payload > int64(c.MaxLength) {
		return 0, 0, fmt.Errorf("%w: payload %d > %d", ErrMsgTooLong, payload, c.MaxLength)
	}
	return hs, hs + int(payload), nil
}

// fieldAt reads the length field at the start of buf; hs == 0 without an
// error when it is not all in yet.
func (c *LengthFieldCodec) fieldAt(buf []byte) (hs int, field uint64, err error) {
	hs, order, err := c.header()
	if err != nil || len(buf) < hs {
		return 0, 0, err
	}
	switch hs {
	case 1:
		field = uint64(buf[0])
	case 2:
		field = uint64(order.Uint16(buf))
	case 4:
		field = uint64(order.Uint32(buf))
	case 8:
		field = order.Uint64(buf)
	}
	return hs, field, nil
}

// Write implements Writer.
func (c *LengthFieldCodec) Write(s Session, pkg any) ([]byte, error) {
	return c.AppendPkg(s, nil, pkg)
}

// AppendPkg implements PkgAppender.
func (c *LengthFieldCodec) AppendPkg(_ Session, dst []byte, pkg any) ([]byte, error) {
	head, _, _, err := c.appendSplit(dst, pkg, noSplit)
	return head, err
}

// appendSplit: the header, then the payload (see splitBuiltin).
func (c *LengthFieldCodec) appendSplit(dst []byte, pkg any, split int) (head, body, tail []byte, err error) {
	b, str, err := payloadOf(pkg)
	if err != nil {
		return dst, nil, nil, err
	}
	head, err = c.appendHeader(dst, len(b)+len(str))
	if err != nil {
		return dst, nil, nil, err
	}
	if len(b) >= split {
		return head, b, nil, nil
	}
	head = append(head, b...)
	return append(head, str...), nil, nil, nil
}

// appendHeader appends the length field for an n-byte payload.
func (c *LengthFieldCodec) appendHeader(dst []byte, n int) ([]byte, error) {
	hs, order, err := c.header()
	if err != nil {
		return dst, err
	}
	field, err := c.field(hs, n)
	if err != nil {
		return dst, err
	}
	// Write the header in place: a local array passed to the ByteOrder
	// interface would escape, one allocation per package.
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)[:len(dst)+hs]
	hdr := dst[len(dst)-hs:]
	switch hs {
	case 1:
		hdr[0] = byte(field)
	case 2:
		order.PutUint16(hdr, uint16(field))
	case 4:
		order.PutUint32(hdr, uint32(field))
	case 8:
		order.PutUint64(hdr, uint64(field))
	}
	return dst, nil
}

// field is the length field's value for an n-byte payload in an hs-byte
// field.
func (c *LengthFieldCodec) field(hs, n int) (int64, error) {
	if c.MaxLength > 0 && n > c.MaxLength {
		return 0, fmt.Errorf("%w: payload %d > %d", ErrMsgTooLong, n, c.MaxLength)
	}
	field := int64(n) - int64(c.Adjustment)
	if field < 0 || (hs < 8 && field >= 1<<(8*hs)) {
		return 0, fmt.Errorf("%w: payload %d does not fit a %d-byte length field", ErrMsgTooLong, n, hs)
	}
	return field, nil
}

// ReleasePkg implements PkgReleaser.
func (c *LengthFieldCodec) ReleasePkg(pkg any) { releaseFrame(pkg) }

// DelimiterCodec frames packages that end with a delimiter, such as lines.
// The zero value splits on "\n".
//
// Read returns a *Frame without the delimiter (see Frame for its
// lifetime). Write and AppendPkg accept a *Frame, a []byte or a string and
// add the delimiter. It is safe for concurrent use.
type DelimiterCodec struct {
	// Delimiter ends each package. Empty means "\n".
	Delimiter []byte
	// MaxLength caps a package's length without its delimiter; zero means
	// no cap beyond the session's max message length.
	MaxLength int
}

var newline = []byte{'\n'}

func (c *DelimiterCodec) delim() []byte {
	if len(c.Delimiter) == 0 {
		return newline
	}
	return c.Delimiter
}

// Read implements Reader.
func (c *DelimiterCodec) Read(_ Session, buf []byte) (any, int, error) {
	d := c.delim()
	i := bytes.Index(buf, d)
	if i < 0 {
		if c.MaxLength > 0 && len(buf) > c.MaxLength+len(d) {
			return nil, 0, fmt.Errorf("%w: no delimiter in %d bytes", ErrMsgTooLong, len(buf))
		}
		return nil, 0, nil
	}
	if c.MaxLength > 0 && i > c.MaxLength {
		return nil, 0, fmt.Errorf("%w: package %d > %d", ErrMsgTooLong, i, c.MaxLength)
	}
	return newFrame(buf[:i]), i + len(d), nil
}

// Write implements Writer.
func (c *DelimiterCodec) Write(s Session, pkg any) ([]byte, error) {
	return c.AppendPkg(s, nil, pkg)
}

// AppendPkg implements PkgAppender.
func (c *DelimiterCodec) AppendPkg(_ Session, dst []byte, pkg any) ([]byte, error) {
	head, _, _, err := c.appendSplit(dst, pkg, noSplit)
	return head, err
}

// appendSplit: the payload, then the delimiter (see splitBuiltin).
func (c *DelimiterCodec) appendSplit(dst []byte, pkg any, split int) (head, body, tail []byte, err error) {
	b, str, err := payloadOf(pkg)
	if err != nil {
		return dst, nil, nil, err
	}
	if err := c.check(b, str); err != nil {
		return dst, nil, nil, err
	}
	if len(b) >= split {
		return dst, b, c.delim(), nil
	}
	dst = append(dst, b...)
	dst = append(dst, str...)
	return append(dst, c.delim()...), nil, nil, nil
}

// check refuses a package that holds the delimiter or is too long.
func (c *DelimiterCodec) check(b []byte, str string) error {
	d := c.delim()
	if bytes.Contains(b, d) || (str != "" && bytes.Contains([]byte(str), d)) {
		return fmt.Errorf("getty: DelimiterCodec: package contains the delimiter %q", d)
	}
	if n := len(b) + len(str); c.MaxLength > 0 && n > c.MaxLength {
		return fmt.Errorf("%w: package %d > %d", ErrMsgTooLong, n, c.MaxLength)
	}
	return nil
}

// appendSplit, on the built-in codecs, appends the encoded package to dst
// and returns it as head, except that a payload given as a byte slice of
// at least split bytes is not copied: it comes back as body, with what
// follows it in tail, so that WritePkg hands a large package to the socket
// in one writev without copying it.
//
// splitBuiltin calls it only when w is one of them, not a type embedding
// one: such a type may override AppendPkg, and its AppendPkg must run.
func splitBuiltin(w PkgAppender, dst []byte, pkg any, split int) (head, body, tail []byte, ok bool, err error) {
	switch c := w.(type) {
	case *LengthFieldCodec:
		head, body, tail, err = c.appendSplit(dst, pkg, split)
	case *DelimiterCodec:
		head, body, tail, err = c.appendSplit(dst, pkg, split)
	default:
		return nil, nil, nil, false, nil
	}
	return head, body, tail, true, err
}

// noSplit makes appendSplit append the whole package.
const noSplit = math.MaxInt

// ReleasePkg implements PkgReleaser.
func (c *DelimiterCodec) ReleasePkg(pkg any) { releaseFrame(pkg) }
