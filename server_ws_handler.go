package getty

import (
	"errors"
	"net/http"
)

// NewWSHandler returns an http.Handler that upgrades each request it gets
// to a WebSocket and runs a session of srv for it, set up by newSession,
// so a WebSocket endpoint can share the program's http.ServeMux, port,
// http.Server and TLS set-up:
//
//	srv := getty.NewWSServer() // no address: it does not listen
//	h, err := getty.NewWSHandler(srv, newSession)
//	mux.Handle("/ws", h)
//	...
//	srv.Shutdown(ctx) // ends the sessions the handler started
//
// srv must come from NewWSServer or NewWSSServer. It owns the sessions:
// Sessions, SessionCount, statistics, WithServerMaxConnections and the
// dispatch options apply, and srv.Close or srv.Shutdown ends them (an
// http.Server's own Shutdown does not wait for upgraded connections). Once
// srv is closed the handler answers 503. Origins are checked as on srv
// (WithWebsocketOriginCheck; by default no Origin header, or the request's
// own host); the mux, not WithWebsocketServerPath, picks the path. The
// request's goroutine becomes the session's reader and ServeHTTP returns
// when the session has ended. srv need not Serve: its own listener, if it
// has one, is independent of the handler.
//
// It is safe for concurrent use.
func NewWSHandler(srv Server, newSession NewSessionCallback) (http.Handler, error) {
	s, ok := srv.(*server)
	if !ok || s.ws == nil {
		return nil, errors.New("getty: NewWSHandler needs a server from NewWSServer or NewWSSServer")
	}
	if newSession == nil {
		return nil, errors.New("getty: NewWSHandler without a new-session callback")
	}
	if s.closed.Load() {
		return nil, ErrServerClosed
	}
	return &wsHandler{w: s.ws, cb: newSession}, nil
}

type wsHandler struct {
	w  *wsServer
	cb NewSessionCallback
}

func (h *wsHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if h.w.srv.closed.Load() {
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	// A session that opens after srv has closed is refused by the
	// endpoint (serveSession) and its connection closed.
	h.w.upgrade(rw, r, h.cb)
}
