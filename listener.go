package getty

// NewSessionCallback configures a new session before it starts: set its
// codec (SetPkgHandler), listener, cron period and limits here. It runs on
// the session's reader goroutine before OnOpen. Returning an error closes
// the connection; neither OnOpen nor OnClose is called for it.
type NewSessionCallback func(Session) error

// EventListener receives a session's events. Embed BaseListener to
// implement only the callbacks you need.
//
// Callback order for one session:
//
//	new-session callback   (reader goroutine)
//	        |
//	      OnOpen           (reader goroutine; an error closes the socket, no OnClose)
//	        |
//	        +--> OnMessage ... OnMessage   (reader goroutine, or a pool worker
//	        |                               when a pool is configured; the
//	        |                               built-in ordered pool also runs
//	        |                               them on the reader while it has
//	        |                               a worker token free)
//	        +--> OnCron ... OnCron         (a cron executor goroutine, every
//	        |                               cron period; never overlaps itself)
//	        |
//	      OnError          (at most once, the error that ends the session)
//	        |
//	      OnClose          (exactly once, last)
//
// OnCron may run concurrently with OnMessage. With the built-in pool
// (WithServerWorkerPool) or ordering asked for, one session's OnMessage
// calls never overlap and run in arrival order, and OnClose runs after the
// last of them. With an unordered gost pool, OnMessage calls of one session
// may overlap and reorder (upstream's behaviour). No callback of a session
// is made after its OnClose.
//
// Every callback runs under recover: a panic closes that session with a
// *PanicError (reported to OnError, except a panic in OnError or OnClose,
// which is logged) and the process and other sessions carry on.
type EventListener interface {
	// OnOpen is called when the session is ready. Return an error to refuse
	// it: the connection is closed and OnClose is not called.
	OnOpen(Session) error

	// OnClose is called once when the session has closed.
	OnClose(Session)

	// OnError is called with the error that ends the session, before
	// OnClose. It is not called for an orderly close by either side.
	OnError(Session, error)

	// OnCron is called every cron period (Session.SetCronPeriod).
	OnCron(Session)

	// OnMessage is called for every package the Reader produces. The
	// package is what Reader.Read returned; see the Reader for how long it
	// stays valid.
	OnMessage(session Session, pkg any)
}

// BaseListener is an EventListener that does nothing. Embed it to write
// only the callbacks you need:
//
//	type echo struct{ getty.BaseListener }
//
//	func (echo) OnMessage(s getty.Session, pkg any) { s.WritePkg(pkg, 0) }
type BaseListener struct{}

// OnOpen accepts the session.
func (BaseListener) OnOpen(Session) error { return nil }

// OnClose does nothing.
func (BaseListener) OnClose(Session) {}

// OnError does nothing, and so leaves the error unhandled: getty logs it at
// WARN (rate-limited). Override OnError to handle or silence it.
func (BaseListener) OnError(s Session, _ error) { markUnhandled(s) }

// OnCron does nothing.
func (BaseListener) OnCron(Session) {}

// OnMessage does nothing.
func (BaseListener) OnMessage(Session, any) {}
