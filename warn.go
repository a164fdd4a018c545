package getty

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Mistakes that used to fail in silence: a session set up without a codec,
// an error that ended a session with no OnError to see it, a value almost
// certainly given in the wrong unit. Each is logged at WARN, the default
// level: configuration mistakes once per endpoint, unhandled errors at most
// once a second per endpoint.

// ErrNoCodec reports a session whose new-session callback set no Reader
// (SetPkgHandler or SetReader), or a nil new-session callback. The session
// cannot read, so it is closed before OnOpen, and the mistake is logged at
// WARN once per endpoint. A client's RunEventLoopContext returns an error
// matching it at once, and a UDP endpoint's Serve returns it. A TCP or
// WebSocket server's Serve keeps serving (a callback may set up sessions
// differently, and one mistake must not stop the others), so watch the log.
var ErrNoCodec = errors.New("getty: session has no codec: call SetPkgHandler (or SetReader) in the new-session callback")

// isConfigError tells a configuration mistake, which no retry can fix,
// from a refusal the user chose or a network failure.
func isConfigError(err error) bool {
	var ce *configError
	return errors.Is(err, ErrNoCodec) || errors.As(err, &ce)
}

// configError marks a dial error that comes from the client's own settings
// (no address, a TLS or WebSocket setup that cannot be built), not from the
// network: redialing cannot fix it.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func asConfigError(err error) error {
	if err == nil {
		return nil
	}
	return &configError{err}
}

// noteDialError reports a dial that failed for a configuration mistake:
// logged at WARN once per client, and returned by RunEventLoopContext at
// once. The client keeps redialing (with backoff) until Close, as always.
func (c *client) noteDialError(err error) {
	if c.opts.addr == "" && !isConfigError(err) {
		err = asConfigError(fmt.Errorf("getty: no server address (WithServerAddress): %w", err))
	}
	if !isConfigError(err) {
		return
	}
	c.warnOnce("config:dial", "getty: client cannot dial: configuration mistake (logged once per endpoint)",
		slog.String("addr", c.opts.addr), slog.String(logKeyError, err.Error()))
	c.cfg.set(err)
}

// setupFailed reports why a session did not open: a configuration mistake
// at WARN once per endpoint, a panic at ERROR with its stack, a refusal the
// user chose (the callback's or OnOpen's error) at INFO.
func (s *session) setupFailed(stage string, err error) {
	switch {
	case isConfigError(err):
		s.ep.warnOnce("config:"+stage, "getty: session closed before OnOpen: configuration mistake (logged once per endpoint)",
			append(s.sessionAttrs(), slog.String(logKeyError, err.Error()))...)
		if s.ep != nil && s.ep.onConfigError != nil {
			s.ep.onConfigError(err)
		}
	case errors.Is(err, ErrPanic):
		s.log(slog.LevelError, "getty: session closed before OnOpen: panic in "+stage, err)
	default:
		s.log(slog.LevelInfo, "getty: session closed before OnOpen: "+stage, err)
	}
}

// configErr holds a client's first configuration mistake for
// RunEventLoopContext, which returns it at once rather than waiting for
// sessions that can never open.
type configErr struct {
	mu  sync.Mutex
	ch  chan struct{} // closed when err is set
	err error
}

func (c *configErr) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *configErr) set(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	close(c.ch)
}

func (c *configErr) get() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// reportEnd tells the listener about the error that ended the session and,
// when it did not handle it (it left OnError to BaseListener), logs it at
// WARN, rate-limited per endpoint. A recovered panic is logged at ERROR
// with its stack whatever OnError does, as upstream.
func (s *session) reportEnd(err error) {
	if errors.Is(err, ErrPanic) {
		s.log(slog.LevelError, "getty: session ended by a panic", err)
	}
	s.flags.set(flagUnhandled, false)
	s.callback("OnError", func() { s.listener.OnError(s, err) })
	if !s.flags.has(flagUnhandled) || errors.Is(err, ErrPanic) {
		return
	}
	if s.ep == nil {
		s.log(slog.LevelWarn, "getty: session ended by an error no OnError handled", err)
		return
	}
	ok, held := s.ep.rateOK(time.Now())
	if !ok {
		return
	}
	var extra []slog.Attr
	if held > 0 {
		extra = append(extra, slog.Int("suppressed", held))
	}
	s.log(slog.LevelWarn, "getty: session ended by an error no OnError handled (override OnError to handle it; this line is rate-limited)", err, extra...)
}

// markUnhandled is called by BaseListener.OnError: nobody looked at err.
func markUnhandled(s Session) {
	if ss, ok := s.(*session); ok {
		ss.flags.set(flagUnhandled, true)
	}
}

// maxSaneCronMs is a day: a longer cron period was almost certainly given
// in the wrong unit (SetCronPeriod(int(time.Second)) is 11.6 days).
const maxSaneCronMs = 24 * 60 * 60 * 1000

// checkCronPeriod warns, once per endpoint, about a cron period over a day.
func (s *session) checkCronPeriod(ms int) {
	if ms <= maxSaneCronMs {
		return
	}
	d := time.Duration(ms) * time.Millisecond
	s.ep.warnOnce("cron-unit", "getty: SetCronPeriod takes milliseconds; a period over a day is probably in the wrong unit",
		slog.Int("period_ms", ms), slog.String("taken_as", fmt.Sprintf("%v (%.1f days)", d, d.Hours()/24)),
		slog.String("if_meant_ns", time.Duration(ms).String()))
}

// checkUnits warns about client options almost certainly given in the
// wrong unit.
func (c *client) checkUnits(given int) {
	if given > 0 && given < int(time.Microsecond) {
		c.warnOnce("reconnect-unit", "getty: WithReconnectInterval takes nanoseconds; an interval under a microsecond is probably in the wrong unit",
			slog.Int("interval_ns", given), slog.String("taken_as", time.Duration(given).String()),
			slog.String("if_meant_ms", (time.Duration(given)*time.Millisecond).String()))
	}
}
