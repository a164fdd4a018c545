package getty

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket pings keep intermediaries from dropping an idle connection and
// let OnCron see a live peer through GetActive (a pong marks the session
// active). A session pings every cron period, as upstream's OnCron path
// did, from the process timer wheel: the wheel callback only re-arms and
// queues the connection, and wsPinger writes the ping. A ping is skipped
// while a write holds the connection, since the peer is then hearing from
// us anyway.

func (t *wsTransport) armPing(s messageSession) {
	t.ping.Reset(s.cronInterval())
	if t.closing.Load() {
		t.ping.Stop()
	}
}

func (t *wsTransport) stopPing() { t.ping.Stop() }

// pingTimer is the transport as its ping timer's callback, so the timer
// needs no method value (an object of its own per connection).
type pingTimer wsTransport

func (p *pingTimer) Fire() { (*wsTransport)(p).pingFire() }

// pingFire runs on the wheel goroutine: no blocking here.
func (t *wsTransport) pingFire() {
	s := t.session()
	if s == nil || t.closing.Load() {
		return
	}
	t.armPing(s)
	if t.pingQueued.CompareAndSwap(false, true) && !wsPings.add(t) {
		t.pingQueued.Store(false)
	}
}

func (t *wsTransport) writePing() {
	t.pingQueued.Store(false)
	s := t.session()
	if s == nil || t.closing.Load() || !t.mu.tryLock() {
		return
	}
	var err error
	if !t.closeSent {
		err = t.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.WriteTimeout()))
	}
	t.mu.unlock()
	if err != nil && !t.closing.Load() && !s.ending() {
		s.fail(s.opError(opPing, err))
	}
}

// wsPinger writes queued pings on one goroutine for the whole process,
// started when a ping is queued and gone as soon as the queue is empty.
type wsPinger struct {
	mu      sync.Mutex
	queue   []*wsTransport
	running bool
}

// wsPingQueueMax bounds the queue; pings beyond it are skipped for a beat.
const wsPingQueueMax = 1 << 16

var wsPings wsPinger

func (p *wsPinger) add(t *wsTransport) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) >= wsPingQueueMax {
		return false
	}
	p.queue = append(p.queue, t)
	if !p.running {
		p.running = true
		go p.run()
	}
	return true
}

func (p *wsPinger) run() {
	var batch []*wsTransport
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		batch, p.queue = p.queue, batch[:0]
		p.mu.Unlock()
		for i, t := range batch {
			t.writePing()
			batch[i] = nil
		}
	}
}
