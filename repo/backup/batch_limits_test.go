package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
)

// requireRing skips where io_uring is missing (a batch is then never read:
// every small file goes to its worker); in CI nothing skips.
func requireRing(t *testing.T) {
	t.Helper()
	r, err := newFileRing(4)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no io_uring here (%v): the batched reads are not tested", err)
		}
		t.Skipf("no io_uring here (%v)", err)
	}
	r.close()
}

// TestBatchReaderAllVanished: a batch whose every file vanished between
// the walk's lstat and the batch's open has no read to run: read drops the
// files (nodes emptied) and returns no job, without touching the ring, and
// the arena is free again. (A first version indexed the empty read list
// and the backup panicked: found in review.)
func TestBatchReaderAllVanished(t *testing.T) {
	requireRing(t)
	b := newBatchReader()
	defer b.close()
	var batch smallBatch
	j := batchJob(filepath.Join(t.TempDir(), "gone"), 10)
	if taken, _ := b.add(&batch, j); !taken {
		t.Fatal("not taken")
	}
	a := &archiver{r: repotest.New(t, repo.InitOptions{}).Repository}
	jobs, err := b.read(context.Background(), &batch, a.openFailed)
	if err != nil || len(jobs) != 0 || j.n.Type != "" {
		t.Fatalf("read: %v, %d jobs, node type %q; want no error, no job, the node dropped", err, len(jobs), j.n.Type)
	}
	if len(b.arenas) != 1 {
		t.Fatalf("%d free arenas after a batch of vanished files, want 1", len(b.arenas))
	}
}

// TestBatchReaderOutOfDescriptors: a batch that runs out of file
// descriptors while it opens its files (EMFILE: the batch holds up to
// batchFiles open at once, a process with a low limit has fewer) reads
// the files it opened and hands the others to their workers without
// data, in order, and does not fail: without batches the workers open one
// file at a time.
func TestBatchReaderOutOfDescriptors(t *testing.T) {
	requireRing(t)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := newBatchReader()
	defer b.close()
	var batch smallBatch
	var paths []string
	for i := range 24 {
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 100+i), 0o644); err != nil {
			t.Fatal(err)
		}
		if taken, _ := b.add(&batch, batchJob(p, 100+i)); !taken {
			t.Fatalf("%s not taken", p)
		}
		paths = append(paths, p)
	}
	ring := b.takeRing() // made before the limit: the ring is a descriptor too
	b.putRing(ring)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(len(fds) + 6) // room for about 5 of the 24
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	a := &archiver{r: nil}
	jobs, rerr := b.read(context.Background(), &batch, a.openFailed)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if rerr != nil {
		t.Fatalf("read with few descriptors: %v, want no error", rerr)
	}
	if len(jobs) != len(paths) {
		t.Fatalf("%d jobs back, want %d", len(jobs), len(paths))
	}
	withData := 0
	for i, j := range jobs {
		if j.path != paths[i] {
			t.Fatalf("job %d is %s, want %s", i, j.path, paths[i])
		}
		if j.data != nil {
			withData++
			if want := bytes.Repeat([]byte{byte(i)}, 100+i); !bytes.Equal(j.data, want) {
				t.Fatalf("%s: %d bytes read, want the file's %d", j.path, len(j.data), len(want))
			}
			j.arena.release()
		}
	}
	if withData == 0 || withData == len(paths) {
		t.Fatalf("%d of %d files read by the batch: want some, not all (the limit)", withData, len(paths))
	}
}
