package getty_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	getty "github.com/getty-go/getty"
)

const largeMsgEnv = "GETTY_LARGEMSG_CHILD"

// largeMsgResult is what the child measures, in bytes.
type largeMsgResult struct {
	Frame     int    // payload size of each message
	Messages  int    // messages echoed
	PeakExtra uint64 // highest live heap above the baseline while echoing
	AllocPer  uint64 // bytes allocated per echoed message, process-wide
	Residual  int64  // heap above the baseline after the burst and two GCs
}

// TestLargeMessageMemoryChild is the child of TestLargeMessageMemory: a
// getty echo server (LengthFieldCodec, SetMaxMsgLen 16 MiB) and a plain net
// client in one process that does nothing else, so the heap it measures is
// the server's. GOGC is low so that the heap in use follows what is live.
func TestLargeMessageMemoryChild(t *testing.T) {
	if os.Getenv(largeMsgEnv) == "" {
		t.Skip("the measuring child of TestLargeMessageMemory")
	}
	const frameSize, messages = 8 << 20, 20
	debug.SetGCPercent(5)
	srv := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:0"))
	srv.RunEventLoop(func(s getty.Session) error {
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		s.SetEventListener(echoListener{})
		s.SetMaxMsgLen(16 << 20)
		s.SetReadTimeout(time.Minute)
		s.SetWriteTimeout(time.Minute)
		return nil
	})
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	req := make([]byte, 4+frameSize)
	binary.BigEndian.PutUint32(req, frameSize)
	for i := range req[4:] {
		req[4+i] = byte(i)
	}
	resp := make([]byte, len(req))
	roundTrip := func(b []byte) {
		_, err := c.Write(b)
		require.NoError(t, err)
		_, err = io.ReadFull(c, resp[:len(b)])
		require.NoError(t, err)
	}
	roundTrip([]byte{0, 0, 0, 1, 'x'}) // the session is open and warm

	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	allocBase := ms.TotalAlloc

	// The live heap as each GC cycle marked it (GOGC is low, so cycles
	// come often): what the process holds, without the garbage a heap
	// sample would also count between cycles.
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	base := live[0].Value.Uint64()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	for i := 0; i < messages; i++ {
		roundTrip(req)
		require.Equal(t, req[4:1004], resp[4:1004])
	}
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	allocPer := (ms.TotalAlloc - allocBase) / messages
	runtime.GC()
	runtime.GC()
	metrics.Read(live)
	res := largeMsgResult{
		Frame: frameSize, Messages: messages,
		PeakExtra: peak.Load() - min(base, peak.Load()),
		AllocPer:  allocPer,
		Residual:  int64(live[0].Value.Uint64()) - int64(base),
	}
	runtime.KeepAlive(req)
	runtime.KeepAlive(resp)
	out, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", out)
}

type echoListener struct{ getty.BaseListener }

func (echoListener) OnMessage(s getty.Session, pkg any) { _, _, _ = s.WritePkg(pkg, 0) }

// Large messages cost one message-sized buffer, not a pile of them: with
// 8 MiB frames echoed through LengthFieldCodec (which copies each frame
// once), the heap in use stays within 3x the frame, and after the burst the
// process is back to about its heap before it (big buffers are not kept in
// a pool). Measured in a child process, so nothing else shares its heap.
func TestLargeMessageMemory(t *testing.T) {
	t.Parallel() // what it measures is the child process's own heap
	cmd := exec.Command(os.Args[0], "-test.run=^TestLargeMessageMemoryChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), largeMsgEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	var res largeMsgResult
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), &res))
		}
	}
	require.NotZero(t, res.Frame, "child printed no result: %s", out)
	mib := func(b float64) string {
		return fmt.Sprintf("%.1f MiB (%.2fx the frame)", b/(1<<20), b/float64(res.Frame))
	}
	t.Logf("%d frames of %d bytes: peak heap above baseline %s, allocated per message %s, left after the burst %s",
		res.Messages, res.Frame, mib(float64(res.PeakExtra)), mib(float64(res.AllocPer)), mib(float64(res.Residual)))
	// The read buffer (one message-sized allocation once an eighth of the
	// declared length is in, the smaller ones before it) and the codec's
	// copy; the reply's payload goes to the socket uncopied.
	require.LessOrEqual(t, res.PeakExtra, uint64(3*res.Frame), "peak heap")
	require.LessOrEqual(t, res.AllocPer, uint64(3*res.Frame), "allocated per message")
	require.Less(t, res.Residual, int64(res.Frame/8), "heap kept after the burst")
}
