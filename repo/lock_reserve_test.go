package repo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/repo/backend/local"
)

// gatedReserve is a local backend whose reserve is made only once gate is
// closed; it records, in order, the reserve made, the packs written and the
// lock files deleted.
type gatedReserve struct {
	Backend
	local *local.Backend
	gate  chan struct{}

	mu     sync.Mutex
	events []string
}

func (b *gatedReserve) record(e string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
}

func (b *gatedReserve) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.events)
}

func (b *gatedReserve) EnsureReserve(ctx context.Context) error {
	<-b.gate
	err := b.local.EnsureReserve(ctx)
	b.record("reserve")
	return err
}

func (b *gatedReserve) ReleaseReserve(ctx context.Context) (int64, error) {
	return b.local.ReleaseReserve(ctx)
}

func (b *gatedReserve) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	err := b.Backend.Write(ctx, name, r, size)
	if strings.HasPrefix(name, DirData+"/") {
		b.record("pack")
	}
	return err
}

func (b *gatedReserve) Delete(ctx context.Context, name string) error {
	err := b.Backend.Delete(ctx, name)
	if strings.HasPrefix(name, DirLocks+"/") {
		b.record("unlock")
	}
	return err
}

// TestLockMakesTheReserveMeanwhile: the first lock of a local repository
// makes its 4 MiB reserve (written and fsynced with its directory) without
// the command waiting for it: Lock returns while it is being made, but no
// pack is written and no lock released before it is there. Before, Lock
// made it first, and returned only then.
func TestLockMakesTheReserveMeanwhile(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	ctx := context.Background()
	reserve := filepath.Join(tr.dir, ".tmp-reserve")
	open := func() (*gatedReserve, *Repository) {
		_ = os.Remove(reserve)
		b := &gatedReserve{Backend: tr.be, local: tr.be, gate: make(chan struct{})}
		r, err := Open(ctx, b, Options{Password: testPassword, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return b, r
	}
	lockNow := func(r *Repository, b *gatedReserve) *Lock {
		t.Helper()
		got := make(chan *Lock, 1)
		go func() {
			l, err := r.Lock(ctx, false, "backup")
			if err != nil {
				t.Error(err)
			}
			got <- l
		}()
		select {
		case l := <-got:
			return l
		case <-time.After(30 * time.Second):
			close(b.gate)
			t.Fatal("Lock waited for the reserve")
			return nil
		}
	}

	// A pack is written only once the reserve is made.
	b, r := open()
	l := lockNow(r, b)
	p := r.NewPacker(ctx, "")
	data := []byte("a blob written after the reserve")
	id := r.ChunkKey("").Sum(data)
	if err := p.Add(DataBlob, id, 0, len(data), data); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() {
		_, _, err := p.Flush()
		flushed <- err
	}()
	time.Sleep(50 * time.Millisecond) // time for a pack write that did not wait
	close(b.gate)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got, want := b.seen(), []string{"reserve", "pack", "unlock"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if fi, err := os.Stat(reserve); err != nil || fi.Size() != local.ReserveSize {
		t.Errorf("reserve after the lock: %v, want %d bytes", err, local.ReserveSize)
	}

	// The lock is released only once the reserve is made.
	b, r = open()
	l = lockNow(r, b)
	unlocked := make(chan error, 1)
	go func() { unlocked <- l.Unlock() }()
	time.Sleep(50 * time.Millisecond) // time for an Unlock that did not wait
	close(b.gate)
	if err := <-unlocked; err != nil {
		t.Fatal(err)
	}
	if got, want := b.seen(), []string{"reserve", "unlock"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
