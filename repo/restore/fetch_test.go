package restore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// TestRestoreUsesSecondCopy: two backups that did not know of each other
// stored the same chunks in two packs. With the first copy of a chunk
// damaged, restore reads the second one and the file comes back whole; with
// both damaged it fails naming the first.
func TestRestoreUsesSecondCopy(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	data := repotest.RandomBytes(11, 3<<20)
	repotest.WriteFile(t, filepath.Join(src, "f"), data, 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	// A second backup that cannot see the first one's index files (as two
	// hosts backing up at once) stores every chunk again, in other packs.
	idx := filepath.Join(tr.Dir, repo.DirIndex)
	hidden := filepath.Join(t.TempDir(), "index")
	if err := os.Rename(idx, hidden); err != nil {
		t.Fatal(err)
	}
	repotest.Mkdir(t, idx, 0o755)
	other := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "cache2"), Backend: tr.Backend}
	other.Repository = other.Reopen(t)
	backuptest.Backup(t, other.Repository, backup.BackupOptions{Paths: []string{src}})
	entries, err := os.ReadDir(hidden)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(hidden, e.Name()), filepath.Join(idx, e.Name())); err != nil {
			t.Fatal(err)
		}
	}

	r := tr.Reopen(t)
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := tr.NodeAt(t, sn, "src/f")
	all, err := r.Index().LookupAll(repo.StorageSpace(""), n.Content)
	if err != nil {
		t.Fatal(err)
	}
	victim := n.Content[len(n.Content)/2]
	locs := all[victim]
	if len(locs) != 2 || locs[0].Pack == locs[1].Pack {
		t.Fatalf("setup: chunk %s has locations %+v, want two packs", victim.Short(), locs)
	}
	packPath := func(l index.Location) string { return filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(l.Pack))) }
	first, _ := r.Locate("", []chunk.ID{victim})
	if first[victim] != locs[0] {
		t.Fatalf("setup: Lookup gives %+v, LookupAll %+v first", first[victim], locs[0])
	}
	repotest.FlipByte(t, packPath(locs[0]), int64(locs[0].Offset)+int64(locs[0].Length)/2)

	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(context.Background(), r, sn, dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore with a damaged first copy: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "src", "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored file: %d bytes (%v), equal=%v", len(got), err, bytes.Equal(got, data))
	}

	repotest.FlipByte(t, packPath(locs[1]), int64(locs[1].Offset)+int64(locs[1].Length)/2)
	WantRestoreRefused(t, r, sn, "pack "+repo.ShortHex(locs[0].Pack), victim.Short(), "file src/f")
}

// TestPlanFetch: a repeated chunk of zeros is not read at all; every other
// chunk is, in file order (repo.StreamBlobs cuts them into runs of pack
// neighbours: repo's TestBlobRunCut).
func TestPlanFetch(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	rs := &restorer{r: tr.Repository, sn: &repo.Snapshot{}}
	packA := [32]byte{1}
	zero := rs.zeroID(16 << 10)
	locs := map[chunk.ID]index.Location{
		{1}:  {Pack: packA, Offset: 0, Length: 100, RawLength: 100},
		{2}:  {Pack: packA, Offset: 100, Length: 100, RawLength: 100},
		zero: {Pack: packA, Offset: 200, Length: 40, RawLength: 16 << 10},
	}
	cases := []struct {
		name string
		ids  []chunk.ID
		want []string // per item: "zero" or the chunk read
	}{
		{"chunks", []chunk.ID{{1}, {2}, {1}}, []string{"1", "2", "1"}},
		{"zero once is read", []chunk.ID{{1}, zero}, []string{"1", "z"}},
		{"zero twice is not", []chunk.ID{zero, {1}, zero}, []string{"zero", "1", "zero"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, it := range rs.planFetch(tc.ids, locs) {
				switch {
				case it.zero > 0:
					got = append(got, "zero")
				case it.id == zero:
					got = append(got, "z")
				default:
					got = append(got, itoa(uint64(it.id[0])))
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("plan %v, want %v", got, tc.want)
			}
		})
	}
	if want := tr.ChunkKey("").Sum(make([]byte, 16<<10)); zero != want {
		t.Fatalf("zeroID = %s, want %s", zero.Short(), want.Short())
	}
}

// WantRestoreRefused restores sn and requires a repo.CorruptError mentioning
// every string in want, and that neither the target nor a temporary was left
// behind. It lives here, in the package's internal tests, because they cannot
// import restoretest (which imports restore); it is exported so that the
// external tests (restore_test) call the same one.
func WantRestoreRefused(t *testing.T, r *repo.Repository, sn *repo.Snapshot, want ...string) error {
	t.Helper()
	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	_, err := Restore(context.Background(), r, sn, target, RestoreOptions{})
	if err == nil {
		t.Fatal("restore of damaged data succeeded")
	}
	var ce *repo.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("restore error is not a CorruptError: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("restore error %q does not mention %q", err, w)
		}
	}
	if _, serr := os.Lstat(target); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("restore left the target behind: %v", serr)
	}
	repotest.NoTempLeft(t, parent)
	return err
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestZerosAllocateNothing: the chunks of zeros a restore writes without
// reading them (a sparse image's holes, thousands of 512 KiB chunks) come
// from one never-written array, not a new buffer each: allocating and
// clearing 3.5 GiB for a 4 GiB image was a fifth of its restore's CPU.
func TestZerosAllocateNothing(t *testing.T) {
	for _, n := range []int{1, 64 << 10, 512 << 10, chunk.MaxChunkSize} {
		z := zeros(n)
		if len(z) != n || !chunk.IsZero(z) {
			t.Fatalf("zeros(%d): %d bytes, all zero %v", n, len(z), chunk.IsZero(z))
		}
		if a := testing.AllocsPerRun(10, func() { _ = zeros(n) }); a != 0 {
			t.Errorf("zeros(%d) allocates %.0f times per call, want 0", n, a)
		}
	}
}

// TestZerosCannotBeWrittenInto: the chunks of zeros given to the restore's
// callbacks have no room past their length, so an append to one (a caller
// gathering a small file's chunks) copies them and every later chunk of
// zeros stays zeros.
func TestZerosCannotBeWrittenInto(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 512 << 10} {
		z := zeros(n)
		if cap(z) != n {
			t.Errorf("zeros(%d) has capacity %d, want %d", n, cap(z), n)
		}
		_ = append(z, 0xff)
		if !chunk.IsZero(zeroChunk[:]) {
			t.Fatalf("an append to zeros(%d) wrote into zeroChunk", n)
		}
	}
}
