package lru

import (
	"context"
	"errors"
	"testing"
)

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[int](30, func(b []byte) int64 { return int64(len(b)) })
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
		b, err := c.Get(ctx, s.key, load(s.size))
		if err != nil || len(b) != s.size {
			t.Fatalf("step %d: get %d: %d bytes, %v", i, s.key, len(b), err)
		}
		for _, k := range []int{1, 2, 3, 4, 5, 6, 7} {
			want := false
			for _, w := range s.wantKeys {
				want = want || w == k
			}
			if c.Contains(k) != want {
				t.Errorf("step %d: contains(%d) = %v, want %v", i, k, !want, want)
			}
		}
	}
	if used, _, _, _ := c.Stats(); used != 5 {
		t.Errorf("used = %d, want 5", used)
	}
}

func TestLRUDoesNotCacheErrors(t *testing.T) {
	c := New[string](100, func(b []byte) int64 { return int64(len(b)) })
	boom := errors.New("backend down")
	if _, err := c.Get(context.Background(), "k", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	b, err := c.Get(context.Background(), "k", func() ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(b) != "ok" {
		t.Fatalf("retry after an error: %q, %v", b, err)
	}
}

func TestLRUWaitHonoursContext(t *testing.T) {
	c := New[string](100, func(b []byte) int64 { return int64(len(b)) })
	started, release := make(chan struct{}), make(chan struct{})
	go c.Get(context.Background(), "k", func() ([]byte, error) { close(started); <-release; return []byte("x"), nil })
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting with a cancelled context: %v", err)
	}
	close(release)
}

// A batch loader claims several keys, others wait on them, and each waiter
// gets what fill gave its key: a value (then cached) or an error (then
// forgotten, so the next claim loads again).
func TestLRUClaimAndFill(t *testing.T) {
	c := New[string](100, func(b []byte) int64 { return int64(len(b)) })
	a, st := c.Claim("a")
	if st != Own {
		t.Fatalf("first claim of a: %v, want Own", st)
	}
	b, _ := c.Claim("b")
	if _, st := c.Claim("a"); st != Wait {
		t.Fatalf("second claim of a: %v, want Wait", st)
	}
	type got struct {
		v   string
		err error
	}
	results := make(chan got, 2)
	for _, e := range []*Entry[string, []byte]{a, b} {
		go func() {
			v, err := e.Wait(context.Background())
			results <- got{string(v), err}
		}()
	}
	boom := errors.New("damaged")
	c.Fill(a, []byte("AAA"), nil)
	c.Fill(b, nil, boom)
	want := map[string]error{"AAA": nil, "": boom}
	for range 2 {
		r := <-results
		if werr, ok := want[r.v]; !ok || !errors.Is(r.err, werr) {
			t.Errorf("waiter got %q, %v", r.v, r.err)
		}
	}
	if e, st := c.Claim("a"); st != Hit || string(e.Value()) != "AAA" {
		t.Errorf("a after fill: %v %q, want a hit", st, e.Value())
	}
	if _, st := c.Claim("b"); st != Own {
		t.Errorf("b after a failed fill: %v, want Own (errors are not cached)", st)
	}
	// A waiter gives up with its context; the loader is not disturbed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e, _ := c.Claim("b")
	if _, err := e.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
}

// A released value is never one a reader still has pinned, every value is
// released exactly once after the cache dropped it, and the ones the cache
// still holds are not released.
func TestLRUReleaseWaitsForPins(t *testing.T) {
	released := map[string]int{}
	c := New[string](3, func(v string) int64 { return 1 })
	c.Release = func(v string) { released[v]++ }
	load := func(k string) {
		var own *Entry[string, string]
		c.ClaimAll([]string{k}, false, func(_ int, e *Entry[string, string], st State) {
			if st == Own {
				own = e
			}
		})
		if own != nil {
			c.Fill(own, "v"+k, nil)
		}
	}
	pin := func(k string) *Entry[string, string] {
		var got *Entry[string, string]
		c.ClaimAll([]string{k}, true, func(_ int, e *Entry[string, string], st State) {
			if st != Hit {
				t.Fatalf("%s: state %d, want a hit", k, st)
			}
			got = e
		})
		return got
	}
	load("a")
	load("b")
	pa := pin("a")
	c.Forget([]string{"a"}) // pinned: not released yet
	if released["va"] != 0 || pa.Value() != "va" {
		t.Fatalf("a value was released while pinned: %v", released)
	}
	c.Unpin([]*Entry[string, string]{pa})
	if released["va"] != 1 {
		t.Fatalf("forgotten and unpinned: released %d times, want 1", released["va"])
	}
	pb := pin("b")
	load("c")
	load("d")
	load("e") // evicts b, pinned
	if released["vb"] != 0 {
		t.Fatalf("after eviction: %v, want b (pinned) not released", released)
	}
	c.Unpin([]*Entry[string, string]{pb})
	if released["vb"] != 1 {
		t.Fatalf("evicted and unpinned: b released %d times, want 1", released["vb"])
	}
	load("g") // evicts c, not pinned: released at once
	if released["vc"] != 1 {
		t.Fatalf("evicted: c released %d times, want 1", released["vc"])
	}
	// A value forgotten while it loads is released when it is filled, and
	// only after its pinned waiter is done.
	var own, waiter *Entry[string, string]
	c.ClaimAll([]string{"f"}, false, func(_ int, e *Entry[string, string], _ State) { own = e })
	c.ClaimAll([]string{"f"}, true, func(_ int, e *Entry[string, string], st State) {
		if st != Wait {
			t.Fatalf("f: state %d, want wait", st)
		}
		waiter = e
	})
	c.Forget([]string{"f"})
	c.Fill(own, "vf", nil)
	if v, err := waiter.Wait(context.Background()); v != "vf" || err != nil || released["vf"] != 0 {
		t.Fatalf("waiter got %q, %v; released %d", v, err, released["vf"])
	}
	c.Unpin([]*Entry[string, string]{waiter})
	if released["vf"] != 1 {
		t.Fatalf("forgotten while loading: released %d times, want 1", released["vf"])
	}
	for _, k := range []string{"d", "e", "g"} {
		if released["v"+k] != 0 {
			t.Errorf("%s is cached but was released", k)
		}
	}
	for v, n := range released {
		if n != 1 {
			t.Errorf("%s released %d times", v, n)
		}
	}
}
