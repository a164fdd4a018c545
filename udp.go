package getty

import (
	"fmt"
	"net"
)

// UDPContext is a package with its peer: what OnMessage receives on a UDP
// endpoint, and what WritePkg takes there to name the destination.
type UDPContext struct {
	Pkg      any
	PeerAddr *net.UDPAddr
}

func (c UDPContext) String() string {
	return fmt.Sprintf("{pkg:%#v, peer addr:%s}", c.Pkg, c.PeerAddr)
}
