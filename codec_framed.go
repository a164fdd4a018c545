package getty

import "encoding/binary"

// framed is a package a built-in codec encoded in pieces: the length field
// (in hdr), the payload as the caller gave it, and the delimiter. WritePkg
// hands it to the transport, which copies the pieces once, straight into
// its pending bytes: no scratch buffer to take from a pool and give back,
// and one copy of the payload instead of two. It travels by value, so the
// header, on the caller's stack, never escapes to the heap.
type framed struct {
	hdr  [8]byte
	hn   int
	b    []byte
	str  string
	tail []byte
}

func (f *framed) size() int { return f.hn + len(f.b) + len(f.str) + len(f.tail) }

// put copies the package into dst, which has room for it, and returns its
// size.
func (f *framed) put(dst []byte) int {
	n := copy(dst, f.hdr[:f.hn])
	n += copy(dst[n:], f.b)
	n += copy(dst[n:], f.str)
	return n + copy(dst[n:], f.tail)
}

// frameBuiltin frames pkg into *f when w is a built-in codec (not a type
// embedding one, whose AppendPkg must run) and pkg a payload it can frame
// without running anything that may panic: ok is false otherwise, and
// WritePkg then encodes through AppendPkg under recover, as before. err is
// the codec's refusal, as AppendPkg would return it.
func frameBuiltin(w PkgAppender, pkg any, f *framed) (ok bool, err error) {
	switch c := w.(type) {
	case *LengthFieldCodec:
		return c.frame(pkg, f)
	case *DelimiterCodec:
		return c.frame(pkg, f)
	}
	return false, nil
}

// plainPayload is payloadOf for the packages framed handles: a nil *Frame
// (whose payload panics) and a UDPContext are left to payloadOf.
func plainPayload(pkg any) (b []byte, str string, ok bool) {
	switch p := pkg.(type) {
	case *Frame:
		if p != nil {
			return p.Payload, "", true
		}
	case []byte:
		return p, "", true
	case string:
		return nil, p, true
	}
	return nil, "", false
}

// frame is appendSplit for framed. Only the standard byte orders: a
// ByteOrder of the user's is called through the interface, which would
// move hdr to the heap, and may panic.
func (c *LengthFieldCodec) frame(pkg any, f *framed) (ok bool, err error) {
	b, str, ok := plainPayload(pkg)
	if !ok {
		return false, nil
	}
	little := false
	if c.ByteOrder != nil { // nil, the zero value's, is big-endian
		switch c.ByteOrder {
		case binary.ByteOrder(binary.BigEndian):
		case binary.ByteOrder(binary.LittleEndian):
			little = true
		default:
			return false, nil
		}
	}
	hs := c.HeaderSize
	switch hs {
	case 0:
		hs = 4
	case 1, 2, 4, 8:
	default:
		_, _, err := c.header() // its error names the size
		return true, err
	}
	field, err := c.field(hs, len(b)+len(str))
	if err != nil {
		return true, err
	}
	putField(f.hdr[:hs], field, little)
	f.hn, f.b, f.str = hs, b, str
	return true, nil
}

// putField writes a length field of len(hdr) bytes (1, 2, 4 or 8).
func putField(hdr []byte, field int64, little bool) {
	switch {
	case len(hdr) == 1:
		hdr[0] = byte(field)
	case len(hdr) == 2 && little:
		binary.LittleEndian.PutUint16(hdr, uint16(field))
	case len(hdr) == 2:
		binary.BigEndian.PutUint16(hdr, uint16(field))
	case len(hdr) == 4 && little:
		binary.LittleEndian.PutUint32(hdr, uint32(field))
	case len(hdr) == 4:
		binary.BigEndian.PutUint32(hdr, uint32(field))
	case little:
		binary.LittleEndian.PutUint64(hdr, uint64(field))
	default:
		binary.BigEndian.PutUint64(hdr, uint64(field))
	}
}

// frame is appendSplit for framed.
func (c *DelimiterCodec) frame(pkg any, f *framed) (ok bool, err error) {
	b, str, ok := plainPayload(pkg)
	if !ok {
		return false, nil
	}
	if err := c.check(b, str); err != nil {
		return true, err
	}
	f.b, f.str, f.tail = b, str, c.delim()
	return true, nil
}
