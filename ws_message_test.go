package getty_test

import (
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// lineRecorder records the lines a DelimiterCodec session receives.
type lineRecorder struct {
	getty.BaseListener
	mu    sync.Mutex
	lines []string
	sess  getty.Session
}

func (l *lineRecorder) OnOpen(s getty.Session) error {
	l.mu.Lock()
	l.sess = s
	l.mu.Unlock()
	return nil
}

func (l *lineRecorder) OnMessage(_ getty.Session, pkg any) {
	l.mu.Lock()
	l.lines = append(l.lines, string(pkg.(*getty.Frame).Payload))
	l.mu.Unlock()
}

func (l *lineRecorder) got() ([]string, getty.Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...), l.sess
}

// Every package of a message is decoded; with DelimiterCodec the end of a
// message ends its last package; a Reader without ReadEnd drops an
// incomplete remainder and counts it.
func TestWSMultiPackageMessages(t *testing.T) {
	t.Run("DelimiterCodec", func(t *testing.T) {
		l := &lineRecorder{}
		srv := startServer(t, row("ws").newServer(t), func(s getty.Session) error {
			s.SetPkgHandler(&getty.DelimiterCodec{})
			s.SetEventListener(l)
			return nil
		})
		r := dialRawWS(t, srv)
		r.send(0x80|opText, true, []byte("sub a\nping\nsub b\n"))
		r.send(0x80|opText, true, []byte("x\nno newline at the end"))
		want := []string{"sub a", "ping", "sub b", "x", "no newline at the end"}
		eventually(t, "every line", func() bool { got, _ := l.got(); return len(got) == len(want) })
		got, s := l.got()
		assert.Equal(t, want, got)
		st, ok := getty.StatsOf(s)
		require.True(t, ok)
		assert.Zero(t, st.Drops)
		assert.EqualValues(t, 5, st.ReadPkgs)
	})
	t.Run("incomplete remainder", func(t *testing.T) {
		rec := newRecorder(false)
		srv := startServer(t, row("ws").newServer(t), withCodec(rec))
		r := dialRawWS(t, srv)
		msg := append(append(frame("one"), frame("two")...), frame("cut short")[:6]...)
		r.send(0x80|opBinary, true, msg)
		assert.Equal(t, "one", rec.next(t))
		assert.Equal(t, "two", rec.next(t))
		assert.Equal(t, 1007, r.closeCode(), "an incomplete package is invalid payload data")
		r.waitEOF()
		rec.waitClosed(t, 1)
		_, _, errs := rec.counts()
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], io.ErrUnexpectedEOF)
		assert.ErrorIs(t, errs[0], getty.ErrReaderContract)
	})
}

// Messages that arrive together are answered in order, their replies
// gathered into one write, in every dispatch mode.
func TestWSGatheredReplies(t *testing.T) {
	for name, opts := range map[string][]getty.ServerOption{
		"inline":     nil,
		"workerpool": {getty.WithServerWorkerPool(2)},
	} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, row("ws").newServer(t, opts...), withCodec(newRecorder(true)))
			r := dialRawWS(t, srv)
			for round := 0; round < 3; round++ {
				var batch []byte
				for i := 0; i < 50; i++ {
					batch = append(batch, frameBytes(0x80|opBinary, true, frame(strconv.Itoa(round*100+i)))...)
				}
				_ = r.c.SetWriteDeadline(time.Now().Add(waitLimit))
				_, err := r.c.Write(batch)
				require.NoError(t, err)
				for i := 0; i < 50; i++ {
					_, op, p, err := r.read()
					require.NoError(t, err)
					require.Equal(t, byte(opBinary), op)
					require.Equal(t, frame(strconv.Itoa(round*100+i)), p)
				}
			}
			r.send(0x80|opClose, true, closePayload(1000, ""))
			assert.Equal(t, 1000, r.closeCode())
			r.waitEOF()
		})
	}
}
