package getty

import (
	"errors"

	"github.com/getty-go/getty/internal/dispatch"
)

func (s *session) setupDispatch() {
	ep := s.ep
	switch {
	case ep == nil || ep.executor == nil:
		s.mode = dispatchInline
	case ep.ordered:
		s.mode = dispatchMailbox
		s.mbox = dispatch.NewMailbox(ep.executor, uint64(s.id), ep.mailboxSize, 0)
		s.mbox.SetDrainHooks(s.tr.cork, s.flushBatch)
		s.mbox.SetPanicHandler(func(v any) { s.closeWith(newPanicError("OnMessage", v)) })
	default:
		s.mode = dispatchUnordered
		s.ex = ep.executor
	}
}

// dispatch hands one package to OnMessage according to the mode.
func (s *session) dispatch(pkg any) error {
	s.readPkgs.Add(1)
	switch s.mode {
	case dispatchMailbox:
		if !s.mbox.RunOrPost(s.onMessage, pkg) {
			s.recycle(pkg)
		}
	case dispatchUnordered:
		s.tr.cork() // released when the task starts (dispatch_unordered.go)
		if t := unorderedTaskFor(s, pkg); !s.ex.Execute(uint64(s.id), t.fn) {
			t.release()
			_ = s.endBatch(false)
			s.recycle(pkg)
			s.closeWith(s.opError(opDispatch, errors.New("getty: task pool closed")))
		}
	default:
		s.runMessage(pkg)
	}
	if s.closing.Load() { // the error lock only once the session is ending
		return s.endErr()
	}
	return nil
}

// runMessage calls OnMessage under recover and recycles the package.
func (s *session) runMessage(pkg any) {
	err := protect("OnMessage", func() { s.listener.OnMessage(s, pkg) })
	s.recycle(pkg)
	if err != nil {
		s.closeWith(err)
	}
}

// flushBatch is the mailbox's end-of-drain hook: it flushes the replies
// gathered during the drain.
func (s *session) flushBatch() { _ = s.endBatch(true) }

// endBatch ends a dispatch batch; flush writes out the gathered replies.
func (s *session) endBatch(flush bool) error {
	if err := s.tr.uncork(flush, s.WriteTimeout()); err != nil {
		err = s.opError(opWrite, err)
		s.closeWith(err)
		return err
	}
	return nil
}
