package getty_test

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	gxsync "github.com/dubbogo/gost/sync"
	"github.com/stretchr/testify/assert"

	getty "github.com/getty-go/getty"
)

// A user's task pool closed while sessions still use it refuses their
// messages. The session must not go on as if they ran (its peer would wait
// for replies forever, and a reply gathered behind them would never leave):
// it ends with ErrTaskPoolClosed, in the ordered (mailbox) and unordered
// modes alike.
func TestDispatchTaskPoolClosedEndsSession(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		name := map[bool]string{true: "ordered", false: "unordered"}[ordered]
		t.Run(name, func(t *testing.T) {
			pool := gxsync.NewTaskPoolSimple(2)
			rec := newRecorder(true)
			srv := startServer(t, row("tcp").newServer(t, getty.WithServerTaskPool(pool),
				getty.WithServerOrderedDispatch(ordered)), withCodec(rec))
			c := rawDial(t, srv)
			_, err := c.Write(frame("before"))
			assert.NoError(t, err)
			assert.Equal(t, "before", readFrame(t, c))

			pool.Close()
			_, err = c.Write(frame("after"))
			assert.NoError(t, err)
			// The session ends: the peer reads EOF (or a reset), not a reply.
			_ = c.SetReadDeadline(time.Now().Add(waitLimit))
			_, err = io.ReadAll(c)
			if err != nil {
				assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the session stayed open: %v", err)
			}
			eventually(t, "OnError with ErrTaskPoolClosed", func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				for _, e := range rec.errs {
					if errors.Is(e, getty.ErrTaskPoolClosed) {
						return true
					}
				}
				return false
			})
		})
	}
}
