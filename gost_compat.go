//go:build !getty_nogostwheel

package getty

import gxtime "github.com/dubbogo/gost/time"

// Upstream's session.go starts gost's default timer wheel when the package
// is imported, and its users rely on that without knowing it: dubbo-go and
// seata-go wait for replies and heartbeats with gxtime.After, which panics
// on a nil wheel. getty keeps the effect so that they run unchanged. getty's
// own timers do not use this wheel (see internal/wheel); its cost is one gost
// goroutine ticking every 10 ms, about 1.5 % of a core in an idle process
// (docs/migration.md). A program that never uses gost's default wheel can
// build with -tags getty_nogostwheel to leave it stopped.
func init() {
	gxtime.InitDefaultTimerWheel()
}
