// Package getty is an embeddable networking library: you supply a codec
// (ReadWriter) and callbacks (EventListener); getty owns the sockets,
// goroutines, buffers, timers, reconnects and shutdown.
//
// It is a compatible superset of apache/dubbo-getty v1.4: a program written
// for that library builds and behaves the same after changing its import
// path, except where upstream's behaviour was a bug (see docs/migration.md).
//
// # Overview
//
//	server := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:8090"))
//	server.RunEventLoop(func(s getty.Session) error {
//		s.SetPkgHandler(&getty.LengthFieldCodec{}) // bytes <-> packages
//		s.SetEventListener(handler)                // OnOpen, OnMessage, OnCron, OnError, OnClose
//		s.SetCronPeriod(20_000)                    // ms
//		return nil
//	})
//	defer server.Close()
//
// # Endpoints
//
// A Server listens (NewTCPServer; TLS with WithServerSslEnabled) and makes a
// Session per connection. A Client (NewTCPClient) keeps
// WithConnectionNumber sessions to one server and re-dials lost ones with
// capped, jittered backoff, using the lost session's own goroutine: no
// polling goroutine. Client.Session picks an open session round-robin.
//
// # Sessions
//
// A Session is one connection with its codec, listener and settings. Set
// them in the NewSessionCallback. OnOpen, then OnMessage for every package,
// OnCron every cron period, then OnError (when an error ended the session)
// and OnClose exactly once. The EventListener documentation draws the
// order and says which goroutine runs what.
//
// # Codec
//
// A Reader turns buffered bytes into packages under a precise contract
// (see Reader); a Writer turns packages into bytes. LengthFieldCodec and
// DelimiterCodec are ready-made; their packages are *Frame values that are
// recycled after OnMessage returns.
//
// # Concurrency
//
// Each connection has one reader goroutine. Without a pool OnMessage runs
// on it, in order. WithServerWorkerPool runs OnMessage on a shared pool of
// workers, still in order per session and with backpressure: a session
// whose queue is full stops reading. WithServerTaskPool takes a gost task
// pool as upstream does (unordered unless WithServerOrderedDispatch). One
// timer wheel for the process drives every OnCron; a small set of runners
// per endpoint calls it, so a slow OnCron delays neither the wheel nor
// other sessions' messages. Session writes are safe for concurrent use:
// concurrent writers share write syscalls.
//
// # Buffers
//
// Read buffers come from a pool when bytes arrive and go back once every
// package in them was consumed, so an idle plain TCP connection holds none
// (on Unix; a TLS or compressed connection keeps a small buffer in its
// reader, and WebSocket reads go through gorilla's reader). The
// buffer passed to Reader.Read is valid only during the call. Writes are
// copied into a pooled send buffer (large ones are written from the
// caller's slices with writev) and the caller may reuse its slice when the
// write returns. A package's length is checked against SetMaxMsgLen as soon
// as the Reader knows it, before any buffer grows for it.
//
// # Shutdown
//
// Session.Close flushes what was accepted for writing and closes the
// connection at once; OnClose follows after the callbacks in flight.
// Server.Close and Client.Close close every session and return when every
// goroutine they started is gone. Server.Shutdown(ctx) does the same
// gracefully and returns ctx.Err() if ctx ends first.
package getty
