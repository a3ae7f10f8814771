package index

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// Env vars that turn the test binary into a helper process (see TestMain).
const (
	helperPath = "MEMENTO_INDEX_HELPER_PATH"
	helperSeed = "MEMENTO_INDEX_HELPER_SEED"
)

const workerFiles = 15 // index files each worker merges

func TestMain(m *testing.M) {
	if path := os.Getenv(helperPath); path != "" {
		seed, _ := strconv.ParseUint(os.Getenv(helperSeed), 10, 64)
		if err := worker(path, seed); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	cleanupBench()
	os.Exit(code)
}

// worker does what a backup does to the cache, with its own handle: merge
// index files, look its blobs up, load a space's IDs, record a snapshot.
func worker(path string, seed uint64) error {
	ix, err := Open(path)
	if err != nil {
		return err
	}
	if err := ix.Bind("repo-concurrent"); err != nil {
		return err
	}
	for i := range workerFiles {
		packs := makePacks("shared", seed*1000+uint64(i), 2, 100)
		name := fmt.Sprintf("index/w%d-%02d", seed, i)
		if err := ix.AddFile(name, packs); err != nil {
			return err
		}
		ids := idsOf(packs)
		got, err := ix.Lookup("shared", ids)
		if err != nil {
			return err
		}
		if len(got) != len(ids) {
			return fmt.Errorf("%s: lookup found %d of %d blobs", name, len(got), len(ids))
		}
		if i%5 == 0 {
			if _, err := ix.SpaceIDs("shared"); err != nil {
				return err
			}
			if _, err := ix.LoadedFiles(); err != nil {
				return err
			}
		}
	}
	return ix.PutSnapshots([]SnapshotEntry{{ID: fmt.Sprintf("snap-%d", seed), Time: time.Now(), Space: "shared"}})
}

// TestConcurrentProcessesAndGoroutines runs two helper processes and two
// goroutines (each with its own handle) on one cache file at once: no
// deadlock, no lost update, no error.
func TestConcurrentProcessesAndGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "index.db")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	for _, seed := range []uint64{1, 2} {
		g.Go(func() error {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperPath+"="+path, helperSeed+"="+strconv.FormatUint(seed, 10))
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("process %d: %v: %s", seed, err, out)
			}
			return nil
		})
	}
	for _, seed := range []uint64{3, 4} {
		g.Go(func() error { return worker(path, seed) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ix.LoadedFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4*workerFiles {
		t.Fatalf("%d files loaded, want %d", len(files), 4*workerFiles)
	}
	var all []PackInfo
	for _, seed := range []uint64{1, 2, 3, 4} {
		for i := range workerFiles {
			all = append(all, makePacks("shared", seed*1000+uint64(i), 2, 100)...)
		}
	}
	got, err := ix.Lookup("shared", idsOf(all))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(all) * 100; len(got) != want {
		t.Fatalf("%d blobs found, want %d", len(got), want)
	}
	snaps, _ := ix.Snapshots()
	if len(snaps) != 4 {
		t.Fatalf("%d snapshots, want 4", len(snaps))
	}
}

// Readers hold a shared lock: many goroutines may read at once while
// writers queue; all of it must finish.
func TestConcurrentReadersAndWriter(t *testing.T) {
	ix := openTemp(t)
	base := makePacks("s", 1, 4, 100)
	if err := ix.AddFile("index/base", base); err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	for r := range 4 {
		g.Go(func() error {
			for range 20 {
				got, err := ix.Lookup("s", idsOf(base))
				if err != nil {
					return err
				}
				if len(got) != 400 {
					return fmt.Errorf("reader %d: %d blobs", r, len(got))
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		for i := range 20 {
			if err := ix.AddFile(fmt.Sprintf("index/%d", i), makePacks("s", uint64(100+i), 1, 50)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if files, _ := ix.LoadedFiles(); len(files) != 21 {
		t.Fatalf("%d files", len(files))
	}
}
