package getty

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/getty-go/getty/internal/bufpool"
)

// run is the reader goroutine: set up, open, read until the end, then end
// the session. It returns once OnClose has run.
//
// The frames on an idle reader's stack are kept small (setup runs and
// returns before reading; readStream keeps its state in the session), so a
// parked reader fits the runtime's smallest goroutine stack: 2 KiB per idle
// connection rather than 4.
func (s *session) run(newSession NewSessionCallback) {
	if !s.setup(newSession) {
		return
	}
	s.endReading(s.tr.readLoop(s))
}

// setup takes the session from accepted to open: handshake, the
// new-session callback, OnOpen. False means the connection was closed.
//
//go:noinline
func (s *session) setup(newSession NewSessionCallback) bool {
	if h, ok := s.tr.(handshaker); ok {
		if err := h.handshake(); err != nil {
			s.log(slog.LevelInfo, "getty: handshake failed", err)
			s.abandon()
			return false
		}
	}
	if err := callNewSession(newSession, s); err != nil {
		s.notePanic(err)
		s.setupFailed("NewSessionCallback", err)
		s.abandon()
		return false
	}
	if err := s.open(); err != nil {
		s.notePanic(err)
		s.setupFailed("OnOpen", err)
		s.abandon()
		if s.mq != nil {
			s.mq.mbox.Close(nil)
		}
		return false
	}
	return true
}

// abandon closes the connection of a session that never opened: no
// flush, no callbacks.
func (s *session) abandon() {
	s.closing.Store(true)
	s.tr.closeNow(-1)
}

// callNewSession calls the new-session callback, refusing a nil one.
func callNewSession(cb NewSessionCallback, s Session) (err error) {
	if cb == nil {
		return fmt.Errorf("%w (the NewSessionCallback is nil)", ErrNoCodec)
	}
	defer recoverAs("NewSessionCallback", &err)
	return cb(s)
}

// notePanic counts a panic that kept a session from opening; panics that
// end an open session are counted when it ends.
func (s *session) notePanic(err error) {
	if s.ep != nil && errors.Is(err, ErrPanic) {
		s.ep.counters.panics.Add(1)
	}
}

func (s *session) open() (err error) {
	if s.reader == nil {
		return ErrNoCodec
	}
	if s.listener == nil {
		s.listener = BaseListener{}
	}
	s.setupDispatch()
	if err := s.callOnOpen(); err != nil {
		return err
	}
	s.flags.set(flagOpened, true)
	if s.ep != nil {
		s.ep.counters.opened.Add(1)
	}
	s.armCron()
	if s.ep != nil && s.ep.onOpen != nil {
		s.ep.onOpen(s)
	}
	return nil
}

func (s *session) callOnOpen() (err error) {
	defer recoverAs("OnOpen", &err)
	return s.listener.OnOpen(s)
}

// setErr records the error that ends the session; the first one wins.
func (s *session) setErr(err error) {
	s.mu.Lock()
	if r := s.rareLocked(); r.err == nil {
		r.err = err
	}
	s.mu.Unlock()
}

func (s *session) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rare == nil {
		return nil
	}
	return s.rare.err
}

func (s *session) Close() { s.closeWith(nil) }

// closeWith closes the session; a non-nil err is reported to OnError.
func (s *session) closeWith(err error) {
	if err != nil {
		var se *SessionError
		if !errors.As(err, &se) {
			err = s.opError(opCallback, err)
		}
		s.setErr(err)
	}
	if !s.closing.CompareAndSwap(false, true) {
		return
	}
	s.stopCron()
	if err := s.tr.shutdown(s.closeDeadline(), s.endErr()); err != nil {
		s.log(slog.LevelDebug, "getty: flush on close", err)
	}
	// The reader notices the closed socket and ends the session; end
	// never runs here, since Close may be called from a callback that end
	// has to wait for.
}

// peerClosing is how a message transport reports the peer's close: reason
// (nil for an orderly close) is recorded before closing is set, which makes
// later read errors count as orderly and later writes report the session
// closed rather than failing it.
func (s *session) peerClosing(reason error) {
	if reason != nil {
		s.setErr(reason)
	}
	s.closing.Store(true)
}

// fail closes the session with err, for a transport that failed outside
// a read or a write (a WebSocket ping).
func (s *session) fail(err error) { s.closeWith(err) }

// endReading runs on the reader goroutine once readLoop has returned: it
// records why reading ended and ends the session after the last OnMessage,
// waiting until OnClose has run.
func (s *session) endReading(readErr error) {
	if readErr != nil && !s.closing.Load() {
		s.setErr(readErr)
	}
	s.closing.Store(true)
	s.stopCron()
	if s.rbuf != nil {
		bufpool.Put(s.rbuf)
		s.rbuf, s.rlen = nil, 0
	}
	if s.mq != nil {
		s.mq.endDone.Add(1)
		s.mq.mbox.Close(s.end)
		s.mq.endDone.Wait()
	} else {
		s.end()
	}
}

// end ends the session after its last OnMessage: it closes the socket
// (after flushing replies), waits out callbacks in flight, then reports.
func (s *session) end() {
	if !s.flags.set(flagEndBegun, true) {
		return
	}
	if s.mq != nil {
		defer s.mq.endDone.Done()
	}
	s.closing.Store(true)
	s.stopCron()
	_ = s.tr.shutdown(s.closeDeadline(), s.endErr())
	s.gateMu.Lock()
	s.gateShut = true
	s.gateMu.Unlock()
	err := s.endErr()
	if s.ep != nil {
		s.ep.noteEnd(s, err)
	}
	if err != nil {
		s.reportEnd(err) // OnError; logs a panic, or an error nobody handled
	}
	s.callback("OnClose", func() { s.listener.OnClose(s) })
	if s.ep != nil && s.ep.onEnd != nil {
		s.ep.onEnd(s)
	}
}

// callback runs a closing callback under recover; a panic there can only be
// logged, the session is already ending.
func (s *session) callback(name string, f func()) {
	if err := protect(name, f); err != nil {
		if s.ep != nil {
			s.ep.counters.panics.Add(1)
		}
		s.log(slog.LevelError, "getty: panic in "+name, err)
	}
}

// enter admits a callback that may overlap the reader (OnCron, unordered
// OnMessage); false once end has started.
func (s *session) enter() bool {
	s.gateMu.RLock()
	if s.gateShut {
		s.gateMu.RUnlock()
		return false
	}
	return true
}

func (s *session) leave() { s.gateMu.RUnlock() }
