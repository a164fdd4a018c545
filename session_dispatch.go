package getty

import "fmt"

func (s *session) setupDispatch() {
	ep := s.ep
	switch {
	case ep == nil || ep.executor == nil:
		s.mode = dispatchInline
	case ep.ordered:
		s.mode = dispatchMailbox // the mailbox comes with the first message (mailbox)
	default:
		s.mode = dispatchUnordered
		if t, ok := s.tr.(*tcpTransport); ok {
			t.out.gatherWith()
		}
	}
}

// dispatch hands one package to OnMessage according to the mode.
func (s *session) dispatch(pkg any) error {
	s.readPkgs.Add(1)
	switch s.mode {
	case dispatchMailbox:
		s.post(pkg)
	case dispatchUnordered:
		s.tr.cork() // released when the task starts (dispatch_unordered.go)
		if t := unorderedTaskFor(s, pkg); !s.ep.executor.Execute(uint64(s.id), t.fn) {
			t.release()
			_ = s.endBatch(false)
			s.recycle(pkg)
			s.poolRefused(1)
		}
	default:
		s.runMessage(pkg)
	}
	if s.closing.Load() { // the error lock only once the session is ending
		return s.endErr()
	}
	return nil
}

// post hands pkg to the session's mailbox. While the reader gathers
// replies (several packages came in one read), it leases the idle mailbox
// and a worker token once for all of them and runs them itself, each one
// a plain call, until the read is consumed (endLease) or a worker waits
// for a token; their replies go into the reader's batch. A message that
// is queued instead holds a cork of its own until it starts (as a queued
// unordered task does): the reader's batch may end before a worker picks
// it up, and its reply then still leaves with the others, when the drain
// that runs it ends its batch, not alone in a write of its own. A single
// package runs on a borrowed token (RunOrPost) as a batch of its own.
func (s *session) post(pkg any) {
	mq := s.mailbox()
	if s.rs.corked && !s.rs.leased {
		s.rs.leased = mq.mbox.Lease()
	}
	if s.rs.leased {
		if mq.mbox.RunLeased(mq.onMessage, pkg) {
			return
		}
		s.endLease() // a worker waits for the token: queue behind its work
	}
	if !s.rs.corked {
		if !mq.mbox.RunOrPost(mq.onMessage, pkg, false) {
			s.refused(pkg, false)
		}
		return
	}
	s.tr.cork()
	if !mq.mbox.Post(mq.onQueued, pkg) {
		s.refused(pkg, true)
	}
}

// mailbox returns the session's mailbox, making it on the first message:
// a session that has received nothing holds none (about 250 bytes). Only
// the reader goroutine calls it, and only the reader reads s.mq (post, and
// endReading or a failed setup, which close it).
func (s *session) mailbox() *mailboxDispatch {
	if s.mq == nil {
		mq := &mailboxDispatch{mbox: s.ep.mailboxes.New(uint64(s.id)), onMessage: s.runMessage, onQueued: s.runQueued}
		mq.mbox.SetHooks((*mailboxHooks)(s))
		s.mq = mq
	}
	return s.mq
}

// endLease gives back the reader's lease on the mailbox, if it holds one.
func (s *session) endLease() {
	if s.rs.leased {
		s.rs.leased = false
		s.mq.mbox.EndLease()
	}
}

// refused drops a package the mailbox refused, with the cork it held.
func (s *session) refused(pkg any, corked bool) {
	if corked {
		_ = s.endBatch(true)
	}
	s.recycle(pkg)
	// Refused while the session is open: the executor was closed
	// (Abandoned below reported it, or a later message lands here).
	s.poolRefused(1)
}

// poolRefused ends a session whose executor refused messages: they were
// dropped, and replies the peer waits for will never come. A mailbox closed
// because the session is ending refuses too; that is no error.
func (s *session) poolRefused(dropped int) {
	if s.closing.Load() {
		return
	}
	s.closeWith(s.opError(opDispatch, fmt.Errorf("%w: %d message(s) dropped unhandled", ErrTaskPoolClosed, dropped)))
}

// runQueued runs a message posted with a cork (post): the drain's batch
// gathers from here on, so the message's cork is released before
// OnMessage.
func (s *session) runQueued(pkg any) {
	_ = s.endBatch(true)
	s.runMessage(pkg)
}

// runMessage calls OnMessage under recover and recycles the package.
func (s *session) runMessage(pkg any) {
	err := s.callOnMessage(pkg)
	s.recycle(pkg)
	if err != nil {
		s.closeWith(err)
	}
}

// callOnMessage is protect for OnMessage, without a closure to call
// through on every message.
func (s *session) callOnMessage(pkg any) (err error) {
	defer recoverAs("OnMessage", &err)
	s.listener.OnMessage(s, pkg)
	return nil
}

// mailboxHooks is a session seen as its mailbox's hooks: a conversion of
// the session pointer, so installing them allocates nothing (a closure for
// each would cost every session on a pool three small objects).
type mailboxHooks session

// BeginBatch gathers the replies of a drain batch.
func (h *mailboxHooks) BeginBatch() { h.tr.cork() }

// EndBatch flushes the replies gathered during the batch.
func (h *mailboxHooks) EndBatch() { _ = (*session)(h).endBatch(true) }

// Abandoned ends the session when its executor refused a drain: the
// queued messages were dropped, and corks they held with them.
func (h *mailboxHooks) Abandoned(dropped int) { (*session)(h).poolRefused(dropped) }

// Panicked ends the session whose OnMessage panicked.
func (h *mailboxHooks) Panicked(v any) {
	(*session)(h).closeWith(newPanicError("OnMessage", v))
}

// endBatch ends a dispatch batch; flush writes out the gathered replies.
func (s *session) endBatch(flush bool) error {
	if err := s.tr.uncork(flush, s.WriteTimeout()); err != nil {
		err = s.opError(opWrite, err)
		s.closeWith(err)
		return err
	}
	return nil
}
