package getty

import "sync"

// unorderedTask carries one message to a pool for unordered dispatch (a gost
// pool, or the built-in pool with WithServerOrderedDispatch(false)). The
// executors take a func(); a closure over the session and the message would
// allocate once per message, so the tasks are pooled and each keeps the
// method value of its run, made once when the task is.
//
// Replies: each queued task holds the session's send queue corked from
// dispatch until it starts, so a reply written while more of the session's
// messages wait for a worker is gathered, not written; the task that starts
// last (the cork count back at zero) writes what was gathered, before its
// own handler runs. On a busy pool the replies of one read batch thus leave
// in one or two writes instead of one each, and a reply waits at most until
// the messages behind it have started, never for a handler to finish.
//
// Replies of handlers that run at once (handlers that block, woken
// together): a TCP session counts its running handlers (sendQueue.handlers),
// and a reply written while another of them runs lets the runnable
// goroutines go first before it is flushed (sendQueue.gatherWith), so the
// replies of the handlers that wake together leave in one write.
type unorderedTask struct {
	s   *session
	pkg any
	fn  func() // t.run, made once
}

var unorderedTasks sync.Pool // of *unorderedTask

func init() {
	// In init, not the declaration: run puts the task back in the pool,
	// which would make the pool's initializer refer to itself.
	unorderedTasks.New = func() any {
		t := new(unorderedTask)
		t.fn = t.run
		return t
	}
}

// unorderedTaskFor returns a task that runs pkg's OnMessage on s; the task
// goes back to the pool when it runs.
func unorderedTaskFor(s *session, pkg any) *unorderedTask {
	t := unorderedTasks.Get().(*unorderedTask)
	t.s, t.pkg = s, pkg
	return t
}

func (t *unorderedTask) run() {
	s, pkg := t.s, t.pkg
	t.release()
	_ = s.endBatch(true) // the cork taken at dispatch; flush if it was the last
	if s.enter() {
		defer s.leave()
		q := s.gatherQueue()
		if q != nil {
			q.handlers.Add(1)
		}
		s.runMessage(pkg)
		if q != nil {
			q.handlers.Add(-1)
		}
	} else {
		s.recycle(pkg)
	}
}

// release returns the task to the pool; for a task that will not run, too.
func (t *unorderedTask) release() {
	t.s, t.pkg = nil, nil
	unorderedTasks.Put(t)
}

// gatherQueue is the send queue that counts s's running handlers (see
// sendQueue.gatherWith): a TCP or TLS session's; nil for other transports.
func (s *session) gatherQueue() *sendQueue {
	if t, ok := s.tr.(*tcpTransport); ok {
		return &t.out
	}
	return nil
}
