package repo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// openCounter counts the ranged reads a repository makes.
type openCounter struct {
	repo.Backend
	opens atomic.Int64
}

func (b *openCounter) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b.opens.Add(1)
	return b.Backend.Open(ctx, name, off, length)
}

// batchFixture backs up a 1 MiB warm page file (32 chunks of 32 KiB, every
// other one compressible) and reopens the repository on a backend that
// counts reads. insecure: blobs are MAC'd, not encrypted (another in-place
// opening).
func batchFixture(t *testing.T, insecure bool) (*repotest.Repo, *repo.Repository, *openCounter, []chunk.ID, []byte) {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{Insecure: insecure})
	data := repotest.RandomBytes(11, 1<<20)
	cs := int(chunk.ParamsWarm.Max)
	for i := 0; i < len(data); i += 2 * cs {
		clear(data[i : i+cs/2]) // half the chunks compress
	}
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "warm", "warm_tier.dat"), data, 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	ids := tr.NodeAt(t, sn, "src/warm/warm_tier.dat").Content
	if len(ids) != len(data)/cs {
		t.Fatalf("%d chunks, want %d of %d bytes", len(ids), len(data)/cs, cs)
	}
	oc := &openCounter{Backend: tr.Backend}
	r, err := repo.Open(context.Background(), oc, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatal(err)
	}
	oc.opens.Store(0)
	return tr, r, oc, ids, data
}

type batchResult struct {
	data []byte
	err  error
}

func readDataBlobs(t *testing.T, ctx context.Context, r *repo.Repository, ids []chunk.ID) ([]batchResult, error) {
	t.Helper()
	out := make([]batchResult, len(ids))
	calls := 0
	seen := make([]bool, len(ids))
	err := r.ReadDataBlobs(ctx, "", ids, func(i int, data []byte, err error) {
		if seen[i] {
			t.Fatalf("fn called twice for id %d", i)
		}
		seen[i] = true
		calls++
		out[i] = batchResult{data, err}
	})
	if calls != len(ids) {
		t.Fatalf("fn called %d times for %d ids", calls, len(ids))
	}
	return out, err
}

// A file's chunks come back verified, in order, with one read per run of
// neighbours rather than one per chunk; repeated and reordered IDs work.
func TestReadDataBlobs(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		t.Run(fmt.Sprintf("insecure=%v", insecure), func(t *testing.T) { testReadDataBlobs(t, insecure) })
	}
}

func testReadDataBlobs(t *testing.T, insecure bool) {
	_, r, oc, ids, data := batchFixture(t, insecure)
	res, err := readDataBlobs(t, context.Background(), r, ids)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for i, b := range res {
		if b.err != nil {
			t.Fatalf("chunk %d: %v", i, b.err)
		}
		got = append(got, b.data...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("chunks do not add up to the file")
	}
	if n := oc.opens.Load(); n > 2 {
		t.Errorf("%d ranged reads for %d neighbouring chunks, want at most 2", n, len(ids))
	}
	// The slices are the caller's: changing one changes nothing else.
	res[0].data[0] ^= 1
	again, _ := readDataBlobs(t, context.Background(), r, ids[:1])
	if again[0].data[0] != data[0] {
		t.Error("a caller's change to a returned slice leaked into a later read")
	}

	last := len(ids) - 1
	odd := []chunk.ID{ids[5], ids[5], ids[3], ids[last], ids[4]}
	res, err = readDataBlobs(t, context.Background(), r, odd)
	if err != nil {
		t.Fatal(err)
	}
	cs := int(chunk.ParamsWarm.Max)
	for k, want := range []int{5, 5, 3, last, 4} {
		if res[k].err != nil || !bytes.Equal(res[k].data, data[want*cs:(want+1)*cs]) {
			t.Errorf("id %d (chunk %d): %v or wrong bytes", k, want, res[k].err)
		}
	}
}

// A damaged blob fails alone, with the error ReadBlob gives; an ID the index
// does not know fails alone; a cancelled context fails every ID.
func TestReadDataBlobsErrors(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		t.Run(fmt.Sprintf("insecure=%v", insecure), func(t *testing.T) { testReadDataBlobsErrors(t, insecure) })
	}
}

func testReadDataBlobsErrors(t *testing.T, insecure bool) {
	tr, r, _, ids, data := batchFixture(t, insecure)
	locs, err := r.Locate("", ids[7:8])
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[ids[7]]
	flip(t, filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack))), int64(loc.Offset+loc.Length/2))
	res, err := readDataBlobs(t, context.Background(), r, ids)
	if err != nil {
		t.Fatal(err)
	}
	_, want := r.ReadBlob(context.Background(), "", repo.DataBlob, ids[7])
	var ce *repo.CorruptError
	if !errors.As(res[7].err, &ce) || want == nil || res[7].err.Error() != want.Error() {
		t.Errorf("damaged chunk: %v, want %v", res[7].err, want)
	}
	cs := int(chunk.ParamsWarm.Max)
	for i, b := range res {
		if i != 7 && (b.err != nil || !bytes.Equal(b.data, data[i*cs:(i+1)*cs])) {
			t.Errorf("chunk %d: %v or wrong bytes beside a damaged one", i, b.err)
		}
	}

	unknown := chunk.ID{1, 2, 3}
	res, err = readDataBlobs(t, context.Background(), r, []chunk.ID{ids[0], unknown, ids[1]})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[1].err, repo.ErrNotFound) || !strings.Contains(res[1].err.Error(), unknown.Short()) {
		t.Errorf("unknown id: %v, want ErrNotFound naming %s", res[1].err, unknown.Short())
	}
	if res[0].err != nil || res[2].err != nil || !bytes.Equal(res[2].data, data[cs:2*cs]) {
		t.Errorf("known ids beside an unknown one: %v, %v", res[0].err, res[2].err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err = readDataBlobs(t, ctx, r, ids[:10])
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: returned %v", err)
	}
	for i, b := range res {
		if !errors.Is(b.err, context.Canceled) || b.data != nil {
			t.Errorf("cancelled: id %d got %v", i, b.err)
		}
	}
}
