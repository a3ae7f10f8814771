package lru

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFailedLoadNotKept: a load that fails leaves nothing cached or
// counted, its pinned waiter gets the error (ClaimAll), a Get waiting on
// it loads the value itself, and the failed value is never released
// (Release only ever sees values the cache held).
func TestFailedLoadNotKept(t *testing.T) {
	c := New[int](100, func(b []byte) int64 { return int64(len(b)) })
	var released atomic.Int64
	c.Release = func([]byte) { released.Add(1) }
	e, st := c.Claim(1)
	if st != Own {
		t.Fatalf("claim: %v", st)
	}
	var waiter *Entry[int, []byte]
	c.ClaimAll([]int{1}, true, func(_ int, e *Entry[int, []byte], st State) {
		if st != Wait {
			t.Fatalf("second claim: %v, want Wait", st)
		}
		waiter = e
	})
	got := make(chan error, 1)
	go func() {
		v, err := c.Get(context.Background(), 1, func() ([]byte, error) { return make([]byte, 7), nil })
		if err == nil && len(v) != 7 {
			err = fmt.Errorf("Get: %d bytes", len(v))
		}
		got <- err
	}()
	boom := errors.New("backend down")
	c.Fill(e, make([]byte, 50), boom)
	if _, err := waiter.Wait(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("pinned waiter: %v, want %v", err, boom)
	}
	if err := <-got; err != nil {
		t.Fatalf("Get waiting on the failed load: %v, want its own load's value", err)
	}
	c.Unpin([]*Entry[int, []byte]{waiter})
	if used, _, _, _ := c.Stats(); used != 7 {
		t.Fatalf("used %d after a failed load of 50 bytes and a load of 7, want 7", used)
	}
	c.Forget([]int{1})
	if used, _, _, _ := c.Stats(); used != 0 || c.Contains(1) {
		t.Fatalf("after Forget: used %d, contains %v", used, c.Contains(1))
	}
	if n := released.Load(); n != 1 {
		t.Fatalf("%d releases, want 1 (the 7-byte value; never the failed load's)", n)
	}
}

// TestPinnedSurvivesEviction: an entry pinned by a reader and evicted
// stays intact until the reader unpins, then is released exactly once;
// the byte count drops at eviction.
func TestPinnedSurvivesEviction(t *testing.T) {
	c := New[int](10, func(b []byte) int64 { return int64(len(b)) })
	var rel [][]byte
	c.Release = func(b []byte) {
		for i := range b {
			b[i] = 0xee
		}
		rel = append(rel, b)
	}
	e, _ := c.Claim(1)
	c.Fill(e, []byte{1, 2, 3, 4, 5, 6, 7, 8}, nil)
	var pinned []*Entry[int, []byte]
	c.ClaimAll([]int{1}, true, func(_ int, e *Entry[int, []byte], st State) { pinned = append(pinned, e) })
	e2, _ := c.Claim(2)
	c.Fill(e2, make([]byte, 8), nil) // evicts 1
	if c.Contains(1) || len(rel) != 0 {
		t.Fatalf("contains(1) %v, %d releases: want 1 evicted and not released while pinned", c.Contains(1), len(rel))
	}
	if used, _, _, _ := c.Stats(); used != 8 {
		t.Fatalf("used %d, want 8", used)
	}
	if v := pinned[0].Value(); v[0] != 1 || v[7] != 8 {
		t.Fatalf("pinned value changed: %v", v)
	}
	c.Unpin(pinned)
	if len(rel) != 1 || rel[0][0] != 0xee {
		t.Fatalf("%d releases after the unpin, want 1", len(rel))
	}
}

// TestConcurrentPinsForgetPurge: readers pin, check and unpin values while
// others load (some loads failing), forget and purge; Release poisons a
// value: no reader may ever see a poisoned one, each value is released at
// most once, and once everything is unpinned and purged the cache holds
// nothing. Run with -race.
func TestConcurrentPinsForgetPurge(t *testing.T) {
	c := New[int](64*20, func(b []byte) int64 { return int64(len(b)) })
	var mu sync.Mutex
	seen := map[*byte]bool{}
	c.Release = func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		if seen[&b[0]] {
			panic("released twice")
		}
		seen[&b[0]] = true
		for i := range b {
			b[i] = 0xff
		}
	}
	var wg sync.WaitGroup
	var bad atomic.Value
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 3000 {
				switch r.IntN(10) {
				case 0:
					c.Forget([]int{r.IntN(40)})
					continue
				case 1:
					if g == 0 {
						c.Purge()
					}
					continue
				}
				keys := []int{r.IntN(40), r.IntN(40), r.IntN(40)}
				var entries []*Entry[int, []byte]
				var mine, waits []int
				c.ClaimAll(keys, true, func(i int, e *Entry[int, []byte], st State) {
					entries = append(entries, e)
					switch st {
					case Own:
						mine = append(mine, i)
					case Wait:
						waits = append(waits, i)
					}
				})
				for _, i := range mine {
					if r.IntN(5) == 0 {
						c.Fill(entries[i], nil, errors.New("flaky"))
						continue
					}
					v := make([]byte, 64)
					for k := range v {
						v[k] = byte(keys[i])
					}
					c.Fill(entries[i], v, nil)
				}
				for i, e := range entries {
					var v []byte
					var err error
					if contains(waits, i) {
						v, err = e.Wait(context.Background())
					} else {
						v, err = e.Result() // a hit, or filled by this goroutine
					}
					if err != nil {
						continue
					}
					for _, b := range v {
						if b != byte(keys[i]) {
							bad.Store(fmt.Sprintf("key %d: a pinned value holds %#x", keys[i], b))
						}
					}
				}
				c.Unpin(entries)
			}
		}()
	}
	wg.Wait()
	if s, ok := bad.Load().(string); ok {
		t.Fatal(s)
	}
	c.Purge()
	if used, _, _, _ := c.Stats(); used != 0 {
		t.Fatalf("used %d after the last purge, want 0", used)
	}
	c.mu.Lock()
	n := len(c.m)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d entries left after the last purge", n)
	}
}

func contains(s []int, x int) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
