package getty

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Errors returned by sessions and endpoints. Match them with errors.Is: the
// library wraps them (and the underlying net errors) with the session they
// concern.
var (
	// ErrSessionClosed is returned by writes to a session that is closed or
	// closing. It wraps net.ErrClosed, so errors.Is(err, net.ErrClosed) also
	// holds.
	ErrSessionClosed = fmt.Errorf("getty: session closed: %w", netErrClosed)

	// ErrSessionBlocked is kept for upstream compatibility. getty never
	// returns it: a saturated session pushes back by making writers wait
	// (bounded by their timeout) instead of refusing them.
	ErrSessionBlocked = errors.New("getty: session blocked")

	// ErrNullPeerAddr is returned by a UDP endpoint write without a peer
	// address.
	ErrNullPeerAddr = errors.New("getty: peer address is nil")

	// ErrMsgTooLong reports a package whose declared or actual length is over
	// the session's maximum message length (see Session.SetMaxMsgLen).
	ErrMsgTooLong = errors.New("getty: message too long")

	// ErrBadLength reports a length field a built-in codec cannot accept,
	// such as one that comes out negative after its adjustment.
	ErrBadLength = errors.New("getty: invalid length field")

	// ErrReaderContract reports a Reader that broke the contract documented
	// on Reader: a package with a length <= 0, a length beyond the buffer,
	// or no progress on a full buffer.
	ErrReaderContract = errors.New("getty: reader broke its contract")

	// ErrPanic reports a panic recovered from a user callback (codec,
	// listener or new-session callback). The *PanicError that wraps it
	// carries the value and the stack.
	ErrPanic = errors.New("getty: panic in user callback")

	// ErrInternal reports a fault inside getty or a library it calls (a
	// recovered panic, say in a compressor). It comes back as an error on
	// the session it hit, which is closed, never as a panic in the caller.
	ErrInternal = errors.New("getty: internal fault")

	// ErrReadTimeout reports a peer that started a package and did not
	// finish it within the session's read timeout.
	ErrReadTimeout = errors.New("getty: read timeout in the middle of a package")

	// ErrWriterNil reports a write on a session that has no Writer.
	ErrWriterNil = errors.New("getty: session has no writer")

	// ErrServerClosed is returned by Serve once the server was closed
	// (Close or Shutdown).
	ErrServerClosed = errors.New("getty: server closed")

	// ErrClientClosed is returned by client calls after Close.
	ErrClientClosed = errors.New("getty: client closed")

	// ErrNoSession is returned when a client has no open session to offer.
	ErrNoSession = errors.New("getty: no open session")

	// ErrTaskPoolClosed ends a session whose task pool (WithServerTaskPool,
	// WithClientTaskPool) refused its messages because it was closed before
	// the session: the messages it refused were dropped unhandled.
	ErrTaskPoolClosed = errors.New("getty: task pool closed")
)

// SessionError describes a failure of one operation on one session, as
// net.OpError does for a socket. It is what OnError receives and what writes
// return; Unwrap exposes the cause for errors.Is and errors.As.
type SessionError struct {
	Op      string // "read", "write", "decode", "encode", "send", "dispatch", "ping", or "callback" for a panic in a listener callback
	Session string // the session's Stat-style token, {name:type:id:local<->remote}
	Err     error
}

// The operations a SessionError names. The strings show in error messages
// and callers may compare Op with them, so they never change.
const (
	opRead     = "read"
	opWrite    = "write"
	opDecode   = "decode"
	opEncode   = "encode"
	opSend     = "send"
	opDispatch = "dispatch"
	opPing     = "ping"
	opCallback = "callback"
)

// Error says which operation failed on which session, and why.
func (e *SessionError) Error() string {
	return "getty: " + e.Op + " " + e.Session + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *SessionError) Unwrap() error { return e.Err }

// PanicError carries a panic recovered from a user callback. It matches
// ErrPanic with errors.Is.
type PanicError struct {
	Callback string // which callback panicked, e.g. "OnMessage"
	Value    any    // the value passed to panic
	Stack    []byte // the panicking goroutine's stack
}

// Error gives the callback, the panic value and the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("getty: panic in %s: %v\n%s", e.Callback, e.Value, e.Stack)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value when it is an error, so errors.Is can see
// through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// newPanicError is the one place a *PanicError is made: called while the
// panic is being recovered, so the stack is the panicking goroutine's.
func newPanicError(callback string, v any) *PanicError {
	return &PanicError{Callback: callback, Value: v, Stack: debug.Stack()}
}

// recoverAs turns a panic in callback into a *PanicError in *err. It is the
// one way getty recovers a user callback's panic, and must be deferred
// directly (recover only works there).
func recoverAs(callback string, err *error) {
	if v := recover(); v != nil {
		*err = newPanicError(callback, v)
	}
}

// protect calls f, a user callback with no result, and returns its panic
// as a *PanicError (nil when f returned).
func protect(callback string, f func()) (err error) {
	defer recoverAs(callback, &err)
	f()
	return nil
}

// internalFault turns a panic recovered in library code into an error that
// matches ErrInternal and keeps the value and the stack for the log.
func internalFault(where string, v any) error {
	return fmt.Errorf("%w in %s: %v\n%s", ErrInternal, where, v, debug.Stack())
}

// recoverFault, deferred, turns a panic in library code (getty's own, or a
// library it calls, such as a compressor) into an error in *err.
func recoverFault(where string, err *error) {
	if v := recover(); v != nil {
		*err = internalFault(where, v)
	}
}
