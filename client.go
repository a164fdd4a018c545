package getty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Client keeps WithConnectionNumber sessions open to one server and
// replaces lost ones. There is no polling goroutine: each session's reader
// goroutine, once the session has ended and its OnClose has run, becomes
// that session's reconnector (capped exponential backoff with jitter), and
// once a dial succeeds it becomes the new session's reader. So the client
// runs exactly one goroutine per wanted session.
type Client interface {
	EndPoint
	// Start starts the client and returns at once; sessions open in the
	// background.
	Start(newSession NewSessionCallback)
	// RunEventLoopContext starts the client and waits until every wanted
	// session has opened once, the client is closed, or ctx ends. On ctx's
	// end it returns an error wrapping both ctx.Err() and the last dial
	// error (errors.Is(err, syscall.ECONNREFUSED) and errors.As with a
	// *net.OpError work) and the client keeps dialing; Close it to stop.
	// A configuration mistake (a session without a codec: ErrNoCodec; no
	// server address; a TLS setup that cannot be built) is returned at
	// once rather than when ctx ends; the client keeps dialing in the
	// background until Close, as after ctx's end.
	RunEventLoopContext(ctx context.Context, newSession NewSessionCallback) error
	// Session returns an open session, round-robin over the open ones, or
	// ErrNoSession. A session is offered once its OnOpen has returned, so
	// OnOpen may run a moment before Session returns it.
	Session() (Session, error)
	// Sessions returns the open sessions.
	Sessions() []Session
}

// ErrReconnectGaveUp is reported (to WithClientErrorHandler and the log)
// when a session could not be re-established within the attempts allowed
// by WithReconnectAttempts; that session slot stops dialing.
var ErrReconnectGaveUp = errors.New("getty: gave up reconnecting")

type client struct {
	*endpoint
	opts ClientOptions

	// dial opens one connection; per transport (TCP, TLS, WebSocket, UDP).
	dial func(ctx context.Context) (transport, error)

	ctx    context.Context // cancelled by Close: aborts dials and backoffs
	cancel context.CancelFunc

	startOnce sync.Once
	slots     sync.WaitGroup

	mu      sync.Mutex
	live    []*session
	rr      atomic.Uint32
	ready   chan struct{} // closed when every slot has opened once
	opened  int
	lastErr error
	cfg     configErr // a configuration mistake ends RunEventLoopContext's wait
}

func newClient(typ EndPointType, name string, opts []ClientOption) *client {
	c := &client{ready: make(chan struct{})}
	for _, opt := range opts {
		if opt != nil {
			opt(&c.opts)
		}
	}
	o := &c.opts
	if o.number <= 0 {
		o.number = 1
	}
	if o.reconnectInterval <= 0 {
		o.reconnectInterval = int(defaultReconnectInterval)
	}
	if o.maxReconnectInterval < time.Duration(o.reconnectInterval) {
		o.maxReconnectInterval = max(defaultMaxReconnectInterval, time.Duration(o.reconnectInterval))
	}
	if o.dialTimeout <= 0 {
		o.dialTimeout = defaultDialTimeout
	}
	c.endpoint = newEndpoint(c, typ, name, o.dispatchConfig)
	c.endpoint.onOpen = c.sessionOpened
	c.endpoint.onEnd = c.sessionEnded
	c.endpoint.elog.logger = o.logger
	c.endpoint.onConfigError = c.cfg.set
	c.checkUnits(o.reconnectInterval)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// RunEventLoop starts the client and returns once every wanted session
// has opened once or the client is closed, as upstream. With the server
// down it waits; RunEventLoopContext bounds the wait. A configuration
// mistake (ErrNoCodec, no address, a TLS setup that cannot be built) is
// logged at WARN and ends the wait.
func (c *client) RunEventLoop(newSession NewSessionCallback) {
	_ = c.RunEventLoopContext(context.Background(), newSession)
}

func (c *client) Start(newSession NewSessionCallback) {
	c.startOnce.Do(func() {
		if c.closed.Load() {
			return
		}
		for i := 0; i < c.opts.number; i++ {
			c.slots.Add(1)
			go c.slot(newSession)
		}
	})
}

func (c *client) RunEventLoopContext(ctx context.Context, newSession NewSessionCallback) error {
	c.Start(newSession)
	select {
	case <-c.ready:
		return nil
	case <-c.done:
		return ErrClientClosed
	case <-c.cfg.wait():
		return fmt.Errorf("%w (%s client of %s)", c.cfg.get(), c.typ, c.opts.addr)
	case <-ctx.Done():
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		if last != nil {
			// Both wrapped: errors.Is(err, context.DeadlineExceeded),
			// errors.As(err, **net.OpError), errors.Is(err, syscall.ECONNREFUSED).
			return fmt.Errorf("%w (last dial error: %w)", ctx.Err(), last)
		}
		return ctx.Err()
	}
}

// slot keeps one session alive: dial, serve it on this goroutine, back
// off, dial again, until the client closes or the attempts run out.
func (c *client) slot(newSession NewSessionCallback) {
	defer c.slots.Done()
	failures := 0
	for !c.closed.Load() {
		tr, err := c.dial(c.ctx)
		if err == nil {
			s := c.serveSession(tr, newSession)
			if s.flags.has(flagOpened) {
				failures = 0
			} else {
				// Refused by the callback or OnOpen: back off like a
				// failed dial so a refusing callback cannot make a hot loop.
				failures++
				err = errors.New("getty: session refused by the new-session callback or OnOpen")
			}
		} else {
			failures++
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
			c.noteDialError(err)
		}
		if c.closed.Load() {
			return
		}
		if err != nil && c.opts.maxReconnectAttempts > 0 && failures >= c.opts.maxReconnectAttempts {
			c.giveUp(fmt.Errorf("%w after %d attempts to %s: %w", ErrReconnectGaveUp, failures, c.opts.addr, err))
			return
		}
		if !c.sleep(c.backoff(failures)) {
			return
		}
	}
}

// backoff is the wait before the next dial: the reconnect interval after a
// session that ran, doubling per failure up to the cap, with jitter so a
// restarted server is not hit by every client at once.
func (c *client) backoff(failures int) time.Duration {
	base := time.Duration(c.opts.reconnectInterval)
	d := base
	for i := 1; i < failures && d < c.opts.maxReconnectInterval; i++ {
		d *= 2
	}
	d = min(d, c.opts.maxReconnectInterval)
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits d or until Close; false means closed.
func (c *client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

func (c *client) giveUp(err error) {
	c.log(slog.LevelError, "getty: client gave up reconnecting", slog.String("addr", c.opts.addr), slog.String(logKeyError, err.Error()))
	if h := c.opts.errorHandler; h != nil {
		if perr := protect("client error handler", func() { h(c, err) }); perr != nil {
			c.log(slog.LevelError, "getty: panic in the client error handler", errAttrs(perr)...)
		}
	}
}

func (c *client) sessionOpened(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = append(c.live, s)
	c.opened++
	if c.opened == c.opts.number {
		close(c.ready)
	}
}

// sessionEnded removes exactly s: a late end of an old session never
// touches the session that replaced it.
func (c *client) sessionEnded(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.live {
		if x == s {
			c.live = append(c.live[:i], c.live[i+1:]...)
			return
		}
	}
}

func (c *client) Session() (Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.live)
	start := int(c.rr.Add(1))
	for i := 0; i < n; i++ {
		s := c.live[(start+i)%n]
		if !s.IsClosed() {
			return s, nil
		}
	}
	if c.closed.Load() {
		return nil, ErrClientClosed
	}
	return nil, ErrNoSession
}

func (c *client) Sessions() []Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Session, 0, len(c.live))
	for _, s := range c.live {
		if !s.IsClosed() {
			out = append(out, s)
		}
	}
	return out
}

// Close stops every reconnector at once (backoffs and dials are
// cancelled), closes the sessions and returns when all goroutines are gone.
func (c *client) Close() {
	c.markClosed()
	c.cancel()
	c.closeAndWait(&c.slots)
}
