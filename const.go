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

// EndPointType_name and EndPointType_value map types to upstream's names
// and back. They are variables because upstream exports them as such.
var (
	EndPointType_name = map[int32]string{
		0: "UDP_ENDPOINT",
		1: "UDP_CLIENT",
		2: "TCP_CLIENT",
		3: "WS_CLIENT",
		4: "WSS_CLIENT",
		7: "TCP_SERVER",
		8: "WS_SERVER",
		9: "WSS_SERVER",
	}
	EndPointType_value = map[string]int32{
		"UDP_ENDPOINT": 0,
		"UDP_CLIENT":   1,
		"TCP_CLIENT":   2,
		"WS_CLIENT":    3,
		"WSS_CLIENT":   4,
		"TCP_SERVER":   7,
		"WS_SERVER":    8,
		"WSS_SERVER":   9,
	}
)

// String returns the type's name ("TCP_SERVER"), or its number for an
// unknown type, as upstream.
func (x EndPointType) String() string {
	if s, ok := EndPointType_name[int32(x)]; ok {
		return s
	}
	return strconv.Itoa(int(x))
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

// MaxWheelTimeSpan is upstream's limit on timer spans (900 s), kept for
// programs that refer to it. getty's timer wheel has no such limit.
const MaxWheelTimeSpan = 900e9

// Defaults, as upstream's.
const (
	defaultMaxMsgLen         = 4096
	defaultReadTimeout       = time.Second
	defaultWriteTimeout      = time.Second
	defaultCronPeriod        = 60 * time.Second
	defaultReconnectInterval = 300 * time.Millisecond
	defaultWaitTime          = 3 * time.Second
	defaultSessionName       = "session"

	// Endpoint defaults, documented at their options.
	defaultHandshakeTimeout     = 5 * time.Second  // WithServerHandshakeTimeout
	defaultDialTimeout          = 3 * time.Second  // WithDialTimeout
	defaultMaxReconnectInterval = 10 * time.Second // WithMaxReconnectInterval
	defaultMailboxSize          = 64               // With{Server,Client}MailboxSize

	// readBufSize is the read buffer taken from the pool when bytes
	// arrive; it grows (by size class) up to the session's max message
	// length when a package needs more.
	readBufSize = 16 << 10
	// maxCorked is how many reply bytes are gathered during one dispatch
	// batch before they are flushed early, so gathering stays bounded.
	maxCorked = 64 << 10
)
