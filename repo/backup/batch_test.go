package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
)

// batchJob is a small-file job for path as the walk makes it, listed with
// size bytes.
func batchJob(path string, size int) smallJob {
	return smallJob{ctx: context.Background(), path: path, rel: filepath.Base(path),
		n: &repo.Node{Type: repo.NodeFile, Size: uint64(size)}, params: chunk.ParamsDefault}
}

// TestBatchReaderReadsWholeFiles: a batch of small files is read whole with
// one ring (each job carries exactly the file's bytes); a file that grew to
// its read limit, a directory listed as a file, and a file that shrank to
// nothing are handed on as the walk found them (no data, or the short
// content confirmed at its end); a file that vanished is dropped with its
// node emptied; an open that fails otherwise is the batch's error, naming
// the file. The arena comes back once every job holding it is released,
// so more batches than maxBatchArenas run without waiting.
func TestBatchReaderReadsWholeFiles(t *testing.T) {
	requireRing(t)
	dir := t.TempDir()
	b := newBatchReader()
	defer b.close()
	var batch smallBatch
	want := map[string][]byte{}
	for i := range batchFiles - 4 {
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		data := bytes.Repeat([]byte{byte(i)}, i*97)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if taken, full := b.add(&batch, batchJob(p, len(data))); !taken || full {
			t.Fatalf("file %d: taken %v, full %v", i, taken, full)
		}
		want[p] = data
	}
	grew := filepath.Join(dir, "grew")
	shrank := filepath.Join(dir, "shrank")
	gone := filepath.Join(dir, "gone")
	sub := filepath.Join(dir, "sub")
	for p, n := range map[string]int{grew: 100, shrank: 0} {
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	goneNode := &repo.Node{}
	for p, listed := range map[string]int{grew: 99, shrank: 50, gone: 10, sub: 10} {
		j := batchJob(p, listed)
		if p == gone {
			goneNode = j.n
		}
		if taken, _ := b.add(&batch, j); !taken {
			t.Fatalf("%s not taken", p)
		}
	}
	if taken, full := b.add(&batch, batchJob(filepath.Join(dir, "one more"), 1)); taken || !full {
		t.Fatalf("a %d-file batch takes one more: taken %v, full %v", batchFiles, taken, full)
	}
	if taken, full := b.add(&batch, batchJob(filepath.Join(dir, "large"), slotKept)); taken || full {
		t.Fatalf("a file above slotKept: taken %v, full %v (read by its worker)", taken, full)
	}
	a := &archiver{r: repotest.New(t, repo.InitOptions{}).Repository}
	jobs, err := b.read(context.Background(), &batch, a.openFailed)
	if err != nil || len(batch.jobs) != 0 {
		t.Fatalf("read: %v, %d jobs left in the batch", err, len(batch.jobs))
	}
	if len(jobs) != batchFiles-1 || goneNode.Type != "" {
		t.Fatalf("%d jobs, want %d; vanished file's node type %q: want it dropped", len(jobs), batchFiles-1, goneNode.Type)
	}
	for _, j := range jobs {
		switch j.path {
		case grew, sub:
			if j.data != nil || j.arena != nil {
				t.Fatalf("%s: %d bytes handed on, want none (its worker reads it)", j.path, len(j.data))
			}
		case shrank:
			if j.data == nil || len(j.data) != 0 {
				t.Fatalf("shrank to nothing: data %v", j.data)
			}
		default:
			if !bytes.Equal(j.data, want[j.path]) || j.data == nil {
				t.Fatalf("%s: %d bytes, want %d", j.path, len(j.data), len(want[j.path]))
			}
		}
	}
	if len(b.arenas) != 0 {
		t.Fatal("arena given back while its jobs hold it")
	}
	for _, j := range jobs {
		j.release()
	}
	if len(b.arenas) != 1 {
		t.Fatalf("%d free arenas after every job released, want 1", len(b.arenas))
	}

	// An open that fails for another reason than a vanished file.
	notDir := filepath.Join(dir, "f01", "x")
	b.add(&batch, batchJob(filepath.Join(dir, "f02"), 2*97))
	b.add(&batch, batchJob(notDir, 10))
	_, err = b.read(context.Background(), &batch, a.openFailed)
	if want := fmt.Sprintf("backup %s: open %[1]s: not a directory", notDir); err == nil || err.Error() != want {
		t.Fatalf("open through a file: %v, want %q", err, want)
	}
	if len(b.arenas) != 1 {
		t.Fatalf("%d free arenas after a failed batch, want 1", len(b.arenas))
	}

	// More batches than arenas, each released: none waits.
	for i := range 2 * maxBatchArenas {
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i%10))
		b.add(&batch, batchJob(p, len(want[p])))
		jobs, err := b.read(context.Background(), &batch, a.openFailed)
		if err != nil || len(jobs) != 1 || !bytes.Equal(jobs[0].data, want[p]) {
			t.Fatalf("batch %d: %v, %d jobs", i, err, len(jobs))
		}
		jobs[0].release()
	}
	if b.made != 1 {
		t.Fatalf("%d arenas made for batches read one after the other, want 1", b.made)
	}
}

// TestBatchReaderNil: a space backup has no batch reader: it takes no file
// and reads nothing.
func TestBatchReaderNil(t *testing.T) {
	var b *batchReader
	var batch smallBatch
	if taken, full := b.add(&batch, batchJob("/x", 1)); taken || full {
		t.Fatalf("nil reader: taken %v, full %v", taken, full)
	}
	if jobs, err := b.read(context.Background(), &batch, nil); jobs != nil || err != nil {
		t.Fatalf("nil reader: %v, %v", jobs, err)
	}
	b.close()
}
