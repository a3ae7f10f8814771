package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/chunk"
)

// orderBackend records the calls made to a real backend, in order, and
// holds the read of a key file until both listings Open makes while the
// key is derived have started (so a version of Open that lists only after
// the key never gets its key file: the test's guard fails it).
type orderBackend struct {
	Backend
	guard context.Context

	mu     sync.Mutex
	calls  []string
	listed map[string]bool
	both   chan struct{} // closed once index/ and snapshots/ were listed
}

func (b *orderBackend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *orderBackend) List(ctx context.Context, dir string, fn func(string, int64) error) error {
	b.record("list " + dir)
	b.mu.Lock()
	if b.listed[dir] = true; b.listed[DirIndex] && b.listed[DirSnapshots] && b.both != nil {
		close(b.both)
		b.both = nil
	}
	b.mu.Unlock()
	return b.Backend.List(ctx, dir, fn)
}

func (b *orderBackend) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b.record("open " + name)
	if strings.HasPrefix(name, DirKeys+"/") {
		b.mu.Lock()
		both := b.both
		b.mu.Unlock()
		if both != nil {
			select {
			case <-both:
			case <-b.guard.Done(): // against a hang, not a timing
				return nil, errors.New("the key file was read before index/ and snapshots/ were listed: Open does not list them while the key is derived")
			}
		}
	}
	return b.Backend.Open(ctx, name, off, length)
}

func (b *orderBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	b.record("write " + name)
	return b.Backend.Write(ctx, name, r, size)
}

func (b *orderBackend) Delete(ctx context.Context, name string) error {
	b.record("delete " + name)
	return b.Backend.Delete(ctx, name)
}

// orderKeyCache records when Open stored the key it derived: after the
// KDF, before anything that needs the key.
type orderKeyCache struct{ b *orderBackend }

func (c orderKeyCache) Load(string) ([]byte, error) { return nil, nil }
func (c orderKeyCache) Store(string, []byte) error  { c.b.record("key derived"); return nil }
func (c orderKeyCache) Forget(string) error         { return nil }

// TestOpenListsWhileTheKeyIsDerived: Open lists index/ and snapshots/
// while the key is derived (open_ahead.go), yet reads no index file, no
// snapshot and writes nothing before the key is known; it then loads the
// snapshot and the index file as before. A wrong password fails with the
// error it always had (ErrWrongPassword, the same text), having read
// nothing but the config, the key files and the two listings, and created
// no cache directory.
func TestOpenListsWhileTheKeyIsDerived(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	ctx := context.Background()
	p := tr.NewPacker(ctx, "")
	empty, err := EncodeTree(&Tree{})
	if err != nil {
		t.Fatal(err)
	}
	root := tr.ChunkKey("").Sum(empty)
	if err := p.Add(TreeBlob, root, 0, len(empty), empty); err != nil {
		t.Fatal(err)
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	sn, err := tr.SaveSnapshot(ctx, &Manifest{Time: time.Now().UTC(), Host: "h", Paths: []string{"/p"}, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	guard, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	open := func(password, cache string) (*orderBackend, *Repository, error) {
		b := &orderBackend{Backend: tr.be, guard: guard, listed: map[string]bool{}, both: make(chan struct{})}
		r, err := Open(ctx, b, Options{Password: password, CacheDir: cache, KeyCache: orderKeyCache{b}})
		return b, r, err
	}

	// A wrong password: today's error, nothing read that needs the key.
	cache := filepath.Join(t.TempDir(), "cache")
	b, _, err := open("wrong", cache)
	want := fmt.Sprintf("%v for repository %s (tried 1 key files)", ErrWrongPassword, tr.be.Location())
	if !errors.Is(err, ErrWrongPassword) || err.Error() != want {
		t.Fatalf("wrong password: %v, want %q", err, want)
	}
	for _, c := range b.calls {
		if c != "open "+ConfigName && c != "list "+DirKeys && !strings.HasPrefix(c, "open "+DirKeys+"/") &&
			c != "list "+DirIndex && c != "list "+DirSnapshots {
			t.Errorf("wrong password: %q (calls %q)", c, b.calls)
		}
	}
	if _, err := os.Stat(cache); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("wrong password: the cache dir exists (%v)", err)
	}

	// The right one, with a fresh cache: the index file and the snapshot
	// are read after the key, nothing is read twice.
	b, r, err := open(testPassword, filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	key := -1
	seen := map[string]int{}
	for i, c := range b.calls {
		seen[c]++
		switch {
		case c == "key derived":
			key = i
		case strings.HasPrefix(c, "open "+DirIndex+"/"), strings.HasPrefix(c, "open "+DirSnapshots+"/"),
			strings.HasPrefix(c, "write "), strings.HasPrefix(c, "delete "):
			if key < 0 {
				t.Errorf("%q before the key was derived (calls %q)", c, b.calls)
			}
		}
	}
	if key < 0 || seen["open "+FileName(DirSnapshots, [32]byte(sn.ID))] != 1 || seen["list "+DirIndex] != 1 || seen["list "+DirSnapshots] != 1 {
		t.Fatalf("calls %q: want the key derived, index/ and snapshots/ listed once and the snapshot read once", b.calls)
	}
	got, err := r.Snapshots(ctx)
	if err != nil || len(got) != 1 || got[0].ID != sn.ID {
		t.Fatalf("snapshots after open: %v %v, want %s", got, err, sn.ShortID())
	}
	if l, err := r.Locate("", []chunk.ID{root}); err != nil || l[root].Pack != packs[0].ID {
		t.Fatalf("the index after open does not place the tree: %v %v", l, err)
	}
}
