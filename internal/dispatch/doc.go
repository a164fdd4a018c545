// Package dispatch runs user callbacks (OnMessage and friends) off the per-connection reader goroutine.
//
// The model (docs/design.md, "Goroutines" and "Backpressure"): each connection has exactly one reader goroutine
// that decodes packages and posts them here; a shared, bounded M:N [Pool] runs them. Nothing in this package starts
// a goroutine per message or grows a queue without bound: every queue has a fixed capacity and a full queue blocks
// the producer, which for a reader goroutine means it stops reading the socket and TCP flow control pushes back on
// the peer.
//
// Two layers:
//
//   - [Executor] (implemented by [Pool] and by [GostExecutor] for upstream gxsync pools) runs independent tasks.
//   - [Mailbox] is a per-session bounded FIFO drained by an Executor with at most one drain in flight, so one
//     session's messages run in order while different sessions run in parallel, and a session's close callback
//     runs after its last message.
package dispatch
