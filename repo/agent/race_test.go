//go:build race

package agent

// raceEnabled says the tests run with the race detector (slower).
const raceEnabled = true
