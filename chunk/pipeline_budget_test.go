package chunk

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingZeros is an endless stream of zero bytes that counts what was read.
type countingZeros struct{ n *atomic.Int64 }

func (r countingZeros) Read(p []byte) (int, error) {
	clear(p)
	r.n.Add(int64(len(p)))
	return len(p), nil
}

// TestSplitBudgetBoundsBuffersInFlight runs many Splits of largest-size
// chunks into a store that blocks, as a slow pack upload would, and checks
// that the readers stop once the pipeline's buffer budget is taken: the bytes
// read from all streams stay within the budget plus each chunker's own read
// buffer, instead of every Split holding a full chunk buffer besides the
// workers' (issue 18: twelve files read at once held 96 MiB that way).
func TestSplitBudgetBoundsBuffersInFlight(t *testing.T) {
	const splits = 12
	p := NewPipeline(1, LevelFastest)
	defer p.Close()
	params := Params{Min: MaxChunkSize, Max: MaxChunkSize, AverageBits: 20} // every chunk 8 MiB
	budget := splitBudget(1)
	if w := bufWeight(int(params.Max), budget); budget/w >= splits {
		t.Fatalf("budget %d holds %d buffers of %d bytes: the test needs more Splits than that", budget, budget/w, w)
	}

	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	var unblock sync.Once
	unblockAll := func() { unblock.Do(func() { cancel(); close(release) }) }
	defer unblockAll() // before p.Close, also when a check fails: Close waits for the Splits
	var stored atomic.Int64
	store := func(c *Chunk) error {
		stored.Add(1)
		<-release
		return nil
	}
	var read atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, splits)
	for range splits {
		wg.Go(func() {
			_, _, _, err := p.Split(ctx, countingZeros{&read}, testPol, params, testKey, nil, store)
			errs <- err
		})
	}

	// Wait (generously: the machine may be loaded) until the budget is all
	// taken: the worker is blocked in store and no Split can cut a chunk.
	deadline := time.Now().Add(2 * time.Minute)
	for p.budget.TryAcquire(1) {
		p.budget.Release(1)
		if time.Now().After(deadline) {
			t.Fatalf("the budget of %d bytes was never exhausted (%d bytes read, %d chunks stored)", budget, read.Load(), stored.Load())
		}
		time.Sleep(time.Millisecond)
	}
	// With the budget taken no Split reads beyond its current chunk: at most
	// the budget's chunks plus each chunker's read-ahead (512 KiB).
	const chunkerReadAhead = 512 << 10
	if got, limit := read.Load(), budget+splits*chunkerReadAhead; got > limit {
		t.Fatalf("%d bytes read from the streams while the budget of %d bytes was taken: more than %d", got, budget, limit)
	}
	if got := stored.Load(); got > 1 {
		t.Fatalf("%d chunks reached the blocked store with one worker, want at most 1", got)
	}

	unblockAll()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Split after cancel: %v, want context.Canceled", err)
		}
	}
	if !p.budget.TryAcquire(budget) {
		t.Fatal("budget not fully released after every Split returned")
	}
	p.budget.Release(budget)
}
