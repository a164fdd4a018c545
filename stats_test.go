package getty_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

func TestStats(t *testing.T) {
	rec := newRecorder(true)
	srv := startServer(t, row("tcp").newServer(t), withCodec(rec))
	c := rawDial(t, srv)
	for i := 0; i < 3; i++ {
		_, _ = c.Write(frame("abc"))
		assert.Equal(t, "abc", readFrame(t, c))
	}
	// The server counts a write once it returns, which may be just after
	// the peer has the reply.
	var st getty.EndpointStats
	eventually(t, "3 packages written", func() bool { st, _ = getty.EndpointStatsOf(srv); return st.WritePkgs == 3 })
	_, ok := getty.EndpointStatsOf(srv)
	require.True(t, ok)
	assert.Equal(t, 1, st.SessionsOpen)
	assert.Equal(t, uint64(1), st.SessionsTotal)
	assert.Equal(t, uint64(3), st.ReadPkgs)
	assert.Equal(t, uint64(3), st.WritePkgs)
	assert.Equal(t, uint64(21), st.ReadBytes)

	// A session ended by an error counts as one, and its
	// counters stay in the totals.
	_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff}) // over the max length
	rec.waitClosed(t, 1)
	st, _ = getty.EndpointStatsOf(srv)
	assert.Equal(t, 0, st.SessionsOpen)
	assert.Equal(t, uint64(1), st.Errors)
	assert.Equal(t, uint64(3), st.ReadPkgs)
	assert.Equal(t, uint64(25), st.ReadBytes)

	sessCh := make(chan getty.Session, 1)
	srv2 := startServer(t, row("tcp").newServer(t), withCodec(rec, func(s getty.Session) { sessCh <- s }))
	c2 := rawDial(t, srv2)
	_, _ = c2.Write(frame("x"))
	assert.Equal(t, "x", readFrame(t, c2))
	s := <-sessCh
	eventually(t, "1 package written", func() bool { ss, _ := getty.StatsOf(s); return ss.WritePkgs == 1 })
	ss, ok := getty.StatsOf(s)
	require.True(t, ok)
	assert.Equal(t, uint64(1), ss.ReadPkgs)
	assert.Equal(t, uint64(5), ss.WriteBytes)
	assert.False(t, ss.Closed)
}
