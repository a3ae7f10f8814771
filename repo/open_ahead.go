package repo

import (
	"os"
)

// What Open does while the key is derived. argon2id (the key file's KDF:
// ~0.1 s of one core at the default parameters) is the first thing every
// command waits for, and what comes after it began with the first pages of
// the local index cache, each a wait for the device when its cache is cold
// (a command run after a while, or the benchmark's dropped page cache: ~490
// major faults of an L2 verify, docs/benchmarks.md, session 13). openAhead
// asks the kernel to read the local index file into the page cache
// (prefetchFile) on another goroutine while the key is derived. Nothing is
// written, created or read from the repository: the listings of index/ and
// snapshots/ stay after the key, where they were (made while the key was
// derived they were up to its 0.1 s older than what Sync then read, which
// a concurrent tag, forget or prune made stale: TestTagConcurrent), and a
// wrong password fails as before (TestOpenReadsNothingBeforeTheKey).
type openAhead struct{ done chan struct{} }

// startOpenAhead starts the prefetch of the local index file at indexPath
// (if it exists).
func startOpenAhead(indexPath string) *openAhead {
	a := &openAhead{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		prefetchFile(indexPath)
	}()
	return a
}

// wait waits for the prefetch to end (also when Open fails: it must not
// outlive it).
func (a *openAhead) wait() { <-a.done }

// prefetchMax bounds what prefetchFile reads of a file: a large
// repository's index is not all needed by every command.
const prefetchMax = 64 << 20

// prefetchFile asks the kernel to read the file at path into the page cache
// in the background (see prefetch); a missing file is nothing to read.
func prefetchFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	prefetch(f)
}
