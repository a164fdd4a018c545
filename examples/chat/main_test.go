package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	getty "github.com/getty-go/getty"
)

// chatClient is a getty WebSocket client of the room that collects what it
// receives.
type chatClient struct {
	getty.BaseListener
	cli getty.Client
	got chan message
}

func (c *chatClient) OnMessage(_ getty.Session, pkg any) {
	var m message
	if json.Unmarshal(pkg.([]byte), &m) == nil {
		c.got <- m
	}
}

func dialChat(t *testing.T, wsURL string) *chatClient {
	t.Helper()
	c := &chatClient{got: make(chan message, 100)}
	c.cli = getty.NewWSClient(getty.WithServerAddress(wsURL))
	codec := getty.NewReadWriter(
		getty.ReaderFunc(func(_ getty.Session, b []byte) (any, int, error) { return bytes.Clone(b), len(b), nil }),
		getty.WriterFunc(func(_ getty.Session, pkg any) ([]byte, error) { return pkg.([]byte), nil }),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.cli.RunEventLoopContext(ctx, func(s getty.Session) error {
		s.SetPkgHandler(codec)
		s.SetEventListener(c)
		return nil
	}); err != nil {
		c.cli.Close()
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	t.Cleanup(c.cli.Close)
	return c
}

func (c *chatClient) say(t *testing.T, name, text string) {
	t.Helper()
	s, err := c.cli.Session()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(message{Name: name, Text: text})
	if _, _, err := s.WritePkg(b, time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitFor returns the first message that matches, skipping others.
func (c *chatClient) waitFor(t *testing.T, what string, match func(message) bool) message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.got:
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no message %s within 5s", what)
		}
	}
}

func startChat(t *testing.T) (*chat, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	c, err := start("127.0.0.1:0", "", out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return c, out
}

func TestChatBroadcast(t *testing.T) {
	c, out := startChat(t)
	alice := dialChat(t, c.WSURL())
	bob := dialChat(t, c.WSURL())
	bob.waitFor(t, "announcing bob", func(m message) bool { return m.System && strings.Contains(m.Text, "2 online") })

	alice.say(t, "  alice ", "hello <b>bob</b>")
	for _, cl := range []*chatClient{alice, bob} {
		m := cl.waitFor(t, "from alice", func(m message) bool { return !m.System })
		if m.Name != "alice" || m.Text != "hello <b>bob</b>" || m.Time == "" {
			t.Fatalf("broadcast = %+v", m)
		}
	}
	bob.say(t, "", strings.Repeat("é", maxText+10))
	m := alice.waitFor(t, "from bob", func(m message) bool { return !m.System })
	if m.Name != "anonymous" || len([]rune(m.Text)) != maxText {
		t.Fatalf("name %q, %d runes; want anonymous, %d", m.Name, len([]rune(m.Text)), maxText)
	}

	// Not JSON: only the sender hears about it.
	s, _ := alice.cli.Session()
	_, _, _ = s.WritePkg([]byte("plain text"), time.Second)
	alice.waitFor(t, "the complaint", func(m message) bool { return m.System && strings.HasPrefix(m.Text, "not understood") })

	bob.cli.Close()
	alice.waitFor(t, "bob leaving", func(m message) bool { return m.System && strings.Contains(m.Text, "1 online") })
	for _, want := range []string{"joined from", `chat: alice: "hello <b>bob</b>"`, "left (1 online)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestChatPage(t *testing.T) {
	c, _ := startChat(t)
	resp, err := http.Get(c.PageURL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(c.WSURL(), "ws://127.0.0.1"), ":")
	port = strings.TrimSuffix(port, "/ws")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<meta name="ws-port" content="`+port+`">`) {
		t.Fatalf("page: %s\n%s", resp.Status, body)
	}
	resp, err = http.Get(c.PageURL() + "other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/other: %s", resp.Status)
	}
	http.DefaultClient.CloseIdleConnections()
}

// The page's origins may open the WebSocket; another site's page may not.
func TestChatOrigins(t *testing.T) {
	c, _ := startChat(t)
	pagePort := strings.TrimSuffix(strings.TrimPrefix(c.PageURL(), "http://127.0.0.1:"), "/")
	for origin, want := range map[string]int{
		"http://127.0.0.1:" + pagePort:    http.StatusSwitchingProtocols,
		"http://localhost:" + pagePort:    http.StatusSwitchingProtocols,
		"http://[::1]:" + pagePort:        http.StatusSwitchingProtocols,
		"http://127.0.0.1:1":              http.StatusForbidden,
		"http://evil.example:" + pagePort: http.StatusForbidden,
		"file://":                         http.StatusForbidden,
		"null":                            http.StatusForbidden,
	} {
		h := http.Header{}
		h.Set("Origin", origin)
		ws, resp, err := websocket.DefaultDialer.Dial(c.WSURL(), h)
		if ws != nil {
			ws.Close()
		}
		if resp == nil {
			t.Fatalf("origin %q: %v", origin, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("origin %q: %s, want %d", origin, resp.Status, want)
		}
	}
}

// On all interfaces (checked without listening there): localhost and the
// machine's addresses on the page's port, nothing else.
func TestAllowedOriginsOnAllInterfaces(t *testing.T) {
	ok := allowedOrigins("0.0.0.0:8080", &net.TCPAddr{IP: net.IPv4zero, Port: 8080})
	for origin, want := range map[string]bool{
		"http://localhost:8080":    true,
		"http://127.0.0.1:8080":    true,
		"https://localhost:8080":   true,
		"http://localhost:8081":    false,
		"http://evil.example:8080": false,
		"ws://localhost:8080":      false,
	} {
		if got := ok(origin); got != want {
			t.Errorf("%s: %v, want %v", origin, got, want)
		}
	}
}

// syncBuffer is an io.Writer the room and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
