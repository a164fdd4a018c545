package main

import (
	"math"
	"testing"
)

func TestHistQuantiles(t *testing.T) {
	var h hist
	for v := uint64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1 µs .. 100 ms, uniform
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		got := float64(h.quantile(q))
		want := q * 100000 * 1000
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("quantile(%v) = %.0f, want %.0f within 2%%", q, got, want)
		}
	}
	if h.max != 100000*1000 || h.total != 100000 {
		t.Errorf("max %d total %d", h.max, h.total)
	}
	if testing.AllocsPerRun(100, func() { h.record(12345) }) != 0 {
		t.Error("record allocates")
	}
}

func TestHistBucketsMonotonic(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<22; v += 7 {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d", v, b, prev)
		}
		prev = b
		if mid := valueOf(b); v >= subCount && math.Abs(float64(mid)-float64(v))/float64(v) > 1.0/subCount {
			t.Fatalf("valueOf(bucketOf(%d)) = %d, too far", v, mid)
		}
	}
}

func TestPayloadVerify(t *testing.T) {
	for _, size := range []int{16, 17, 23, 128, 1024, 1031} {
		p := make([]byte, size)
		fillPayload(p, 7, 42, 123456789)
		seq, ts, ok := verifyPayload(p, 7)
		if !ok || seq != 42 || ts != 123456789 {
			t.Fatalf("size %d: verify = %d %d %v", size, seq, ts, ok)
		}
		if _, _, ok := verifyPayload(p, 8); !ok && size == 16 {
			t.Fatalf("size 16 has no pattern bytes, any conn id verifies")
		} else if ok && size > 16 {
			t.Fatalf("size %d: wrong connection id verified", size)
		}
		for i := range p {
			q := append([]byte(nil), p...)
			q[i] ^= 0x10
			if _, _, ok := verifyPayload(q, 7); ok && size > 16 {
				t.Fatalf("size %d: corrupted byte %d not detected", size, i)
			}
		}
	}
}
