// Package dropin drives getty the way its real users, apache/dubbo-go and
// apache/seata-go, drive upstream dubbo-getty: a request/response protocol
// over a client pool, pending calls awaited with gost's gxtime.After,
// heartbeats from OnCron with a miss counter in session attributes, gost
// task pools, zip compression with large payloads, TLS through the config
// builders, and the user's own logger. Everything here uses only upstream's
// API, so a regression that would break those users fails `make test` here.
package dropin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gxtime "github.com/dubbogo/gost/time"

	getty "github.com/getty-go/getty"
)

// The wire format, in the spirit of dubbo's: magic, kind, request id, body
// length, body.
const (
	magic      = 0xdabb
	headerLen  = 2 + 1 + 8 + 4
	maxMsgLen  = 16 << 20
	cronPeriod = 50 // ms, upstream's unit

	kindRequest byte = iota + 1
	kindResponse
	kindHeartbeat
	kindHeartbeatReply
)

// Session attribute keys, as dubbo-go keeps its per-session state.
const (
	attrMisses = "heartbeat-misses"
	attrMuted  = "mute-heartbeats" // server: stop answering heartbeats
)

type packet struct {
	kind byte
	id   uint64
	body []byte
}

var errBadMagic = errors.New("dropin: bad magic")

// codec is the user's ReadWriter, written against upstream's contract: a
// short buffer yields (nil, 0, nil), a whole package (pkg, its length, nil).
type codec struct{}

func (codec) Read(_ getty.Session, data []byte) (interface{}, int, error) {
	if len(data) < headerLen {
		return nil, 0, nil
	}
	if binary.BigEndian.Uint16(data) != magic {
		return nil, 0, errBadMagic
	}
	n := int(binary.BigEndian.Uint32(data[11:]))
	if n > maxMsgLen {
		return nil, 0, fmt.Errorf("dropin: body of %d bytes", n)
	}
	if len(data) < headerLen+n {
		return nil, 0, nil
	}
	p := &packet{kind: data[2], id: binary.BigEndian.Uint64(data[3:]), body: append([]byte(nil), data[headerLen:headerLen+n]...)}
	return p, headerLen + n, nil
}

func (codec) Write(_ getty.Session, pkg interface{}) ([]byte, error) {
	p, ok := pkg.(*packet)
	if !ok {
		return nil, fmt.Errorf("dropin: cannot encode %T", pkg)
	}
	b := make([]byte, headerLen+len(p.body))
	binary.BigEndian.PutUint16(b, magic)
	b[2] = p.kind
	binary.BigEndian.PutUint64(b[3:], p.id)
	binary.BigEndian.PutUint32(b[11:], uint32(len(p.body)))
	copy(b[headerLen:], p.body)
	return b, nil
}

// serverHandler answers requests with the body reversed, and heartbeats
// unless the session was muted.
type serverHandler struct {
	opens  atomic.Int64
	closes atomic.Int64
	calls  atomic.Int64
	delay  time.Duration // before each reply, to keep calls in flight

	// muteNext, when set, makes the next request mute its session's
	// heartbeats and is closed once that is done.
	muteNext chan struct{}
}

func (h *serverHandler) OnOpen(getty.Session) error   { h.opens.Add(1); return nil }
func (h *serverHandler) OnClose(getty.Session)        { h.closes.Add(1) }
func (h *serverHandler) OnError(getty.Session, error) {}
func (h *serverHandler) OnCron(getty.Session)         {}
func (h *serverHandler) OnMessage(s getty.Session, pkg interface{}) {
	p := pkg.(*packet)
	switch p.kind {
	case kindHeartbeat:
		if muted, _ := s.GetAttribute(attrMuted).(bool); !muted {
			_, _, _ = s.WritePkg(&packet{kind: kindHeartbeatReply, id: p.id}, 0)
		}
	case kindRequest:
		if string(p.body) == "mute" && h.muteNext != nil {
			s.SetAttribute(attrMuted, true)
			defer close(h.muteNext)
		}
		h.calls.Add(1)
		if h.delay > 0 {
			time.Sleep(h.delay)
		}
		body := make([]byte, len(p.body))
		for i, c := range p.body {
			body[len(body)-1-i] = c
		}
		_, _, _ = s.WritePkg(&packet{kind: kindResponse, id: p.id, body: body}, 0)
	}
}

// rpcClient is the user's client: it keeps the sessions getty opens (as
// dubbo-go's gettyRPCClient does from OnOpen), a pending-call map keyed by
// request id, and the heartbeat state.
type rpcClient struct {
	nextID atomic.Uint64

	mu       sync.Mutex
	sessions []getty.Session
	pending  map[uint64]chan *packet

	maxMisses int // heartbeats in a row without a reply before Close

	opens     atomic.Int64
	heartbeat atomic.Int64 // replies seen
	missClose atomic.Int64 // sessions closed for missed heartbeats
}

func newRPCClient(maxMisses int) *rpcClient {
	return &rpcClient{pending: make(map[uint64]chan *packet), maxMisses: maxMisses}
}

var (
	errNoSession = errors.New("dropin: no session")
	errTimeout   = errors.New("dropin: call timed out")
)

// call sends one request and waits for its reply with gxtime.After, as
// dubbo-go's and seata-go's synchronous calls do.
func (c *rpcClient) call(body []byte, timeout time.Duration) ([]byte, error) {
	s := c.session()
	if s == nil {
		return nil, errNoSession
	}
	id := c.nextID.Add(1)
	ch := make(chan *packet, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if _, _, err := s.WritePkg(&packet{kind: kindRequest, id: id, body: body}, timeout); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.body, nil
	case <-gxtime.After(timeout):
		return nil, errTimeout
	}
}

func (c *rpcClient) session() getty.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sessions {
		if !s.IsClosed() {
			return s
		}
	}
	return nil
}

func (c *rpcClient) OnOpen(s getty.Session) error {
	c.opens.Add(1)
	s.SetAttribute(attrMisses, 0)
	c.mu.Lock()
	c.sessions = append(c.sessions, s)
	c.mu.Unlock()
	return nil
}

func (c *rpcClient) OnClose(s getty.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.sessions {
		if x == s {
			c.sessions = append(c.sessions[:i], c.sessions[i+1:]...)
			break
		}
	}
}

func (c *rpcClient) OnError(getty.Session, error) {}

// OnCron sends a heartbeat and counts it as missed until its reply comes;
// after c.maxMisses the session is closed and the pool replaces it.
func (c *rpcClient) OnCron(s getty.Session) {
	misses, _ := s.GetAttribute(attrMisses).(int)
	if misses >= c.maxMisses {
		c.missClose.Add(1)
		s.Close()
		return
	}
	s.SetAttribute(attrMisses, misses+1)
	// The session's write timeout: a heartbeat may wait behind a large
	// compressed request, and a writer that waits out its own timeout
	// fails the connection.
	_, _, _ = s.WritePkg(&packet{kind: kindHeartbeat, id: c.nextID.Add(1)}, 0)
}

func (c *rpcClient) OnMessage(s getty.Session, pkg interface{}) {
	p := pkg.(*packet)
	switch p.kind {
	case kindHeartbeatReply:
		c.heartbeat.Add(1)
		s.SetAttribute(attrMisses, 0)
	case kindResponse:
		c.mu.Lock()
		ch := c.pending[p.id]
		c.mu.Unlock()
		if ch != nil {
			ch <- p
		}
	}
}

// sessionSetup is the new-session callback both sides share, as the users
// write it: codec, listener, zip, a raised max length, timeouts, cron.
func sessionSetup(l getty.EventListener, onConn func(getty.Session) error) getty.NewSessionCallback {
	return func(s getty.Session) error {
		if onConn != nil {
			if err := onConn(s); err != nil {
				return err
			}
		}
		s.SetName("dropin")
		s.SetCompressType(getty.CompressZip)
		s.SetMaxMsgLen(maxMsgLen)
		s.SetPkgHandler(codec{})
		s.SetEventListener(l)
		s.SetReadTimeout(20 * time.Second)
		s.SetWriteTimeout(20 * time.Second)
		s.SetCronPeriod(cronPeriod)
		s.SetWaitTime(time.Second)
		return nil
	}
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(r)-1-i] = c
	}
	return r
}

func payload(size, seed int) []byte {
	unit := []byte(fmt.Sprintf("%08d-payload|", seed))
	return bytes.Repeat(unit, size/len(unit)+1)[:size]
}
