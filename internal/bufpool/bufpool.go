// Package bufpool keeps byte buffers in power-of-two size classes so that
// sessions can borrow a read or write buffer only while they use it and an
// idle connection holds none.
//
// Buffers travel as *[]byte: the pointer is allocated once with the buffer
// and goes in and out of sync.Pool with it, so Get and Put allocate nothing
// in steady state.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 9 // 512 B
	// maxShift is the largest class, 1 MiB. A larger buffer is made at the
	// size asked for and left to the collector when put back: keeping
	// message-sized buffers would hold a burst's peak for good, and
	// rounding 8 MiB and a few bytes up to a 16 MiB class would double it.
	maxShift = 20
)

var pools [maxShift - minShift + 1]sync.Pool

func init() {
	for i := range pools {
		size := 1 << (minShift + i)
		pools[i].New = func() any {
			b := make([]byte, size)
			return &b
		}
	}
}

// class returns the index of the smallest class holding n bytes, or -1 when
// n is too large to pool.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxShift {
		return -1
	}
	return shift - minShift
}

// Get returns a buffer with len == cap >= n. Return it with Put.
func Get(n int) *[]byte {
	c := class(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	return pools[c].Get().(*[]byte)
}

// Put returns b to its class. Buffers whose capacity is not a class size
// (grown by append, or too large) are dropped for the collector.
func Put(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < 1<<minShift || c > 1<<maxShift || c&(c-1) != 0 {
		return
	}
	*b = (*b)[:c]
	pools[bits.Len(uint(c))-1-minShift].Put(b)
}

// Append appends p to the n bytes in use of *buf and returns the new count.
// It takes a buffer from the pool when *buf is nil, and a larger one (the
// old one goes back) when p does not fit.
func Append(buf **[]byte, n int, p []byte) int {
	return n + copy(Grow(buf, n, len(p)), p)
}

// Grow makes room for extra bytes after the n in use of *buf, as Append
// does, and returns that room, for a caller that fills it piece by piece.
func Grow(buf **[]byte, n, extra int) []byte {
	if *buf == nil {
		*buf = Get(max(extra, 4096))
	}
	if n+extra > len(**buf) {
		nb := Get(n + extra)
		copy(*nb, (**buf)[:n])
		Put(*buf)
		*buf = nb
	}
	return (**buf)[n : n+extra]
}
