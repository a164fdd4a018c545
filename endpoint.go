package getty

import (
	"runtime"
	"sync"
	"sync/atomic"

	gxsync "github.com/dubbogo/gost/sync"

	"github.com/getty-go/getty/internal/dispatch"
)

// EndPoint is what servers and clients share.
type EndPoint interface {
	// ID is unique among the endpoints of the process.
	ID() EndPointID
	EndPointType() EndPointType
	// RunEventLoop starts the endpoint; newSession configures each session
	// it makes. See the constructors for what it does per kind.
	RunEventLoop(newSession NewSessionCallback)
	IsClosed() bool
	// Close closes the endpoint and all its sessions, and returns when
	// every goroutine it started is gone and every OnClose has run.
	Close()
	// GetTaskPool returns the gost pool given by WithServerTaskPool or
	// WithClientTaskPool, or nil.
	GetTaskPool() gxsync.GenericTaskPool
}

var endpointID atomic.Int32

// endpoint is the core of every server and client: it owns the sessions,
// their reader goroutines, the dispatch executor and the cron runners.
type endpoint struct {
	id          EndPointID
	typ         EndPointType
	self        EndPoint // the server or client, for Session.EndPoint
	sessionName string

	tPool       gxsync.GenericTaskPool
	pool        *dispatch.Pool // built-in, owned
	executor    dispatch.Executor
	mailboxes   *dispatch.Mailboxes // what the sessions' mailboxes share, in ordered mode
	ordered     bool
	mailboxSize int
	crons       cronRunners

	// onOpen and onEnd, when set, learn when a session has opened and
	// when it has ended (after OnClose); the client keeps its pool with them.
	onOpen func(*session)
	onEnd  func(*session)
	// onConfigError, when set, learns of a session refused for a
	// configuration mistake (ErrNoCodec); the client reports it.
	onConfigError func(error)

	elog epLog // logger, warn-once keys, rate limit (logattrs.go)

	counters endpointCounters

	mu       sync.Mutex
	sessions map[*session]struct{}
	wg       sync.WaitGroup // reader goroutines
	closed   atomic.Bool
	done     chan struct{}
}

func newEndpoint(self EndPoint, typ EndPointType, name string, dc dispatchConfig) *endpoint {
	e := &endpoint{
		id:          endpointID.Add(1),
		typ:         typ,
		self:        self,
		sessionName: name,
		tPool:       dc.tPool,
		mailboxSize: dc.mailboxSize,
		sessions:    make(map[*session]struct{}),
		done:        make(chan struct{}),
	}
	if e.mailboxSize <= 0 {
		e.mailboxSize = defaultMailboxSize
	}
	switch {
	case dc.workers != 0:
		n := dc.workers
		if n < 0 {
			n = runtime.GOMAXPROCS(0)
		}
		e.ordered = !dc.orderedSet || dc.ordered
		if e.ordered {
			e.pool = dispatch.NewPool(n, 0)
		} else {
			// One queue served by every worker: a handler that blocks
			// holds its worker only, not the messages queued behind it.
			e.pool = dispatch.NewPoolWithQueues(n, 1, max(dispatch.DefaultQueueLen, 4*n))
		}
		e.executor = e.pool
	case dc.tPool != nil:
		e.executor = dispatch.NewGostExecutor(dc.tPool)
		e.ordered = dc.ordered
	}
	if e.executor != nil && e.ordered {
		e.mailboxes = dispatch.NewMailboxes(e.executor, e.mailboxSize, 0)
	}
	e.crons.init(max(2, runtime.GOMAXPROCS(0)))
	return e
}

func (e *endpoint) ID() EndPointID                      { return e.id }
func (e *endpoint) EndPointType() EndPointType          { return e.typ }
func (e *endpoint) IsClosed() bool                      { return e.closed.Load() }
func (e *endpoint) GetTaskPool() gxsync.GenericTaskPool { return e.tPool }

// add registers a new session; false once the endpoint is closed.
func (e *endpoint) add(s *session) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return false
	}
	e.sessions[s] = struct{}{}
	e.wg.Add(1)
	return true
}

func (e *endpoint) remove(s *session) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
	e.wg.Done()
}

func (e *endpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}

// serveSession runs a session on the calling goroutine until it ends. The
// connection is closed without callbacks if the endpoint is closed.
func (e *endpoint) serveSession(tr transport, cb NewSessionCallback) *session {
	s := newSession(e, tr)
	if !e.add(s) {
		tr.closeNow(-1)
		return s
	}
	defer e.remove(s)
	s.run(cb)
	return s
}

// startSession runs a session on a new reader goroutine owned by the
// endpoint.
func (e *endpoint) startSession(tr transport, cb NewSessionCallback) {
	s := newSession(e, tr)
	if !e.add(s) {
		tr.closeNow(-1)
		return
	}
	// The goroutine's start closure holds s and cb only (24 bytes; the
	// endpoint is s.ep): one allocation per accept, garbage once the
	// goroutine runs.
	go s.serve(cb)
}

// serve is a started session's reader goroutine.
func (s *session) serve(cb NewSessionCallback) {
	defer s.ep.remove(s)
	s.run(cb)
}

// markClosed flips the endpoint to closed; false if it already was.
func (e *endpoint) markClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return false
	}
	e.closed.Store(true)
	close(e.done)
	return true
}

func (e *endpoint) snapshot() []*session {
	e.mu.Lock()
	defer e.mu.Unlock()
	all := make([]*session, 0, len(e.sessions))
	for s := range e.sessions {
		all = append(all, s)
	}
	return all
}

// closeSessions closes every session the endpoint holds. Each close may
// wait up to its wait time to flush to a slow peer, so they run in
// parallel (a bounded number at a time) and one stuck peer does not hold
// up the rest.
func (e *endpoint) closeSessions() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, s := range e.snapshot() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.Close()
		}()
	}
	wg.Wait()
}

// abortSessions closes every session's socket at once, dropping what
// was not flushed yet; flushes in progress fail and return.
func (e *endpoint) abortSessions() {
	for _, s := range e.snapshot() {
		s.CloseConn(-1)
	}
}

// closeAndWait closes every session and waits until the goroutines of the
// endpoint are gone (reader goroutines, and those of also, the accept loop
// or the reconnectors), then stops what it owns.
func (e *endpoint) closeAndWait(also *sync.WaitGroup) {
	e.closeSessions()
	if also != nil {
		also.Wait()
	}
	e.wg.Wait()
	e.stopRunners()
}

// stopRunners stops what the endpoint owns once its sessions are gone.
func (e *endpoint) stopRunners() {
	e.crons.stop()
	if e.pool != nil {
		e.pool.Close()
	}
}
