//go:build race

package peer

// raceEnabled: the race detector slows decoding and scheduling several
// times, so the timing bounds of the decode tests widen under it.
const raceEnabled = true
