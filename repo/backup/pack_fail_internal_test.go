package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
)

// packWritesFail is a repository whose pack writes all fail with ENOSPC.
type packWritesFail struct{ repo.Backend }

func (b packWritesFail) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, repo.DirData+"/") {
		return fmt.Errorf("write %s: %w", name, syscall.ENOSPC)
	}
	return b.Backend.Write(ctx, name, r, size)
}

// TestSaveFileAfterFailedPackWrite: a file whose save begins once a pack
// write has failed is not read. The walk starts one there: a file that
// failed frees its slot (a.sem) before its error cancels the walk, and a
// walk waiting for that slot takes it and starts the next file, which
// read a whole chunk buffer (8 MiB) before it saw the cancellation.
// (Before: saveFile read the whole file, then failed at its first chunk.)
func TestSaveFileAfterFailedPackWrite(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 256 << 10})
	ctx := context.Background()
	r, err := repo.Open(ctx, packWritesFail{tr.Backend}, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatal(err)
	}
	pipe := chunk.NewPipeline(2, chunk.DefaultLevel)
	defer pipe.Close()
	a := &archiver{r: r, key: r.ChunkKey(""), pipe: pipe, params: r.Config().ParamSet(), known: map[chunk.ID]struct{}{},
		prog: &repo.Progress{}, packer: r.NewPacker(ctx, ""), sem: make(chan struct{}, 1)}
	defer a.packer.Abort()
	for i := 0; a.packer.Err() == nil; i++ { // packs of one blob each until a write has failed
		d := repotest.RandomBytes(uint64(i), 300<<10)
		if err := a.packer.Add(repo.DataBlob, r.ChunkKey("").Sum(d), 0, len(d), d); err != nil {
			t.Fatal(err)
		}
	}
	perr := a.packer.Err()
	path := filepath.Join(t.TempDir(), "large")
	repotest.WriteFile(t, path, repotest.RandomBytes(1, 8<<20), 0o644)
	err = a.saveFile(ctx, path, "large", fileIn{dir: -1}, &repo.Node{Type: repo.NodeFile, Size: 8 << 20}, -1, nil)
	if !errors.Is(err, perr) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("saveFile after a failed pack write: %v, want the write's error %v", err, perr)
	}
	if read := a.prog.Bytes.Load(); read != 0 {
		t.Fatalf("%d bytes read after a pack write failed, want none", read)
	}
}
