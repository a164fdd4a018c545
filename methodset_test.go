package getty_test

import (
	"net"
	"reflect"
	"sort"
	"testing"
	"time"

	getty "github.com/getty-go/getty"
)

// The Session and Connection method sets are frozen at upstream's
// (apache/dubbo-getty v1.4.10 and v1.5.0 have the same ones): seata-go
// generates a gomock of the whole getty.Session, and one added method breaks
// its build. mockSession is what such a generator writes: exactly upstream's
// 35 methods. Both directions are checked at compile time: the mock satisfies
// getty.Session (getty asks for nothing more), and getty.Session satisfies
// upstreamSession (getty has everything upstream has).

type upstreamConnection interface {
	ID() uint32
	SetCompressType(getty.CompressType)
	LocalAddr() string
	RemoteAddr() string
	IncReadPkgNum()
	IncWritePkgNum()
	UpdateActive()
	GetActive() time.Time
	ReadTimeout() time.Duration
	SetReadTimeout(time.Duration)
	WriteTimeout() time.Duration
	SetWriteTimeout(time.Duration)
	Send(interface{}) (int, error)
	CloseConn(int)
	SetSession(getty.Session)
}

type upstreamSession interface {
	upstreamConnection
	Reset()
	Conn() net.Conn
	Stat() string
	IsClosed() bool
	EndPoint() getty.EndPoint
	SetMaxMsgLen(int)
	SetName(string)
	SetEventListener(getty.EventListener)
	SetPkgHandler(getty.ReadWriter)
	SetReader(getty.Reader)
	SetWriter(getty.Writer)
	SetCronPeriod(int)
	SetWaitTime(time.Duration)
	GetAttribute(interface{}) interface{}
	SetAttribute(interface{}, interface{})
	RemoveAttribute(interface{})
	WritePkg(pkg interface{}, timeout time.Duration) (totalBytesLength int, sendBytesLength int, err error)
	WriteBytes([]byte) (int, error)
	WriteBytesArray(...[]byte) (int, error)
	Close()
}

var (
	_ getty.Session      = (*mockSession)(nil)
	_ getty.Connection   = (*mockSession)(nil)
	_ upstreamSession    = getty.Session(nil)
	_ upstreamConnection = getty.Connection(nil)
)

// mockSession has exactly upstream's 35 Session methods and nothing else.
type mockSession struct{}

func (*mockSession) ID() uint32                                            { return 0 }
func (*mockSession) SetCompressType(getty.CompressType)                    {}
func (*mockSession) LocalAddr() string                                     { return "" }
func (*mockSession) RemoteAddr() string                                    { return "" }
func (*mockSession) IncReadPkgNum()                                        {}
func (*mockSession) IncWritePkgNum()                                       {}
func (*mockSession) UpdateActive()                                         {}
func (*mockSession) GetActive() time.Time                                  { return time.Time{} }
func (*mockSession) ReadTimeout() time.Duration                            { return 0 }
func (*mockSession) SetReadTimeout(time.Duration)                          {}
func (*mockSession) WriteTimeout() time.Duration                           { return 0 }
func (*mockSession) SetWriteTimeout(time.Duration)                         {}
func (*mockSession) Send(interface{}) (int, error)                         { return 0, nil }
func (*mockSession) CloseConn(int)                                         {}
func (*mockSession) SetSession(getty.Session)                              {}
func (*mockSession) Reset()                                                {}
func (*mockSession) Conn() net.Conn                                        { return nil }
func (*mockSession) Stat() string                                          { return "" }
func (*mockSession) IsClosed() bool                                        { return false }
func (*mockSession) EndPoint() getty.EndPoint                              { return nil }
func (*mockSession) SetMaxMsgLen(int)                                      {}
func (*mockSession) SetName(string)                                        {}
func (*mockSession) SetEventListener(getty.EventListener)                  {}
func (*mockSession) SetPkgHandler(getty.ReadWriter)                        {}
func (*mockSession) SetReader(getty.Reader)                                {}
func (*mockSession) SetWriter(getty.Writer)                                {}
func (*mockSession) SetCronPeriod(int)                                     {}
func (*mockSession) SetWaitTime(time.Duration)                             {}
func (*mockSession) GetAttribute(interface{}) interface{}                  { return nil }
func (*mockSession) SetAttribute(interface{}, interface{})                 {}
func (*mockSession) RemoveAttribute(interface{})                           {}
func (*mockSession) WriteBytes([]byte) (int, error)                        { return 0, nil }
func (*mockSession) WriteBytesArray(...[]byte) (int, error)                { return 0, nil }
func (*mockSession) Close()                                                {}
func (*mockSession) WritePkg(interface{}, time.Duration) (int, int, error) { return 0, 0, nil }

// The compile-time checks above allow getty's interfaces to have fewer
// methods only if the mock had extra ones; this pins the exact counts and
// names, so the test names what changed.
func TestSessionMethodSetIsUpstreams(t *testing.T) {
	for _, c := range []struct {
		getty, upstream reflect.Type
		want            int
	}{
		{reflect.TypeOf((*getty.Session)(nil)).Elem(), reflect.TypeOf((*upstreamSession)(nil)).Elem(), 35},
		{reflect.TypeOf((*getty.Connection)(nil)).Elem(), reflect.TypeOf((*upstreamConnection)(nil)).Elem(), 15},
	} {
		got, want := methodNames(c.getty), methodNames(c.upstream)
		if len(want) != c.want || !reflect.DeepEqual(got, want) {
			t.Errorf("%s methods differ from upstream's %d:\n getty:    %v\n upstream: %v", c.getty, c.want, got, want)
		}
	}
}

func methodNames(t reflect.Type) []string {
	names := make([]string, t.NumMethod())
	for i := range names {
		names[i] = t.Method(i).Name
	}
	sort.Strings(names)
	return names
}
