package fusefs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	c := newLRU[int](30, func(b []byte) int64 { return int64(len(b)) })
	load := func(n int) func() ([]byte, error) {
		return func() ([]byte, error) { return make([]byte, n), nil }
	}
	ctx := context.Background()
	steps := []struct {
		key, size int
		wantKeys  []int // cached after the step
	}{
		{1, 10, []int{1}},
		{2, 10, []int{1, 2}},
		{3, 10, []int{1, 2, 3}},
		{1, 10, []int{1, 2, 3}}, // a hit makes 1 the most recent
		{4, 10, []int{1, 3, 4}}, // so 2 goes
		{5, 25, []int{5}},       // a big entry pushes out all others
		{6, 40, []int{}},        // larger than the limit: returned, not kept
		{7, 5, []int{7}},
	}
	for i, s := range steps {
		b, err := c.get(ctx, s.key, load(s.size))
		if err != nil || len(b) != s.size {
			t.Fatalf("step %d: get %d: %d bytes, %v", i, s.key, len(b), err)
		}
		for _, k := range []int{1, 2, 3, 4, 5, 6, 7} {
			want := false
			for _, w := range s.wantKeys {
				want = want || w == k
			}
			if c.contains(k) != want {
				t.Errorf("step %d: contains(%d) = %v, want %v", i, k, !want, want)
			}
		}
	}
	if used, _, _, _ := c.stats(); used != 5 {
		t.Errorf("used = %d, want 5", used)
	}
}

func TestLRUDoesNotCacheErrors(t *testing.T) {
	c := newLRU[string](100, func(b []byte) int64 { return int64(len(b)) })
	boom := errors.New("backend down")
	if _, err := c.get(context.Background(), "k", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	b, err := c.get(context.Background(), "k", func() ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(b) != "ok" {
		t.Fatalf("retry after an error: %q, %v", b, err)
	}
}

func TestLRUMergesConcurrentLoads(t *testing.T) {
	c := newLRU[string](1<<20, func(b []byte) int64 { return int64(len(b)) })
	var loads atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.get(context.Background(), "chunk", func() ([]byte, error) {
				loads.Add(1)
				<-release
				return []byte("data"), nil
			})
			if err != nil || string(b) != "data" {
				t.Errorf("get: %q, %v", b, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads for one key, want 1", n)
	}
}

func TestLRUWaitHonoursContext(t *testing.T) {
	c := newLRU[string](100, func(b []byte) int64 { return int64(len(b)) })
	started, release := make(chan struct{}), make(chan struct{})
	go c.get(context.Background(), "k", func() ([]byte, error) { close(started); <-release; return []byte("x"), nil })
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.get(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting with a cancelled context: %v", err)
	}
	close(release)
}

// A batch loader claims several keys, others wait on them, and each waiter
// gets what fill gave its key: a value (then cached) or an error (then
// forgotten, so the next claim loads again).
func TestLRUClaimAndFill(t *testing.T) {
	c := newLRU[string](100, func(b []byte) int64 { return int64(len(b)) })
	a, st := c.claim("a")
	if st != claimOwn {
		t.Fatalf("first claim of a: %v, want claimOwn", st)
	}
	b, _ := c.claim("b")
	if _, st := c.claim("a"); st != claimWait {
		t.Fatalf("second claim of a: %v, want claimWait", st)
	}
	type got struct {
		v   string
		err error
	}
	results := make(chan got, 2)
	for _, e := range []*lruEntry[string, []byte]{a, b} {
		go func() {
			v, err := e.wait(context.Background())
			results <- got{string(v), err}
		}()
	}
	boom := errors.New("damaged")
	c.fill(a, []byte("AAA"), nil)
	c.fill(b, nil, boom)
	want := map[string]error{"AAA": nil, "": boom}
	for range 2 {
		r := <-results
		if werr, ok := want[r.v]; !ok || !errors.Is(r.err, werr) {
			t.Errorf("waiter got %q, %v", r.v, r.err)
		}
	}
	if e, st := c.claim("a"); st != claimHit || string(e.val) != "AAA" {
		t.Errorf("a after fill: %v %q, want a hit", st, e.val)
	}
	if _, st := c.claim("b"); st != claimOwn {
		t.Errorf("b after a failed fill: %v, want claimOwn (errors are not cached)", st)
	}
	// A waiter gives up with its context; the loader is not disturbed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e, _ := c.claim("b")
	if _, err := e.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
}
