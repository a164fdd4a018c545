package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	getty "github.com/getty-go/getty"
)

// rpcClient makes calls over a getty client's pool of sessions. It is also
// the sessions' EventListener: replies come back through OnMessage.
type rpcClient struct {
	getty.BaseListener
	cli    getty.Client
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*pendingCall

	// onLate is told about replies that arrive after their caller gave up.
	onLate func(*message)
}

type pendingCall struct {
	method  string
	session uint32 // the session the request went out on
	done    chan result
}

type result struct {
	msg *message
	err error
}

// errRemote marks an error the server returned.
var errRemote = errors.New("rpc: remote error")

// call sends method(body) on an open session and waits for the reply, or
// until ctx ends. Give ctx a deadline: that is the call's timeout.
func (c *rpcClient) call(ctx context.Context, method string, body []byte) ([]byte, error) {
	s, err := c.cli.Session() // round-robin over the open sessions
	if err != nil {
		return nil, err
	}
	id := c.nextID.Add(1)
	pc := &pendingCall{method: method, session: s.ID(), done: make(chan result, 1)}
	c.mu.Lock()
	c.pending[id] = pc
	c.mu.Unlock()
	defer c.forget(id) // a no-op once the reply took it

	timeout := time.Second
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, fmt.Errorf("rpc %s #%d: %w", method, id, context.DeadlineExceeded)
		}
	}
	if _, _, err := s.WritePkg(&message{ID: id, Kind: kindRequest, Method: method, Body: body}, timeout); err != nil {
		return nil, fmt.Errorf("rpc %s #%d on session %d: %w", method, id, s.ID(), err)
	}
	select {
	case r := <-pc.done:
		switch {
		case r.err != nil:
			return nil, fmt.Errorf("rpc %s #%d on session %d: %w", method, id, s.ID(), r.err)
		case r.msg.Kind == kindError:
			return nil, fmt.Errorf("rpc %s #%d: %w: %s", method, id, errRemote, r.msg.Body)
		}
		return r.msg.Body, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("rpc %s #%d on session %d: %w", method, id, s.ID(), ctx.Err())
	}
}

// forget removes call id if it is still pending.
func (c *rpcClient) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// OnMessage hands a reply to its caller, or discards it when the caller is
// gone (timed out or cancelled): nobody waits for it, and nothing leaks.
func (c *rpcClient) OnMessage(_ getty.Session, pkg any) {
	m := pkg.(*message)
	c.mu.Lock()
	pc, ok := c.pending[m.ID]
	delete(c.pending, m.ID)
	c.mu.Unlock()
	if !ok {
		if c.onLate != nil {
			c.onLate(m)
		}
		return
	}
	pc.done <- result{msg: m} // buffered: never blocks
}

// OnClose fails the calls still waiting on a session that closed: their
// replies cannot come any more.
func (c *rpcClient) OnClose(s getty.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, pc := range c.pending {
		if pc.session == s.ID() {
			delete(c.pending, id)
			pc.done <- result{err: getty.ErrSessionClosed}
		}
	}
}

// inFlight returns how many calls are waiting for a reply.
func (c *rpcClient) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
