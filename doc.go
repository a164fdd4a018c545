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
// A server's whole life in main: Serve on its own goroutine, wait for a
// signal, Shutdown with a deadline, and only then return. Serve returns
// ErrServerClosed as soon as Shutdown starts, so main waits for Shutdown,
// not for Serve.
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	server := getty.NewTCPServer(getty.WithLocalAddress("127.0.0.1:8090"))
//	served := make(chan error, 1)
//	go func() {
//		served <- server.Serve(func(s getty.Session) error {
//			s.SetPkgHandler(&getty.LengthFieldCodec{}) // bytes <-> packages (required)
//			s.SetEventListener(handler)                // OnOpen, OnMessage, OnCron, OnError, OnClose
//			s.SetCronPeriod(20_000)                    // milliseconds
//			return nil
//		})
//	}()
//	select {
//	case err := <-served: // could not listen
//		log.Fatal(err)
//	case <-ctx.Done(): // Ctrl-C or SIGTERM
//	}
//	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	if err := server.Shutdown(shutdownCtx); err != nil {
//		log.Print(err) // the deadline cut some sessions off
//	}
//	<-served // ErrServerClosed
//
// RunEventLoop, upstream's entry point, starts the server in the
// background and returns at once: it suits a program that has its own way
// to keep main alive, not a main that returns right after it.
//
// # Defaults that surprise
//
//	max message length    4096 bytes (Session.SetMaxMsgLen); a longer package closes the session
//	read timeout          1 s for the rest of a started package (SetReadTimeout); idle is free
//	write timeout         1 s per write (SetWriteTimeout, or WritePkg's timeout)
//	cron period           60 s, in MILLISECONDS: SetCronPeriod(int(time.Second)) is 11.6 days
//	reconnect interval    300 ms, in NANOSECONDS: WithReconnectInterval(300) is 300 ns
//	local address         "" means all interfaces on a random port (WithLocalAddress)
//	logging               WARN and above, text on stderr (SetLogger, WithServerLogger)
//
// The units are upstream's and stay for compatibility; a cron period over a
// day or a reconnect interval under a microsecond is logged at WARN with
// what it will be taken as.
//
// # Mistakes are logged
//
// At the default level getty reports, at WARN, what would otherwise fail in
// silence: a session set up without a codec (ErrNoCodec, once per
// endpoint; a client's RunEventLoopContext also returns it, as it does a
// client with no address or a TLS setup that cannot be built), and a session
// ended by an error that no OnError handled, i.e. OnError left to
// BaseListener (at most one line a second per endpoint). Lines carry
// attributes (endpoint, session_id, session, remote_addr, error, stack);
// WithServerLogger and WithClientLogger give an endpoint its own
// *slog.Logger.
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
// on it, in order. WithServerWorkerPool bounds OnMessage to a shared pool
// of n workers, still in order per session and with backpressure: a session
// whose queue is full stops reading. The workers are n tokens: a reader
// whose session has nothing queued runs OnMessage itself while a token is
// free (the packages of one read under one token, given back when a worker
// waits for it), and hands it to a worker once all n are held.
// WithServerTaskPool takes a gost task pool as upstream does (unordered
// unless WithServerOrderedDispatch). One timer wheel for the process drives
// every OnCron; a small set of runners per endpoint calls it, so a slow
// OnCron delays neither the wheel nor other sessions' messages. Session
// writes are safe for concurrent use: concurrent writers share write
// syscalls.
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
