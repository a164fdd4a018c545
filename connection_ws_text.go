package getty

import "github.com/gorilla/websocket"

// WebSocket has two kinds of data message, text (UTF-8) and binary. getty
// writes binary messages unless a session is switched to text, and lets a
// Reader ask which kind the message it decodes arrived as. Both are
// package-level functions, so the Session interface stays upstream's.

// SetWSTextMessages makes every message the session writes from now on
// (WritePkg, WriteBytes, WriteBytesArray, Send) a text message when text
// is true, a binary message (the default) when false. Browsers hand text
// messages to JavaScript as strings. The bytes must be UTF-8: a peer fails
// the connection on a text message that is not (close code 1007). It
// reports false, and does nothing, when s is not a WebSocket session. Safe
// for concurrent use; a write under way keeps the kind it started with.
func SetWSTextMessages(s Session, text bool) bool {
	t := wsTransportOf(s)
	if t == nil {
		return false
	}
	t.text.Store(text)
	return true
}

// WSMessageIsText reports whether the WebSocket message being decoded
// arrived as a text message (else binary). Call it from Reader.Read (or
// MessageEndReader.ReadEnd), which runs on the session's reader goroutine
// with that message, and keep the answer in the package if OnMessage
// needs it: OnMessage may run later, on another goroutine. It reports
// false on other sessions.
func WSMessageIsText(s Session) bool {
	t := wsTransportOf(s)
	return t != nil && t.readText.Load()
}

func wsTransportOf(s Session) *wsTransport {
	ss, ok := s.(*session)
	if !ok {
		return nil
	}
	t, _ := ss.tr.(*wsTransport)
	return t
}

// messageType is the kind of the data messages written now.
func (t *wsTransport) messageType() int {
	if t.text.Load() {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}
