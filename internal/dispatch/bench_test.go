package dispatch

import (
	"sync"
	"sync/atomic"
	"testing"

	gxsync "github.com/dubbogo/gost/sync"
)

// The benchmarks measure Post->run cost per message: b.N messages are posted by one producer (like one
// connection's reader) and the timer stops after the last one ran. The handler only counts, so the figures are
// pure dispatch overhead. Parallel variants give every benchmark goroutine its own mailbox / key (many sessions).

var sinkCount atomic.Int64

func benchHandler(any) { sinkCount.Add(1) }

// BenchmarkDirectCall is the baseline: the reader calling OnMessage inline.
func BenchmarkDirectCall(b *testing.B) {
	b.ReportAllocs()
	arg := new(int)
	fn := benchHandler
	for i := 0; i < b.N; i++ {
		fn(arg)
	}
}

func benchMailbox(b *testing.B, ex Executor) {
	b.ReportAllocs()
	arg := new(int)
	m := NewMailbox(ex, 1, 0, 0)
	done := make(chan struct{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !m.Post(benchHandler, arg) {
			b.Fatal("Post refused")
		}
	}
	m.Close(func() { close(done) })
	<-done
}

func BenchmarkMailboxOnPool(b *testing.B) {
	p := NewPool(0, 0)
	defer p.Close()
	benchMailbox(b, p)
}

func BenchmarkMailboxOnPoolParallel(b *testing.B) {
	p := NewPool(0, 0)
	defer p.Close()
	b.ReportAllocs()
	var key atomic.Uint64
	var wg sync.WaitGroup
	b.RunParallel(func(pb *testing.PB) {
		m := NewMailbox(p, key.Add(1), 0, 0)
		arg := new(int)
		for pb.Next() {
			m.Post(benchHandler, arg)
		}
		wg.Add(1)
		m.Close(wg.Done)
	})
	wg.Wait()
}

func BenchmarkPoolExecute(b *testing.B) {
	p := NewPool(0, 0)
	defer p.Close()
	b.ReportAllocs()
	var wg sync.WaitGroup
	task := func() { sinkCount.Add(1); wg.Done() }
	wg.Add(b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !p.Execute(uint64(i), task) {
			b.Fatal("Execute refused")
		}
	}
	wg.Wait()
}

func BenchmarkPoolExecuteParallel(b *testing.B) {
	p := NewPool(0, 0)
	defer p.Close()
	b.ReportAllocs()
	var wg sync.WaitGroup
	task := func() { sinkCount.Add(1); wg.Done() }
	var key atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		k := key.Add(1)
		for pb.Next() {
			wg.Add(1)
			p.Execute(k, task)
		}
	})
	wg.Wait()
}

func BenchmarkMailboxOnGostTaskPoolSimple(b *testing.B) {
	gp := gxsync.NewTaskPoolSimple(0)
	defer gp.Close()
	benchMailbox(b, NewGostExecutor(gp))
}

func BenchmarkMailboxOnGostTaskPool(b *testing.B) {
	gp := gxsync.NewTaskPool(gxsync.WithTaskPoolTaskPoolSize(8))
	defer gp.Close()
	benchMailbox(b, NewGostExecutor(gp))
}

// BenchmarkGostExecute is the upstream unordered path (raw AddTask through the adapter), for comparison with
// BenchmarkPoolExecute.
func BenchmarkGostExecute(b *testing.B) {
	gp := gxsync.NewTaskPoolSimple(0)
	defer gp.Close()
	ex := NewGostExecutor(gp)
	b.ReportAllocs()
	var wg sync.WaitGroup
	task := func() { sinkCount.Add(1); wg.Done() }
	wg.Add(b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !ex.Execute(0, task) {
			b.Fatal("Execute refused")
		}
	}
	wg.Wait()
}

// benchPingPong posts one message and waits for it before the next, so every message finds the mailbox idle and
// pays a full schedule + worker wake-up: the latency view, as opposed to the throughput view above.
func benchPingPong(b *testing.B, ex Executor) {
	b.ReportAllocs()
	m := NewMailbox(ex, 1, 0, 0)
	ran := make(chan struct{}, 1)
	fn := func(any) { ran <- struct{}{} }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !m.Post(fn, nil) {
			b.Fatal("Post refused")
		}
		<-ran
	}
	b.StopTimer()
	m.Close(nil)
}

func BenchmarkMailboxOnPoolPingPong(b *testing.B) {
	p := NewPool(0, 0)
	defer p.Close()
	benchPingPong(b, p)
}

func BenchmarkMailboxOnGostTaskPoolSimplePingPong(b *testing.B) {
	gp := gxsync.NewTaskPoolSimple(0)
	defer gp.Close()
	benchPingPong(b, NewGostExecutor(gp))
}

// BenchmarkMailboxTryRun is a reader running each message of a batch on a borrowed token, one TryRun each: a
// claim of the mailbox and a token per message.
func BenchmarkMailboxTryRun(b *testing.B) {
	p := NewPool(0, 0)
	defer p.Close()
	b.ReportAllocs()
	arg := new(int)
	m := NewMailbox(p, 1, 0, 0)
	for i := 0; i < b.N; i++ {
		if !m.TryRun(benchHandler, arg, true) {
			b.Fatal("TryRun refused")
		}
	}
}

// BenchmarkMailboxLease16 is the same reader with a lease per 16 messages (a read that brought 16 packages).
func BenchmarkMailboxLease16(b *testing.B) {
	p := NewPool(0, 0)
	defer p.Close()
	b.ReportAllocs()
	arg := new(int)
	m := NewMailbox(p, 1, 0, 0)
	for i := 0; i < b.N; i += 16 {
		if !m.Lease() {
			b.Fatal("Lease refused")
		}
		for j := i; j < min(i+16, b.N); j++ {
			if !m.RunLeased(benchHandler, arg) {
				b.Fatal("RunLeased refused")
			}
		}
		m.EndLease()
	}
}
