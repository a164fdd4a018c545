//go:build !unix

package getty

import "syscall"

const rawReadSupported = false

type rawRead struct{}

func (r *rawRead) init() {}

func (r *rawRead) read(syscall.RawConn, int) (*[]byte, int, error) { panic("unreachable") }
