package getty

import (
	"errors"
	"sync/atomic"
	"time"
)

// SessionStats is a snapshot of one session's counters.
type SessionStats struct {
	ReadBytes  uint64    // bytes read from the connection
	WriteBytes uint64    // bytes handed to the kernel
	ReadPkgs   uint64    // packages decoded
	WritePkgs  uint64    // packages written
	Drops      uint64    // datagrams dropped (UDP: truncated, oversize, undecodable)
	LastActive time.Time // last read (or UpdateActive)
	Closed     bool
}

// StatsOf returns the counters of a session made by getty; ok is false for
// any other Session implementation. Stat keeps upstream's string form.
func StatsOf(s Session) (stats SessionStats, ok bool) {
	ss, ok := s.(*session)
	if !ok {
		return SessionStats{}, false
	}
	return ss.stats(), true
}

func (s *session) stats() SessionStats {
	c := s.traffic()
	return SessionStats{
		ReadBytes:  c.readBytes,
		WriteBytes: c.writeBytes,
		ReadPkgs:   c.readPkgs,
		WritePkgs:  c.writePkgs,
		Drops:      c.drops,
		LastActive: s.GetActive(),
		Closed:     s.IsClosed(),
	}
}

// traffic is a snapshot of the counters a session keeps and its endpoint
// sums: the one place they are copied.
type traffic struct {
	readBytes, writeBytes, readPkgs, writePkgs, drops uint64
}

func (s *session) traffic() traffic {
	t := traffic{
		readBytes:  s.readBytes.Load(),
		writeBytes: s.writeBytes.Load(),
		readPkgs:   s.readPkgs.Load(),
		writePkgs:  s.writePkgs.Load(),
	}
	if pt := s.packetTr(); pt != nil {
		t.drops = pt.dropped() // only datagrams are dropped
	}
	return t
}

func (t *traffic) add(u traffic) {
	t.readBytes += u.readBytes
	t.writeBytes += u.writeBytes
	t.readPkgs += u.readPkgs
	t.writePkgs += u.writePkgs
	t.drops += u.drops
}

// EndpointStats is a snapshot of a server's or client's counters: the sum
// over the sessions it holds and those that have ended.
type EndpointStats struct {
	SessionsOpen  int    // sessions open now
	SessionsTotal uint64 // sessions ever opened (OnOpen succeeded)
	ReadBytes     uint64
	WriteBytes    uint64
	ReadPkgs      uint64
	WritePkgs     uint64
	Drops         uint64
	Errors        uint64 // sessions that ended with an error (OnError)
	Panics        uint64 // panics recovered from user callbacks
}

// EndpointStatsOf returns the counters of a server or client made by
// getty; ok is false for any other EndPoint implementation.
func EndpointStatsOf(ep EndPoint) (stats EndpointStats, ok bool) {
	type cored interface{ core() *endpoint }
	c, ok := ep.(cored)
	if !ok {
		return EndpointStats{}, false
	}
	return c.core().stats(), true
}

func (e *endpoint) core() *endpoint { return e }

// endpointCounters keeps what ended sessions leave behind, so Stats stays
// complete without counting on the hot path. ended is written under the
// endpoint lock only; the other counters are bumped from anywhere.
type endpointCounters struct {
	ended          traffic // the sum over the sessions that ended; endpoint lock
	opened         atomic.Uint64
	errors, panics atomic.Uint64
}

func (e *endpoint) stats() EndpointStats {
	st := EndpointStats{
		SessionsTotal: e.counters.opened.Load(),
		Errors:        e.counters.errors.Load(),
		Panics:        e.counters.panics.Load(),
	}
	e.mu.Lock()
	total := e.counters.ended
	for s := range e.sessions {
		if s.flags.has(flagOpened) && !s.flags.has(flagEnded) {
			st.SessionsOpen++
			total.add(s.traffic())
		}
	}
	e.mu.Unlock()
	st.ReadBytes, st.WriteBytes = total.readBytes, total.writeBytes
	st.ReadPkgs, st.WritePkgs, st.Drops = total.readPkgs, total.writePkgs, total.drops
	return st
}

// noteEnd folds an ended session's counters into the endpoint's; called
// once, from end, under the endpoint lock so stats never counts it twice.
func (e *endpoint) noteEnd(s *session, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.flags.set(flagEnded, true)
	e.counters.ended.add(s.traffic())
	if err != nil {
		e.counters.errors.Add(1)
		if errors.Is(err, ErrPanic) {
			e.counters.panics.Add(1)
		}
	}
}
