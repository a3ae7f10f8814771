package fusefs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/lru"
	"memento/repo/repotest"
)

// forget drops loaded entries and their cost at once, and an entry still
// loading once its loader fills it: its waiters get the value, the cache
// does not keep it.
func TestLRUForget(t *testing.T) {
	c := lru.New[int](100, func(b []byte) int64 { return int64(len(b)) })
	ctx := context.Background()
	for k := 1; k <= 3; k++ {
		if _, err := c.Get(ctx, k, func() ([]byte, error) { return make([]byte, 10), nil }); err != nil {
			t.Fatal(err)
		}
	}
	loading, st := c.Claim(4)
	if st != lru.Own {
		t.Fatalf("claim 4: state %d, want lru.Own", st)
	}
	c.Forget([]int{1, 3, 4, 9})
	if used, _, _, _ := c.Stats(); used != 10 {
		t.Errorf("used %d after forgetting two of three 10-byte entries, want 10", used)
	}
	for k, want := range map[int]bool{1: false, 2: true, 3: false, 4: true, 9: false} {
		if got := c.Contains(k); got != want {
			t.Errorf("contains(%d) = %v, want %v", k, got, want)
		}
	}
	waiter, st := c.Claim(4)
	if st != lru.Wait || waiter != loading {
		t.Fatalf("claim 4 while loading: state %d, want lru.Wait on the loading entry", st)
	}
	c.Fill(loading, []byte("fresh"), nil)
	if v, err := waiter.Wait(ctx); err != nil || string(v) != "fresh" {
		t.Errorf("waiter of the forgotten entry got %q, %v; want the loaded value", v, err)
	}
	if used, _, _, _ := c.Stats(); used != 10 || c.Contains(4) {
		t.Errorf("used %d, contains(4) %v after filling the forgotten entry; want 10, false", used, c.Contains(4))
	}
}

// A sequential reader of a large file leaves behind it only the last two
// kernel readahead windows or so in the chunk cache, not the whole file: the
// heap stays small, so decoded chunks reuse freed memory instead of faulting
// in fresh pages. The bytes read are still the file's, and the prefetch
// serves most of them. Reading the footer first (as zip and parquet readers
// do) and then the file from the start on the same handle works the same.
func TestSequentialReadDropsBehind(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "data")
	// Small fixed chunks (the warm page file's): what stays cached is then
	// set by the drop-behind distance, not by where large chunks end.
	rel := "spaces/" + testSpace + "/warm/warm_tier.dat"
	const size = 48 << 20
	makeTree(t, dd, []entry{{path: rel, size: size, mode: 0o644, mtime: t0}})
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: testSpace, DataDir: dd})
	want, err := os.ReadFile(filepath.Join(dd, rel))
	if err != nil {
		t.Fatal(err)
	}
	chunks := int64(size / chunk.ParamsWarm.Max)
	for _, footerFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("footer first %v", footerFirst), func(t *testing.T) {
			s, mp, logs := mount(t, tr.Reopen(t), Options{})
			f, err := os.Open(filepath.Join(mp, "snapshots", sn.ShortID(), rel))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if footerFirst {
				buf := make([]byte, 4096)
				for _, off := range []int64{size - 4096, size - 256<<10} {
					if _, err := f.ReadAt(buf, off); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := io.ReadAll(io.NewSectionReader(f, 0, size))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("bytes read through the mount differ from the source (%v)", err)
			}
			used, hits, _, _ := s.FS.CacheStats()
			t.Logf("chunk cache holds %d bytes after reading %d; %d hits for %d chunks", used, size, hits, chunks)
			span := 2 * int64(DefaultKernelReadahead)
			if limit := 2 * span; used > limit {
				t.Errorf("chunk cache holds %d bytes after a sequential read of %d, want at most %d", used, size, limit)
			}
			if hits < chunks/3 {
				t.Errorf("%d cache hits for %d chunks read sequentially: the prefetch did not run ahead of the reader", hits, chunks)
			}
			if l := logs.String(); l != "" {
				t.Errorf("unexpected log output:\n%s", l)
			}
		})
	}
}
