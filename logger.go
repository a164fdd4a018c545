package getty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// Logger is what getty logs through. Set your own with SetLogger; the
// default writes text lines through log/slog to stderr at WARN level, and
// getty never logs per packet.
type Logger interface {
	Info(args ...any)
	Warn(args ...any)
	Error(args ...any)
	Debug(args ...any)

	Infof(fmt string, args ...any)
	Warnf(fmt string, args ...any)
	Errorf(fmt string, args ...any)
	Debugf(fmt string, args ...any)
}

// LoggerLevel is a severity, numbered as upstream's (zap's) levels.
type LoggerLevel int8

// The levels; DPanic, Panic and Fatal log at error level and never panic or
// exit: a library must not take the process down.
const (
	LoggerLevelDebug LoggerLevel = iota - 1
	LoggerLevelInfo
	LoggerLevelWarn
	LoggerLevelError
	LoggerLevelDPanic
	LoggerLevelPanic
	LoggerLevelFatal
)

// ErrLoggerNotDefault is returned by SetLoggerLevel and
// SetLoggerCallerDisable when a custom logger was installed: getty cannot
// change the level of a logger it does not own.
var ErrLoggerNotDefault = errors.New("getty: the logger is not getty's default logger")

// The global logger is the one piece of package state upstream's API forces
// on us (SetLogger/GetLogger are package functions).
var logger atomic.Pointer[loggerBox]

type loggerBox struct{ Logger }

func init() {
	logger.Store(&loggerBox{newSlogLogger(slog.NewTextHandler(os.Stderr, nil), LoggerLevelWarn)})
}

// SetLogger replaces getty's logger. A nil logger silences getty.
func SetLogger(l Logger) {
	if l == nil {
		l = nopLogger{}
	}
	logger.Store(&loggerBox{l})
}

// GetLogger returns the current logger.
func GetLogger() Logger { return logger.Load().Logger }

func log() Logger { return logger.Load().Logger }

// SetLoggerLevel sets the level of the default logger, or of a logger made
// by NewSlogLogger. It returns ErrLoggerNotDefault for any other logger.
func SetLoggerLevel(level LoggerLevel) error {
	l, ok := GetLogger().(*SlogLogger)
	if !ok {
		return ErrLoggerNotDefault
	}
	l.level.Set(slogLevel(level))
	return nil
}

// SetLoggerCallerDisable stops the default logger from recording the
// caller's file and line. It returns ErrLoggerNotDefault for a custom logger.
func SetLoggerCallerDisable() error {
	l, ok := GetLogger().(*SlogLogger)
	if !ok {
		return ErrLoggerNotDefault
	}
	l.noCaller.Store(true)
	return nil
}

// SlogLogger adapts a log/slog Handler to Logger. It is the default logger,
// and NewSlogLogger makes one over your own handler so getty's lines join
// your structured logs.
type SlogLogger struct {
	handler  slog.Handler
	level    *slog.LevelVar
	noCaller atomic.Bool
}

// NewSlogLogger returns a Logger writing to h at the given minimum level
// (the handler's own level applies too).
func NewSlogLogger(h slog.Handler, level LoggerLevel) *SlogLogger {
	return newSlogLogger(h, level)
}

func newSlogLogger(h slog.Handler, level LoggerLevel) *SlogLogger {
	l := &SlogLogger{handler: h, level: new(slog.LevelVar)}
	l.level.Set(slogLevel(level))
	return l
}

func slogLevel(l LoggerLevel) slog.Level {
	switch {
	case l <= LoggerLevelDebug:
		return slog.LevelDebug
	case l == LoggerLevelInfo:
		return slog.LevelInfo
	case l == LoggerLevelWarn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// Enabled reports whether a line at level would be written; check it before
// building expensive arguments.
func (l *SlogLogger) Enabled(level LoggerLevel) bool {
	lv := slogLevel(level)
	return lv >= l.level.Level() && l.handler.Enabled(context.Background(), lv)
}

func (l *SlogLogger) log(lv slog.Level, msg func() string) {
	if lv < l.level.Level() || !l.handler.Enabled(context.Background(), lv) {
		return
	}
	var pc uintptr
	if !l.noCaller.Load() {
		var pcs [1]uintptr
		runtime.Callers(3, pcs[:]) // log, Info/Infof, caller
		pc = pcs[0]
	}
	r := slog.NewRecord(time.Now(), lv, msg(), pc)
	_ = l.handler.Handle(context.Background(), r)
}

// Info logs at info level.
func (l *SlogLogger) Info(args ...any) {
	l.log(slog.LevelInfo, func() string { return fmt.Sprint(args...) })
}

// Warn logs at warn level.
func (l *SlogLogger) Warn(args ...any) {
	l.log(slog.LevelWarn, func() string { return fmt.Sprint(args...) })
}

// Error logs at error level.
func (l *SlogLogger) Error(args ...any) {
	l.log(slog.LevelError, func() string { return fmt.Sprint(args...) })
}

// Debug logs at debug level.
func (l *SlogLogger) Debug(args ...any) {
	l.log(slog.LevelDebug, func() string { return fmt.Sprint(args...) })
}

// Infof logs a formatted line at info level.
func (l *SlogLogger) Infof(f string, args ...any) {
	l.log(slog.LevelInfo, func() string { return fmt.Sprintf(f, args...) })
}

// Warnf logs a formatted line at warn level.
func (l *SlogLogger) Warnf(f string, args ...any) {
	l.log(slog.LevelWarn, func() string { return fmt.Sprintf(f, args...) })
}

// Errorf logs a formatted line at error level.
func (l *SlogLogger) Errorf(f string, args ...any) {
	l.log(slog.LevelError, func() string { return fmt.Sprintf(f, args...) })
}

// Debugf logs a formatted line at debug level.
func (l *SlogLogger) Debugf(f string, args ...any) {
	l.log(slog.LevelDebug, func() string { return fmt.Sprintf(f, args...) })
}

type nopLogger struct{}

func (nopLogger) Info(...any)           {}
func (nopLogger) Warn(...any)           {}
func (nopLogger) Error(...any)          {}
func (nopLogger) Debug(...any)          {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Debugf(string, ...any) {}
