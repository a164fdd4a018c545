// Package leakcheck holds the goleak options every getty test shares. Only
// tests import it, so goleak never reaches a user's build.
package leakcheck

import "go.uber.org/goleak"

// Options returns extra plus the goroutines that live for the whole process
// on purpose: the two of gost's default timer wheel, which importing getty
// starts, as importing upstream dubbo-getty does.
func Options(extra ...goleak.Option) []goleak.Option {
	return append([]goleak.Option{
		goleak.IgnoreTopFunction("github.com/dubbogo/gost/time.NewTimerWheel.func1"),
		goleak.IgnoreTopFunction("github.com/dubbogo/gost/container/chan.(*UnboundedChan).run"),
	}, extra...)
}
