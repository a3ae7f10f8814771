package lru

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLRUMergesConcurrentLoads(t *testing.T) {
	c := New[string](1<<20, func(b []byte) int64 { return int64(len(b)) })
	var mu sync.Mutex
	loads := 0
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Get(context.Background(), "chunk", func() ([]byte, error) {
				mu.Lock()
				loads++
				mu.Unlock()
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
	if n := loads; n != 1 {
		t.Errorf("%d loads for one key, want 1", n)
	}
}

// TestGetCancelledReaders: a Get whose context is cancelled while another
// loads the key returns at once with its context's error, and the load goes
// on and is cached for the others; a Get waiting on a load that fails (its
// loader's context was cancelled) loads the value itself and gets it.
func TestGetCancelledReaders(t *testing.T) {
	c := New[string](100, func(b []byte) int64 { return int64(len(b)) })
	release := make(chan struct{})
	loaded := make(chan []byte, 1)
	go func() {
		b, _ := c.Get(context.Background(), "k", func() ([]byte, error) { <-release; return []byte("group"), nil })
		loaded <- b
	}()
	for !c.Contains("k") {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled waiter: %v, want context.Canceled", err)
	}
	close(release)
	if b := <-loaded; string(b) != "group" {
		t.Fatalf("the loader: %q", b)
	}
	if b, err := c.Get(context.Background(), "k", nil); err != nil || string(b) != "group" {
		t.Fatalf("cached after a waiter gave up: %q %v", b, err)
	}

	// The first loader is cancelled: its waiter loads the value itself.
	started := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		c.Get(context.Background(), "k2", func() ([]byte, error) { close(started); <-stop; return nil, context.Canceled })
	}()
	<-started
	got := make(chan string, 1)
	go func() {
		b, err := c.Get(context.Background(), "k2", func() ([]byte, error) { return []byte("again"), nil })
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	time.Sleep(10 * time.Millisecond) // the second Get waits on the first's load (late, it loads itself: the same result)
	close(stop)
	if s := <-got; s != "again" {
		t.Fatalf("a waiter of a failed load: %q, want the value loaded again", s)
	}
}
