package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
)

// TestSubdirWalkedBesideLargeFile: a path backup walks a directory's
// subdirectories while a large file of that directory is still being saved
// (u-dup: a 160 MiB file beside five source trees was read and chunked
// mostly on one core while the walk below it waited). The large file's save
// waits, in the test hook, for the save of a large file in the
// subdirectory to begin; before, the subdirectory was walked only once the
// files beside it were saved, so that wait ran into its bound. The root tree
// is the one an ordered walk of the same files makes.
func TestSubdirWalkedBesideLargeFile(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	r := tr.Repository
	pipe := chunk.NewPipeline(2, chunk.DefaultLevel)
	defer pipe.Close()
	a := &archiver{r: r, key: r.ChunkKey(""), pipe: pipe, params: r.Config().ParamSet(), known: map[chunk.ID]struct{}{},
		prog: &repo.Progress{}, packer: r.NewPacker(ctx, ""), sem: make(chan struct{}, maxConcurrentFiles),
		dirSem: make(chan struct{}, maxConcurrentDirs)}
	defer a.packer.Abort()
	src := t.TempDir()
	big, inner := repotest.RandomBytes(1, 3<<20), repotest.RandomBytes(2, 2<<20)
	repotest.WriteFile(t, filepath.Join(src, "big"), big, 0o644)
	if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, filepath.Join(src, "sub", "inner"), inner, 0o644)

	const bound = 20 * time.Second // reached only when the subdirectory waits for big
	innerBegun := make(chan struct{})
	var once sync.Once
	var waited time.Duration
	a.saveHook = func(rel string) {
		switch rel {
		case "big":
			start := time.Now()
			select {
			case <-innerBegun:
			case <-time.After(bound):
			}
			waited = time.Since(start)
		case "sub/inner":
			once.Do(func() { close(innerBegun) })
		}
	}
	items := []item{{name: "big", path: filepath.Join(src, "big")}, {name: "sub", path: filepath.Join(src, "sub")}}
	root, err := a.saveItems(ctx, items, nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	if waited >= bound {
		t.Fatalf("sub/inner's save began only after big's (waited %s): the subdirectory was not walked beside the large file", waited)
	}
	// The same items walked in order (directories one at a time, each
	// after its files) make the same root tree: the same nodes.
	b := &archiver{r: r, key: r.ChunkKey(""), pipe: pipe, params: r.Config().ParamSet(), known: map[chunk.ID]struct{}{},
		prog: &repo.Progress{}, packer: r.NewPacker(ctx, ""), sem: make(chan struct{}, maxConcurrentFiles)}
	defer b.packer.Abort()
	want, err := b.saveItems(ctx, items, nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	if root != want {
		t.Fatalf("root tree %s, walked in order %s", root.Short(), want.Short())
	}
	if n := a.files.Load(); n != 2 || a.dirs.Load() != 1 {
		t.Fatalf("%d files, %d directories saved, want 2 and 1", n, a.dirs.Load())
	}
}

// TestSubdirWalkedBesideFailedFile: when a large file fails while the
// subdirectories beside it are walked, saveItems returns that file's error,
// not the cancellation it caused below. The file is replaced by a directory
// once the subdirectory's file has begun, so reading it fails.
func TestSubdirWalkedBesideFailedFile(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	r := tr.Repository
	pipe := chunk.NewPipeline(2, chunk.DefaultLevel)
	defer pipe.Close()
	a := &archiver{r: r, key: r.ChunkKey(""), pipe: pipe, params: r.Config().ParamSet(), known: map[chunk.ID]struct{}{},
		prog: &repo.Progress{}, packer: r.NewPacker(ctx, ""), sem: make(chan struct{}, maxConcurrentFiles),
		dirSem: make(chan struct{}, maxConcurrentDirs)}
	defer a.packer.Abort()
	src := t.TempDir()
	bigPath := filepath.Join(src, "big")
	repotest.WriteFile(t, bigPath, repotest.RandomBytes(1, 3<<20), 0o644)
	if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		repotest.WriteFile(t, filepath.Join(src, "sub", fmt.Sprintf("inner%d", i)), repotest.RandomBytes(uint64(2+i), 2<<20), 0o644)
	}
	innerBegun := make(chan struct{})
	var once sync.Once
	a.saveHook = func(rel string) {
		switch rel {
		case "big":
			select {
			case <-innerBegun:
			case <-time.After(20 * time.Second):
			}
			if err := os.Remove(bigPath); err != nil {
				t.Error(err)
			}
			if err := os.Mkdir(bigPath, 0o755); err != nil {
				t.Error(err)
			}
		default:
			once.Do(func() { close(innerBegun) })
		}
	}
	items := []item{{name: "big", path: bigPath}, {name: "sub", path: filepath.Join(src, "sub")}}
	_, err := a.saveItems(ctx, items, nil, "", -1)
	if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "backup "+bigPath+": ") || !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("saveItems: %v, want big's read error (is a directory)", err)
	}
}
