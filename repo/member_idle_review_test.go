package repo

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// TestGroupCacheIdleRacesReaders: with an idle time of a millisecond the
// group cache is emptied over and over while four readers read members;
// every read returns the member's bytes (run with -race), and once the
// readers stop the cache empties and its timer disarms.
func TestGroupCacheIdleRacesReaders(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	files, _ := smallFiles(6)
	_, ids := addGroup(t, tr, files)
	tr.groups = newGroupCache(time.Millisecond)
	stop := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := g; time.Now().Before(stop); k++ {
				i := k % len(ids)
				got, err := tr.ReadBlob(ctx, "", DataBlob, ids[i])
				if err != nil || !bytes.Equal(got, files[i]) {
					errs <- "member read while the cache expires: wrong bytes or " + errText(err)
					return
				}
				if k%3 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		used, _, _, _ := tr.groups.Stats()
		if used == 0 && !tr.groups.armed.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group cache holds %d bytes (armed %v) 10 s after the last read (idle 1 ms)", used, tr.groups.armed.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// errText is err's text, or "no error".
func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
