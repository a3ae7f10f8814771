// Package repotest holds what the tests of several packages share: a test
// repository on a real directory (New, Reopen, PackFiles, NodeAt), file-tree
// digests to compare restores with (DigestTree, CompareTrees), Engram data
// dir fixtures (WriteEngramSpace) and the chaos tests' settings, read from the
// environment (how many trials to run and from which seed; make chaos sets
// them for the full runs, make test runs the defaults). It imports only the
// storage core, never a feature package, so every package's own tests can
// use it; feature steps (backup, restore) are called by the tests directly.
package repotest

import (
	"os"
	"strconv"
	"testing"
)

// Trials returns the seed of the first trial and how many trials to run.
// Trial i of a test has seed base+i. By default it runs def trials from
// base; MEMENTO_CHAOS_SEED=S replays the one trial of seed S; the count
// variable (e.g. MEMENTO_CHAOS_TRIALS) sets how many, also from S.
func Trials(t testing.TB, base uint64, countVar string, def int) (first uint64, n int) {
	t.Helper()
	first = base
	if s := os.Getenv("MEMENTO_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil || seed < base {
			t.Fatalf("MEMENTO_CHAOS_SEED=%q: want a trial seed from %d on", s, base)
		}
		first, def = seed, 1
	}
	n = def
	if s := os.Getenv(countVar); s != "" {
		c, err := strconv.Atoi(s)
		if err != nil || c < 1 {
			t.Fatalf("%s=%q: want a positive count", countVar, s)
		}
		n = c
	}
	return first, n
}
