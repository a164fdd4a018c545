//go:build race

// Package race reports whether the race detector is on, so tests that count
// allocations (sync.Pool drops items at random under -race) can skip.
package race

// Enabled is true when built with -race.
const Enabled = true
