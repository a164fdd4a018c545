package getty_test

import (
	"context"
	"log"
	"net"
	"os"

	getty "github.com/getty-go/getty"
)

// A server on a Unix socket and a client of it. A stale socket file left by
// a crashed server is removed; Close removes the file.
func ExampleWithLocalAddress_unixSocket() {
	server := getty.NewTCPServer(getty.WithLocalAddress("unix:/run/app/app.sock"))
	client := getty.NewTCPClient(getty.WithServerAddress("unix:/run/app/app.sock"))
	_, _ = server, client
}

// Serving on a listener inherited from the previous process (descriptor 3),
// as in a zero-downtime restart or systemd socket activation. The server
// closes it on Close or Shutdown.
func ExampleWithListener() {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		log.Fatal(err)
	}
	server := getty.NewTCPServer(getty.WithListener(ln))
	go func() {
		if err := server.Serve(func(s getty.Session) error {
			s.SetPkgHandler(&getty.LengthFieldCodec{})
			return nil
		}); err != getty.ErrServerClosed {
			log.Print(err)
		}
	}()
}

// Dialing from a chosen source address. The context carries the dial
// timeout and ends when the client is closed.
func ExampleWithDialContext() {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("10.0.0.5")}}
	client := getty.NewTCPClient(
		getty.WithServerAddress("10.0.0.9:8090"),
		getty.WithDialContext(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}),
	)
	defer client.Close()
}

// A server behind load balancers in 10.0.0.0/8 that send the PROXY
// protocol: sessions show the real client.
func ExampleWithProxyProtocol() {
	server := getty.NewTCPServer(
		getty.WithLocalAddress(":8090"),
		getty.WithProxyProtocol(getty.ProxyProtocol{Trusted: []string{"10.0.0.0/8"}}),
	)
	server.RunEventLoop(func(s getty.Session) error {
		if h, ok := getty.ProxyHeaderOf(s); ok && !h.Local {
			log.Printf("client %s (via %s)", s.RemoteAddr(), s.Conn().RemoteAddr())
		}
		s.SetPkgHandler(&getty.LengthFieldCodec{})
		return nil
	})
	defer server.Close()
}
