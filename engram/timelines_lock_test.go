package engram

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Spaces updated at the same time (wal archive --all, restore --all) each
// read-modify-write timelines.json under LockTimelines: no update is lost.
func TestLockTimelinesKeepsConcurrentUpdates(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			unlock, err := LockTimelines(dir)
			if err != nil {
				errs <- err
				return
			}
			defer unlock()
			tl, err := ReadTimelines(dir)
			if err != nil {
				errs <- err
				return
			}
			tl.Set(fmt.Sprintf("space-%02d", i), uint32(i+2))
			errs <- WriteTimelines(dir, tl)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	tl, err := ReadTimelines(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got := tl.Of(fmt.Sprintf("space-%02d", i)); got != uint32(i+2) {
			t.Fatalf("space-%02d on timeline %d, want %d (an update was lost): %+v", i, got, i+2, tl.Spaces)
		}
	}
}

// TestLockTimelinesShared: archive runs' shared locks coexist and exclude
// the exclusive lock of a restore (or a fork being recorded) until the last
// is released.
func TestLockTimelinesShared(t *testing.T) {
	dd := t.TempDir()
	a, err := LockTimelinesShared(dd)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LockTimelinesShared(dd) // does not wait for a
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dd, MementoDirName, timelinesLockName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exclusive := func() error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }
	if err := exclusive(); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("exclusive lock beside two shared ones: %v, want EWOULDBLOCK", err)
	}
	a()
	if err := exclusive(); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("exclusive lock beside one shared one: %v, want EWOULDBLOCK", err)
	}
	b()
	if err := exclusive(); err != nil {
		t.Fatalf("exclusive lock once the shared ones are released: %v", err)
	}
}
