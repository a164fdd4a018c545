package main

import (
	"math"
	"math/bits"
)

// hist is an HDR-like histogram of latencies in nanoseconds: values below
// 2^subBits are exact, above that every power of two is split into
// 2^subBits linear sub-buckets, so the relative error is below 1/2^subBits
// (about 1.6%). Recording is a few integer operations and never allocates.
const (
	subBits    = 6
	subCount   = 1 << subBits
	maxExp     = 40 // 2^(40+subBits) ns is far beyond any latency we measure
	histBucket = (maxExp + 1) * subCount
)

type hist struct {
	counts [histBucket]uint64
	total  uint64
	sum    uint64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	idx := (e+1)*subCount + int(v>>uint(e)) - subCount
	if idx >= histBucket {
		return histBucket - 1
	}
	return idx
}

// valueOf returns the midpoint of the bucket's value range.
func valueOf(idx int) uint64 {
	if idx < subCount {
		return uint64(idx)
	}
	e := idx/subCount - 1
	m := uint64(idx%subCount + subCount)
	lo := m << uint(e)
	return lo + (uint64(1)<<uint(e))/2
}

func (h *hist) record(v uint64) {
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0..1) in nanoseconds.
func (h *hist) quantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := valueOf(i)
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}

func (h *hist) mean() float64 {
	if h.total == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.total)
}
