//go:build !solo || solo_net

package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

func init() {
	register("net", "goroutine per connection on plain net, one write(2) per frame (the baseline)",
		func(addr string, _ pools) (server, error) { return newNetServer(addr, false) })
	register("net-bufio", "goroutine per connection on plain net, bufio.Writer flushed when no complete frame is buffered",
		func(addr string, _ pools) (server, error) { return newNetServer(addr, true) })
}

type netServer struct {
	ln    net.Listener
	bufio bool
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newNetServer(addr string, batched bool) (*netServer, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	s := &netServer{ln: ln, bufio: batched, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *netServer) Addr() string { return addrOf(s.ln.Addr()) }

func (s *netServer) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *netServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.bufio {
				serveBufio(c)
			} else {
				serveNet(c)
			}
			_ = c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// serveNet: buffered reads, and each frame goes back with its own write.
func serveNet(c net.Conn) {
	br := bufio.NewReaderSize(c, 4096)
	buf := make([]byte, 4+1024)
	for {
		frame, err := readFrame(br, &buf)
		if err != nil {
			return
		}
		work()
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// readFrame reads one length-prefixed frame into *buf (grown when needed)
// and returns it, header included.
func readFrame(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	b := *buf
	if _, err := io.ReadFull(br, b[:4]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(b[:4]))
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	if cap(b) < 4+n {
		nb := make([]byte, 4+n)
		copy(nb, b[:4])
		b = nb
		*buf = b
	}
	frame := b[:4+n]
	if _, err := io.ReadFull(br, frame[4:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// serveBufio: like serveNet, but replies are batched in a bufio.Writer that
// is flushed whenever no complete frame is waiting in the read buffer.
func serveBufio(c net.Conn) {
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	buf := make([]byte, 4+1024)
	for {
		frame, err := readFrame(br, &buf)
		if err != nil {
			return
		}
		work()
		if _, err := bw.Write(frame); err != nil {
			return
		}
		if !frameBuffered(br) {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// frameBuffered reports whether br holds a complete frame, so it can be
// handled without blocking.
func frameBuffered(br *bufio.Reader) bool {
	b := br.Buffered()
	if b < 4 {
		return false
	}
	h, _ := br.Peek(4)
	return b >= 4+int(binary.BigEndian.Uint32(h))
}
