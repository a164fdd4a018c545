package dispatch

// Lease claims an idle mailbox and borrows a run slot from its executor, as TryRun does for one message, and
// keeps both for the RunLeased calls that follow, until EndLease. A caller with several messages at hand (a
// reader with several packages from one read) pays the claim and the borrow once for all of them; each message
// then costs one check for a waiting worker. Lease fails where TryRun would (the mailbox is not idle or is
// closed, no slot is free, a worker waits for one, or the executor lends none); the caller then Posts.
//
// A lease owns the mailbox as a drain does: messages Posted meanwhile by other goroutines queue and run after
// EndLease (in their order; the leaseholder's own messages keep theirs), a final callback waits for EndLease,
// and the executor's bound on concurrent tasks counts the lease as one task. No hooks run: the caller holds a
// batch of its own open around the lease. The caller must end the lease, on the same goroutine, before it
// Posts, TryRuns or RunOrPosts to this mailbox again, and must not hold it while it waits for anything but the
// messages it runs.
func (m *Mailbox) Lease() bool { return m.claim() }

// RunLeased runs fn(arg) on the caller under a lease taken with Lease, with a message's panic containment. It
// reports false without running fn once a worker waits for a run slot: the caller then ends the lease
// (EndLease) and Posts the message, so that work already queued goes first, as with TryRun.
func (m *Mailbox) RunLeased(fn func(arg any), arg any) bool {
	if fn == nil {
		panic("dispatch: Mailbox.RunLeased with nil fn")
	}
	if m.cfg.lender.wanted() {
		return false
	}
	m.invoke(fn, arg)
	return true
}

// EndLease gives back a lease's run slot, then the mailbox: a drain takes over messages Posted meanwhile, and a
// final callback due since Close runs now, on the caller.
func (m *Mailbox) EndLease() {
	m.cfg.lender.giveBack()
	m.unclaim()
}

// claim takes an idle mailbox and a run slot for the caller (TryRun, Lease): false, with nothing taken, when
// the mailbox is not idle or is closed, or the executor lends no slot now.
func (m *Mailbox) claim() bool {
	if m.cfg.lender == nil {
		return false
	}
	m.mu.Lock()
	if m.scheduled || m.closed || m.dead || !m.cfg.lender.tryBorrow() {
		m.mu.Unlock()
		return false
	}
	m.scheduled = true // idle implies empty (see Close): the caller's messages are next in order
	m.mu.Unlock()
	return true
}

// unclaim gives back a mailbox taken by claim, once its run slot is back: a drain takes over what was Posted
// meanwhile, else the mailbox is idle again and a due final callback runs on the caller.
func (m *Mailbox) unclaim() {
	m.mu.Lock()
	if m.n > 0 {
		// Posted from another goroutine during the run: a drain takes over.
		m.mu.Unlock()
		if !m.cfg.ex.Execute(m.key, m.drainFn) {
			m.abandon()
		}
		return
	}
	m.scheduled = false
	f := m.takeFinalLocked()
	m.mu.Unlock()
	if f != nil {
		m.runGuarded(f)
	}
}
