package getty

// Sessions returns the server's open sessions: those whose OnOpen succeeded
// and that are not closing. It is a snapshot, safe to call from any
// goroutine (callbacks included) while sessions come and go; a session in
// it may close at any moment, and writing to it then returns an error
// matching ErrSessionClosed.
func (s *server) Sessions() []Session {
	return s.endpoint.openSessions()
}

// SessionCount returns how many sessions are open (see Sessions), without
// making a slice.
func (s *server) SessionCount() int { return s.endpoint.openCount() }

func (e *endpoint) openSessions() []Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Session, 0, len(e.sessions))
	for ss := range e.sessions {
		if ss.flags.has(flagOpened) && !ss.closing.Load() {
			out = append(out, ss)
		}
	}
	return out
}

func (e *endpoint) openCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for ss := range e.sessions {
		if ss.flags.has(flagOpened) && !ss.closing.Load() {
			n++
		}
	}
	return n
}
