package bufpool

import (
	"testing"

	"github.com/getty-go/getty/internal/race"
)

func TestGetSizes(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 4097, 1 << 20, 1<<24 + 1} {
		b := Get(n)
		if len(*b) < n || len(*b) != cap(*b) {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		Put(b)
	}
}

func TestPutForeign(t *testing.T) {
	b := make([]byte, 1000) // not a class size: dropped, never handed out
	Put(&b)
	Put(nil)
	if g := Get(1000); cap(*g) != 1024 {
		t.Fatalf("cap %d", cap(*g))
	}
}

func TestNoAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("sync.Pool drops items under -race")
	}
	Put(Get(4096))
	if n := testing.AllocsPerRun(100, func() { Put(Get(4096)) }); n != 0 {
		t.Fatalf("%v allocs per Get/Put", n)
	}
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		Put(Get(4096))
	}
}

func TestAppendGrowsAndKeepsBytes(t *testing.T) {
	var buf *[]byte
	n := Append(&buf, 0, []byte("head"))
	if buf == nil || n != 4 {
		t.Fatalf("first append: buf %v, n %d", buf, n)
	}
	big := make([]byte, 3*len(*buf))
	for i := range big {
		big[i] = byte(i)
	}
	n = Append(&buf, n, big)
	if n != 4+len(big) || len(*buf) < n {
		t.Fatalf("after growing: n %d, cap %d", n, len(*buf))
	}
	if string((*buf)[:4]) != "head" || (*buf)[4+len(big)-1] != big[len(big)-1] {
		t.Fatal("bytes lost while growing")
	}
	Put(buf)
}
