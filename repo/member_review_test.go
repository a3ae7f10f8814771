package repo

import (
	"context"
	"errors"
	"testing"
	"time"

	"memento/chunk"
)

// TestGroupCacheCancelledReaders: a reader of a group whose context is
// cancelled while another reads it returns at once with its context's
// error, and the read goes on and is cached for the others; a reader
// waiting on a read whose own context was cancelled reads the group
// itself and gets it.
func TestGroupCacheCancelledReaders(t *testing.T) {
	var c groupCache
	k := groupKey{"s", chunk.ID{3}}
	release := make(chan struct{})
	loaded := make(chan []byte, 1)
	go func() {
		b, _ := c.get(context.Background(), k, func() ([]byte, error) { <-release; return []byte("group"), nil })
		loaded <- b
	}()
	waitEntry := func() {
		for {
			c.mu.Lock()
			e := c.m[k]
			c.mu.Unlock()
			if e != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitEntry()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.get(ctx, k, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled waiter: %v, want context.Canceled", err)
	}
	close(release)
	if b := <-loaded; string(b) != "group" {
		t.Fatalf("the reader: %q", b)
	}
	if b, err := c.get(context.Background(), k, nil); err != nil || string(b) != "group" {
		t.Fatalf("cached after a waiter gave up: %q %v", b, err)
	}

	// The first reader is cancelled: its waiter reads the group itself.
	k2 := groupKey{"s", chunk.ID{4}}
	started := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		c.get(context.Background(), k2, func() ([]byte, error) { close(started); <-stop; return nil, context.Canceled })
	}()
	<-started
	got := make(chan string, 1)
	go func() {
		b, err := c.get(context.Background(), k2, func() ([]byte, error) { return []byte("again"), nil })
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	time.Sleep(10 * time.Millisecond) // the second reader waits on the first's read (late, it reads the group itself: the same result)
	close(stop)
	if s := <-got; s != "again" {
		t.Fatalf("a waiter of a cancelled read: %q, want the group read again", s)
	}
}
