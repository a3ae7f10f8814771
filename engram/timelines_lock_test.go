package engram

import (
	"fmt"
	"sync"
	"testing"
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
