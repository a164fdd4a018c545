package getty_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

// cronCensus counts OnCron calls per session.
type cronCensus struct {
	getty.BaseListener
	mu    sync.Mutex
	calls map[getty.Session]*atomic.Int64
}

func (c *cronCensus) OnOpen(s getty.Session) error {
	c.mu.Lock()
	c.calls[s] = new(atomic.Int64)
	c.mu.Unlock()
	return nil
}

func (c *cronCensus) OnCron(s getty.Session) {
	c.mu.Lock()
	n := c.calls[s]
	c.mu.Unlock()
	n.Add(1)
	// A heartbeat: the write is what makes OnCron take time, so that the
	// beats of one period queue up behind each other.
	_, _ = s.WriteBytes(heartbeat)
}

var heartbeat = frame("hb")

// OnError is quiet: the peers of the test just go away.
func (c *cronCensus) OnError(getty.Session, error) {}

func (c *cronCensus) sessions() map[getty.Session]*atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[getty.Session]*atomic.Int64, len(c.calls))
	for s, n := range c.calls {
		out[s] = n
	}
	return out
}

// Many sessions whose period is set to one value at one moment (the guide's
// heartbeat after a config change) all get their beats: none is starved
// while others run. Beat counts are compared with each other, so a machine
// that runs the wheel late shifts every session alike and the test holds.
func TestCronManySessionsNoLostBeats(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1000
	}
	const periodMs, beats = 500, 6
	l := &cronCensus{calls: make(map[getty.Session]*atomic.Int64)}
	srv := startServer(t, row("tcp").newServer(t), withCodec(l))
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", srv.Addr().String(), waitLimit)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	eventually(t, "every session open", func() bool { return len(l.sessions()) == n })
	all := l.sessions()
	for s := range all {
		s.SetCronPeriod(periodMs)
	}
	time.Sleep(beats * periodMs * time.Millisecond)
	lo, hi, sum := int64(1<<62), int64(0), int64(0)
	for _, c := range all {
		v := c.Load()
		lo, hi, sum = min(lo, v), max(hi, v), sum+v
	}
	t.Logf("%d sessions, %d beats due: OnCron calls per session min %d, max %d, mean %.2f",
		n, beats, lo, hi, float64(sum)/float64(n))
	// The counts are read while beats run: one session may be a beat
	// ahead of another. A session that missed two beats in a row is two
	// behind the best.
	assert.GreaterOrEqual(t, lo, hi-2, "some sessions lost beats that others got")
	assert.GreaterOrEqual(t, lo, int64(beats/2), "a session missed two beats in a row")
}

// A periodic OnCron keeps its phase: the beats that land in a window are
// those its period allows, however late each ran, so the mean period is the
// setting. (Re-arming from when a beat ran adds the wheel's latency to every
// period: 9-29% at 100 ms.)
func TestCronNoDrift(t *testing.T) {
	const period, window = 100 * time.Millisecond, 4 * time.Second
	l := &cronProbe{fired: make(chan time.Time, 200)}
	srv := startServer(t, row("tcp").newServer(t), withCodec(l, func(s getty.Session) { s.SetCronPeriod(int(period / time.Millisecond)) }))
	rawDial(t, srv)
	var first time.Time
	select {
	case first = <-l.fired:
	case <-time.After(waitLimit):
		t.Fatal("cron did not fire")
	}
	time.Sleep(window + period)
	var stamps []time.Time
	for len(l.fired) > 0 {
		stamps = append(stamps, <-l.fired)
	}
	count := 0
	for _, ts := range stamps {
		if ts.Sub(first) <= window+period/2 {
			count++
		}
	}
	due := int(window / period)
	if len(stamps) > 1 {
		t.Logf("%d beats in %v after the first (%d due); mean period %v", count, window, due,
			stamps[len(stamps)-1].Sub(first)/time.Duration(len(stamps)))
	}
	// Beat k is due at first+k*period; each may run up to half a period
	// late and still count. One beat of slack for a loaded machine (a beat
	// more than a period late is skipped); a drift of 4% loses two.
	assert.GreaterOrEqual(t, count, due-1, "the period drifts")
	assert.LessOrEqual(t, count, due, "cron fired early")
}
