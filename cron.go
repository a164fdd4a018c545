package getty

import (
	"sync"
)

// OnCron scheduling. The process-wide timer wheel (internal/wheel) fires
// each session's beat; the endpoint's cron runners call OnCron, so a slow
// OnCron delays neither the wheel nor other sessions' beats.
//
// Two properties matter to a heartbeat, which exists to find dead peers:
//   - No lost beats. Every due session is queued; the queue is an intrusive
//     list through the sessions, so it holds at most one entry per session,
//     never fills and allocates nothing. A beat is skipped only while the
//     session's previous OnCron is still queued or running (cronBusy).
//   - No drift. A beat re-arms at its scheduled time plus the period, not at
//     the time it fired plus the period, so wheel and scheduling latency
//     delay one beat but never the ones after it. After a stall longer than
//     a period, the beats missed are skipped and the phase is kept.

// cronTimer is the session as its cron timer's callback: the timer holds
// the session itself, where a method value (s.cronFire) would be an object
// of its own on every session, and Session gains no exported Fire method.
type cronTimer session

func (c *cronTimer) Fire() { (*session)(c).cronFire() }

// cronFire runs on the wheel goroutine: it re-arms and hands OnCron to the
// endpoint's cron runners, skipping the beat if the last OnCron is busy.
func (s *session) cronFire() {
	if !s.rearmCron() {
		return
	}
	if !s.flags.set(flagCronBusy, true) {
		return
	}
	if s.ep == nil || !s.ep.crons.submit(s) {
		s.flags.set(flagCronBusy, false)
	}
}

// armCron (re)arms the cron timer one period from now unless the session is
// closing (SetCronPeriod and open start a new schedule); the lock keeps a
// wheel callback from re-arming a timer that stopCron just stopped.
func (s *session) armCron() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.cronNext = monoNow() + s.cronPeriod.Load()
	s.cron.ResetAt(monoTime(s.cronNext))
	return true
}

// rearmCron arms the beat after the one firing now, one period after the
// one scheduled; false if the session is closing.
func (s *session) rearmCron() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	now := monoNow()
	if now < s.cronNext {
		// armCron started a new schedule after the wheel took this beat:
		// the timer is armed already.
		return true
	}
	p := s.cronPeriod.Load()
	next := s.cronNext + p
	if next <= now {
		// A stall of more than a period: skip what was missed, keep phase.
		next += (now-next)/p*p + p
	}
	s.cronNext = next
	s.cron.ResetAt(monoTime(next))
	return true
}

func (s *session) stopCron() {
	s.mu.Lock()
	s.cron.Stop()
	s.mu.Unlock()
}

// runCron runs on a cron runner.
func (s *session) runCron() {
	defer s.flags.set(flagCronBusy, false)
	if !s.enter() {
		return
	}
	defer s.leave()
	if err := protect("OnCron", func() { s.listener.OnCron(s) }); err != nil {
		s.closeWith(err)
	}
}

// cronRunners are an endpoint's goroutines that call OnCron. They start
// with the first beat and end in stop, after the endpoint's sessions.
type cronRunners struct {
	mu         sync.Mutex
	cond       sync.Cond
	n          int
	head, tail *session // FIFO of due sessions, linked by cronLink
	idle       int      // runners waiting on cond
	wg         sync.WaitGroup
	running    bool
	stopped    bool
}

func (c *cronRunners) init(n int) {
	c.n = n
	c.cond.L = &c.mu
}

// submit queues a session's OnCron without blocking the wheel; false once
// stopped. The caller holds the session's cronBusy, so a session is queued
// at most once.
func (c *cronRunners) submit(s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	if !c.running {
		c.running = true
		c.wg.Add(c.n)
		for i := 0; i < c.n; i++ {
			go c.loop()
		}
	}
	s.cronLink = nil
	if c.tail != nil {
		c.tail.cronLink = s
	} else {
		c.head = s
	}
	c.tail = s
	if c.idle > 0 {
		c.cond.Signal()
	}
	return true
}

// next takes the next due session, waiting for one; nil once stopped and
// drained.
func (c *cronRunners) next() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head == nil {
		if c.stopped {
			return nil
		}
		c.idle++
		c.cond.Wait()
		c.idle--
	}
	s := c.head
	c.head = s.cronLink
	if c.head == nil {
		c.tail = nil
	}
	s.cronLink = nil
	return s
}

func (c *cronRunners) loop() {
	defer c.wg.Done()
	for s := c.next(); s != nil; s = c.next() {
		s.runCron()
	}
}

func (c *cronRunners) stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.wg.Wait()
}
