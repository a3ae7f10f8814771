package restore

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// waiters waits until n acquires wait on g (a state, not a time).
func waiters(g *FileGate, n int) {
	for {
		g.mu.Lock()
		k := len(g.waiting)
		g.mu.Unlock()
		if k >= n {
			return
		}
		runtime.Gosched()
	}
}

// TestFileGateLargestFirst checks that a freed slot goes to the largest file
// waiting, the earlier of two of the same size first, whatever the order
// they asked in.
func TestFileGateLargestFirst(t *testing.T) {
	g := NewFileGate(1)
	ctx := context.Background()
	first, err := g.acquire(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []uint64{10, 30, 20, 30, 5}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i, s := range sizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := g.acquire(ctx, s)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			release()
		}()
		waiters(g, i+1) // asked in the order of sizes
	}
	first()
	wg.Wait()
	if want := []int{1, 3, 2, 0, 4}; !slices.Equal(order, want) {
		t.Fatalf("slots went to %v, want %v (sizes %v)", order, want, sizes)
	}
	if g.free != 1 || len(g.waiting) != 0 {
		t.Fatalf("gate left with %d free, %d waiting; want 1, 0", g.free, len(g.waiting))
	}
}

// TestFileGateCancel checks that a cancelled wait returns the context's
// error and loses no slot, and that a nil gate bounds nothing.
func TestFileGateCancel(t *testing.T) {
	g := NewFileGate(2)
	bg := context.Background()
	r1, _ := g.acquire(bg, 1)
	r2, _ := g.acquire(bg, 1)
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() {
		_, err := g.acquire(ctx, 7)
		errc <- err
	}()
	waiters(g, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v, want context.Canceled", err)
	}
	r1()
	r2()
	if g.free != 2 || len(g.waiting) != 0 {
		t.Fatalf("gate left with %d free, %d waiting; want 2, 0", g.free, len(g.waiting))
	}
	var none *FileGate
	for range 3 {
		release, err := none.acquire(bg, 1)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
}

// TestFileGateSharesMemUntilLastRelease: the restores of one gate share
// their buffers, and only the last release unmaps them.
func TestFileGateSharesMemUntilLastRelease(t *testing.T) {
	g := NewFileGate(4)
	m1, rel1 := g.memFor()
	m2, rel2 := g.memFor()
	if m1 != m2 {
		t.Fatal("two restores through one gate got separate buffers")
	}
	b := m1.Get(64 << 10)
	rel1()
	if m2.Bytes() == 0 {
		t.Fatal("the first release unmapped buffers the second restore still uses")
	}
	b = append(b, 1) // still mapped: must not fault
	m2.Put(b)
	rel2()
	if n := m2.Bytes(); n != 0 {
		t.Fatalf("after the last release %d bytes are still mapped", n)
	}
	if m3, rel3 := g.memFor(); m3 == m1 {
		t.Fatal("a restore after the last release got the released buffers")
	} else {
		rel3()
	}
	var none *FileGate
	m4, rel4 := none.memFor()
	if m4 == nil {
		t.Fatal("a restore without a gate got no buffers")
	}
	rel4()
}
