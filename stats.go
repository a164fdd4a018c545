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
	return SessionStats{
		ReadBytes:  s.readBytes.Load(),
		WriteBytes: s.writeBytes.Load(),
		ReadPkgs:   s.readPkgs.Load(),
		WritePkgs:  s.writePkgs.Load(),
		Drops:      s.drops.Load(),
		LastActive: s.GetActive(),
		Closed:     s.IsClosed(),
	}
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
// complete without counting on the hot path.
type endpointCounters struct {
	opened                     atomic.Uint64
	readBytes, writeBytes      atomic.Uint64
	readPkgs, writePkgs, drops atomic.Uint64
	errors, panics             atomic.Uint64
}

func (e *endpoint) stats() EndpointStats {
	st := EndpointStats{
		SessionsTotal: e.counters.opened.Load(),
		ReadBytes:     e.counters.readBytes.Load(),
		WriteBytes:    e.counters.writeBytes.Load(),
		ReadPkgs:      e.counters.readPkgs.Load(),
		WritePkgs:     e.counters.writePkgs.Load(),
		Drops:         e.counters.drops.Load(),
		Errors:        e.counters.errors.Load(),
		Panics:        e.counters.panics.Load(),
	}
	e.mu.Lock()
	for s := range e.sessions {
		if s.opened.Load() && !s.ended.Load() {
			st.SessionsOpen++
			st.ReadBytes += s.readBytes.Load()
			st.WriteBytes += s.writeBytes.Load()
			st.ReadPkgs += s.readPkgs.Load()
			st.WritePkgs += s.writePkgs.Load()
			st.Drops += s.drops.Load()
		}
	}
	e.mu.Unlock()
	return st
}

// noteEnd folds an ended session's counters into the endpoint's; called
// once, from final, under the endpoint lock so stats never counts it twice.
func (e *endpoint) noteEnd(s *session, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.ended.Store(true)
	e.counters.readBytes.Add(s.readBytes.Load())
	e.counters.writeBytes.Add(s.writeBytes.Load())
	e.counters.readPkgs.Add(s.readPkgs.Load())
	e.counters.writePkgs.Add(s.writePkgs.Load())
	e.counters.drops.Add(s.drops.Load())
	if err != nil {
		e.counters.errors.Add(1)
		if errors.Is(err, ErrPanic) {
			e.counters.panics.Add(1)
		}
	}
}
