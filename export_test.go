package getty

// Exported for the external tests (package getty_test), so they use the
// library's own code instead of a copy.

// TCPConnOf finds the TCP socket under a connection, through TLS.
var TCPConnOf = tcpConnOf
