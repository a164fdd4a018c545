package getty

import (
	"compress/flate"
	"net"
	"strconv"
	"time"
)

// netErrClosed is kept here so errors.go reads as a list of sentinels.
var netErrClosed = net.ErrClosed

// EndPointID identifies an endpoint within the process.
type EndPointID = int32

// EndPointType says what kind of endpoint a session belongs to.
type EndPointType int32

// The endpoint types; values are upstream's.
const (
	UDP_ENDPOINT EndPointType = 0
	UDP_CLIENT   EndPointType = 1
	TCP_CLIENT   EndPointType = 2
	WS_CLIENT    EndPointType = 3
	WSS_CLIENT   EndPointType = 4
	TCP_SERVER   EndPointType = 7
	WS_SERVER    EndPointType = 8
	WSS_SERVER   EndPointType = 9
)

// EndPointTypeStrings holds the names String returns, indexed by type.
var EndPointTypeStrings = [...]string{
	"UDP endpoint",
	"UDP Client",
	"TCP Client",
	"WS Client",
	"WSS Client",
	"",
	"",
	"TCP Server",
	"WS Server",
	"WSS Server",
}

// String returns the type's name; unknown values print as their number
// rather than panicking as an array index would.
func (x EndPointType) String() string {
	if x >= 0 && int(x) < len(EndPointTypeStrings) && EndPointTypeStrings[x] != "" {
		return EndPointTypeStrings[x]
	}
	return "EndPointType(" + strconv.Itoa(int(x)) + ")"
}

// CompressType selects stream compression for a connection. The values after
// CompressNone are untyped, as upstream's, so both typed and untyped uses
// compile.
type CompressType int

// Compression choices; the flate levels are compress/flate's.
const (
	CompressNone            CompressType = flate.NoCompression // raw bytes on the wire
	CompressZip                          = flate.DefaultCompression
	CompressBestSpeed                    = flate.BestSpeed
	CompressBestCompression              = flate.BestCompression
	CompressHuffman                      = flate.HuffmanOnly
	CompressSnappy                       = 10
)

// Defaults, as upstream's.
const (
	defaultMaxMsgLen         = 4096
	defaultReadTimeout       = time.Second
	defaultWriteTimeout      = time.Second
	defaultCronPeriod        = 60 * time.Second
	defaultReconnectInterval = 300 * time.Millisecond
	defaultWaitTime          = 3 * time.Second
	defaultSessionName       = "session"

	// readBufSize is the read buffer taken from the pool when bytes
	// arrive; it grows (by size class) up to the session's max message
	// length when a package needs more.
	readBufSize = 16 << 10
	// maxCorked is how many reply bytes are gathered during one dispatch
	// batch before they are flushed early, so gathering stays bounded.
	maxCorked = 64 << 10
)
