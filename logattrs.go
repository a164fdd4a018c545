package getty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Structured logging. An endpoint logs through its own *slog.Logger when
// WithServerLogger or WithClientLogger gave one, and otherwise through the
// process-wide Logger (SetLogger), as upstream. Lines carry attributes
// (session_id, session, remote_addr, endpoint, error, stack) rather than
// preformatted text; a Logger that is not getty's SlogLogger receives them
// formatted as key=value after the message. Nothing here runs per packet.

// Attribute keys getty's log lines use.
const (
	logKeyEndpoint   = "endpoint"
	logKeySessionID  = "session_id"
	logKeySession    = "session"
	logKeyRemoteAddr = "remote_addr"
	logKeyError      = "error"
	logKeyStack      = "stack"
)

// epLog is an endpoint's logging state: its logger, the warnings it has
// given once, and the rate limit on unhandled-error lines.
type epLog struct {
	logger *slog.Logger // nil: the global Logger

	onceMu sync.Mutex
	once   map[string]struct{}

	rateMu     sync.Mutex
	rateNext   time.Time // no unhandled-error line before this
	suppressed int       // lines held back since the last one
}

// unhandledEvery is the least time between two "ended by an unhandled
// error" lines of one endpoint; the lines held back are counted in the next.
const unhandledEvery = time.Second

// attrs names the endpoint in a log line.
func (e *endpoint) attrs() slog.Attr {
	return slog.String(logKeyEndpoint, fmt.Sprintf("%s#%d", e.typ, e.id))
}

// log writes one line through the endpoint's logger. e may be nil (a
// session made outside an endpoint, in tests).
func (e *endpoint) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if e != nil {
		attrs = append([]slog.Attr{e.attrs()}, attrs...)
		if l := e.elog.logger; l != nil {
			if l.Enabled(context.Background(), level) {
				l.LogAttrs(context.Background(), level, msg, attrs...)
			}
			return
		}
	}
	globalLog(level, msg, attrs)
}

// logEnabled reports whether a line at level would be written, so callers
// can skip building costly attributes.
func (e *endpoint) logEnabled(level slog.Level) bool {
	if e != nil && e.elog.logger != nil {
		return e.elog.logger.Enabled(context.Background(), level)
	}
	switch l := log().(type) {
	case *SlogLogger:
		return level >= l.level.Level() && l.handler.Enabled(context.Background(), level)
	case nopLogger:
		return false
	}
	return true
}

// warnOnce logs a warning the first time key comes up on this endpoint;
// it reports whether it logged.
func (e *endpoint) warnOnce(key, msg string, attrs ...slog.Attr) bool {
	if e == nil {
		globalLog(slog.LevelWarn, msg, attrs)
		return true
	}
	e.elog.onceMu.Lock()
	_, seen := e.elog.once[key]
	if !seen {
		if e.elog.once == nil {
			e.elog.once = make(map[string]struct{})
		}
		e.elog.once[key] = struct{}{}
	}
	e.elog.onceMu.Unlock()
	if !seen {
		e.log(slog.LevelWarn, msg, attrs...)
	}
	return !seen
}

// rateOK reports whether a rate-limited line may be written now, and how
// many were held back since the last one.
func (e *endpoint) rateOK(now time.Time) (ok bool, suppressed int) {
	e.elog.rateMu.Lock()
	defer e.elog.rateMu.Unlock()
	if now.Before(e.elog.rateNext) {
		e.elog.suppressed++
		return false, 0
	}
	e.elog.rateNext = now.Add(unhandledEvery)
	suppressed, e.elog.suppressed = e.elog.suppressed, 0
	return true, suppressed
}

// globalLog writes through the process-wide Logger: with attributes when it
// is getty's SlogLogger, as "msg key=value ..." otherwise.
func globalLog(level slog.Level, msg string, attrs []slog.Attr) {
	switch l := log().(type) {
	case nopLogger:
		return
	case *SlogLogger:
		if level < l.level.Level() || !l.handler.Enabled(context.Background(), level) {
			return
		}
		var pc uintptr
		if !l.noCaller.Load() {
			var pcs [1]uintptr
			runtime.Callers(4, pcs[:]) // Callers, globalLog, endpoint.log, caller
			pc = pcs[0]
		}
		r := slog.NewRecord(time.Now(), level, msg, pc)
		r.AddAttrs(attrs...)
		_ = l.handler.Handle(context.Background(), r)
	default:
		line := formatLine(msg, attrs)
		switch {
		case level >= slog.LevelError:
			l.Error(line)
		case level >= slog.LevelWarn:
			l.Warn(line)
		case level >= slog.LevelInfo:
			l.Info(line)
		default:
			l.Debug(line)
		}
	}
}

// formatLine renders attributes for a printf-style Logger.
func formatLine(msg string, attrs []slog.Attr) string {
	var b strings.Builder
	b.WriteString(msg)
	for _, a := range attrs {
		if a.Key == logKeyStack {
			continue // appended last, on its own lines
		}
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
	}
	for _, a := range attrs {
		if a.Key == logKeyStack {
			b.WriteString("\n")
			b.WriteString(a.Value.String())
		}
	}
	return b.String()
}

// sessionAttrs names a session in a log line.
func (s *session) sessionAttrs() []slog.Attr {
	return []slog.Attr{
		slog.Uint64(logKeySessionID, uint64(s.id)),
		slog.String(logKeySession, *s.name.Load()),
		slog.String(logKeyRemoteAddr, s.RemoteAddr()),
	}
}

// log writes one line about this session, with its attributes and, for
// err, the error (and a panic's stack as its own attribute).
func (s *session) debugEnabled() bool { return s.ep.logEnabled(slog.LevelDebug) }

func (s *session) log(level slog.Level, msg string, err error, attrs ...slog.Attr) {
	if !s.ep.logEnabled(level) {
		return
	}
	all := append(s.sessionAttrs(), errAttrs(err)...)
	s.ep.log(level, msg, append(all, attrs...)...)
}

// errAttrs is the error attribute, with a recovered panic's value in the
// error and its stack in a separate attribute.
func errAttrs(err error) []slog.Attr {
	if err == nil {
		return nil
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return []slog.Attr{
			slog.String(logKeyError, fmt.Sprintf("panic in %s: %v", pe.Callback, pe.Value)),
			slog.String(logKeyStack, string(pe.Stack)),
		}
	}
	return []slog.Attr{slog.String(logKeyError, err.Error())}
}
