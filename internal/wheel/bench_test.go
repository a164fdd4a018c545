package wheel

import (
	"testing"
	"time"
)

func BenchmarkResetStop(b *testing.B) {
	w := New(defaultTick)
	defer w.Stop()
	keep := w.NewTimer(func() {}) // keeps the goroutine alive: measure Reset/Stop, not goroutine starts
	keep.Reset(time.Hour)
	tm := w.NewTimer(func() {})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tm.Reset(time.Second)
		tm.Stop()
	}
	keep.Stop()
}

// BenchmarkReset re-arms an armed timer, as an idle check pushed out on every
// read would.
func BenchmarkReset(b *testing.B) {
	w := New(defaultTick)
	defer w.Stop()
	tm := w.NewTimer(func() {})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tm.Reset(time.Minute)
	}
	tm.Stop()
}

// BenchmarkResetStopParallel shows how the single lock holds up when many
// sessions re-arm at once; compare with BenchmarkAfterFuncResetStopParallel.
func BenchmarkResetStopParallel(b *testing.B) {
	w := New(defaultTick)
	defer w.Stop()
	keep := w.NewTimer(func() {})
	keep.Reset(time.Hour)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		tm := w.NewTimer(func() {})
		for pb.Next() {
			tm.Reset(time.Second)
			tm.Stop()
		}
	})
	keep.Stop()
}

func BenchmarkAfterFuncResetStop(b *testing.B) {
	tm := time.AfterFunc(time.Hour, func() {})
	tm.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tm.Reset(time.Second)
		tm.Stop()
	}
}

func BenchmarkAfterFuncResetStopParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		tm := time.AfterFunc(time.Hour, func() {})
		tm.Stop()
		for pb.Next() {
			tm.Reset(time.Second)
			tm.Stop()
		}
	})
}
