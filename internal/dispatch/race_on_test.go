//go:build race

package dispatch

// raceEnabled lets the heavy tests scale down under the race detector (roughly 10x slower) and skips allocation
// assertions, which the detector's instrumentation invalidates.
const raceEnabled = true
