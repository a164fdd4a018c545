//go:build getty && getty_nogostwheel && (!solo || solo_getty)

package main

import getty "github.com/getty-go/getty"

// The same servers as getty and getty-pool, in a build with -tags
// getty_nogostwheel: gost's default timer wheel, which getty starts at
// import for upstream compatibility (gost_compat.go), stays stopped. The
// idle scenario shows what that wheel costs (its 10 ms tick is the idle
// CPU of the plain getty servers). compare builds them as their own
// family, "getty-nogw".
func init() {
	register("getty-nogw", "getty built with -tags getty_nogostwheel (gost's default timer wheel not started), inline",
		func(addr string, _ pools) (server, error) { return newGetty(addr) })
	register("getty-pool-nogw", "getty built with -tags getty_nogostwheel, WithServerWorkerPool(workers)",
		func(addr string, p pools) (server, error) {
			return newGetty(addr, getty.WithServerWorkerPool(p.Workers))
		})
}
