package getty

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// swappedOrder is a ByteOrder of the user's: frameBuiltin must leave it to
// AppendPkg.
type swappedOrder struct{ binary.ByteOrder }

// frameBuiltin encodes exactly what AppendPkg does, refuses what it
// refuses with the same error, and declines (ok false) only what it must
// leave to AppendPkg: a user's byte order, a nil *Frame, a UDPContext.
func TestFrameBuiltinMatchesAppendPkg(t *testing.T) {
	codecs := []PkgAppender{
		&LengthFieldCodec{},
		&LengthFieldCodec{HeaderSize: 1},
		&LengthFieldCodec{HeaderSize: 2, ByteOrder: binary.LittleEndian},
		&LengthFieldCodec{HeaderSize: 4, ByteOrder: binary.LittleEndian, Adjustment: -4},
		&LengthFieldCodec{HeaderSize: 8, ByteOrder: binary.BigEndian},
		&LengthFieldCodec{HeaderSize: 8, ByteOrder: binary.LittleEndian},
		&LengthFieldCodec{HeaderSize: 2, MaxLength: 3},
		&LengthFieldCodec{HeaderSize: 3},
		&LengthFieldCodec{ByteOrder: swappedOrder{binary.BigEndian}},
		&DelimiterCodec{},
		&DelimiterCodec{Delimiter: []byte("\r\n"), MaxLength: 5},
	}
	pkgs := []any{
		[]byte("hello"), "hi", "", []byte{}, &Frame{Payload: []byte("frame")},
		bytes.Repeat([]byte("x"), 300), "a\nb", (*Frame)(nil), UDPContext{Pkg: "u"}, 42,
	}
	for i, c := range codecs {
		for j, pkg := range pkgs {
			t.Run(fmt.Sprintf("%d/%d", i, j), func(t *testing.T) {
				var f framed
				ok, err := frameBuiltin(c, pkg, &f)
				if !ok {
					if err != nil {
						t.Fatalf("declined with an error: %v", err)
					}
					return
				}
				want, werr := c.AppendPkg(nil, nil, pkg)
				if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
					t.Fatalf("error %v, AppendPkg's %v", err, werr)
				}
				if err != nil {
					return
				}
				got := make([]byte, f.size())
				if n := f.put(got); n != len(got) || !bytes.Equal(got, want) {
					t.Fatalf("framed %q (%d), AppendPkg %q", got[:n], n, want)
				}
			})
		}
	}
	for _, pkg := range []any{(*Frame)(nil), UDPContext{Pkg: "u"}, 42} {
		if ok, _ := frameBuiltin(&LengthFieldCodec{}, pkg, new(framed)); ok {
			t.Errorf("%T framed: AppendPkg must handle it", pkg)
		}
	}
	if ok, _ := frameBuiltin(&LengthFieldCodec{ByteOrder: swappedOrder{binary.BigEndian}}, "x", new(framed)); ok {
		t.Error("a user's ByteOrder framed: AppendPkg must call it")
	}
}
