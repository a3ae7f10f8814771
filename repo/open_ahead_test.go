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

// orderBackend records the calls made to a real backend, in order.
type orderBackend struct {
	Backend

	mu    sync.Mutex
	calls []string
}

func (b *orderBackend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *orderBackend) List(ctx context.Context, dir string, fn func(string, int64) error) error {
	b.record("list " + dir)
	return b.Backend.List(ctx, dir, fn)
}

func (b *orderBackend) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b.record("open " + name)
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

// TestOpenReadsNothingBeforeTheKey: while the key is derived Open only
// prefetches the local index (open_ahead.go): it lists and reads no index
// file, no snapshot and writes nothing before the key is known (listings
// made before it were stale by the time Sync read what they named:
// TestTagConcurrent); it then loads the snapshot and the index file as
// before. A wrong password fails with the error it always had
// (ErrWrongPassword, the same text), having read nothing but the config and
// the key files, and created no cache directory.
func TestOpenReadsNothingBeforeTheKey(t *testing.T) {
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
	open := func(password, cache string) (*orderBackend, *Repository, error) {
		b := &orderBackend{Backend: tr.be}
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
		if c != "open "+ConfigName && c != "list "+DirKeys && !strings.HasPrefix(c, "open "+DirKeys+"/") {
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
			c == "list "+DirIndex, c == "list "+DirSnapshots, strings.HasPrefix(c, "write "), strings.HasPrefix(c, "delete "):
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
