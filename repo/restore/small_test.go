package restore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/directio"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/repo/restore/restoretest"
)

// TestRestoreManySmallFiles: a tree of many small files (the restore's
// small-file path, below directio.MinSize) and files at the boundary comes
// back byte for byte with every mode bit, mtime and extended attribute; as
// root also every owner, and a setuid bit survives the chown before it.
func TestRestoreManySmallFiles(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	modes := []os.FileMode{0o644, 0o600, 0o755, 0o444, 0o700, 0o640, 0o755 | os.ModeSetuid, 0o755 | os.ModeSetgid, 0o644 | os.ModeSticky}
	root := os.Geteuid() == 0
	for i := range 240 {
		dir := filepath.Join(src, "d"+strconv.Itoa(i%12))
		if i < 12 {
			repotest.Mkdir(t, dir, 0o755)
		}
		n := (i * 7919) % (200 << 10)
		if i%17 == 0 {
			n = 0
		}
		p := filepath.Join(dir, "f"+strconv.Itoa(i))
		mode := modes[i%len(modes)]
		if !root && mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			// Without root the restore may not set them on a file
			// whose group is not the process's.
			mode = 0o644
		}
		repotest.WriteFile(t, p, repotest.RandomBytes(uint64(i+1), n), 0o600)
		if root && i%5 == 0 {
			if err := os.Lchown(p, 1000+i, 2000+i); err != nil {
				t.Fatal(err)
			}
		}
		repotest.Chmod(t, p, mode) // after the chown, which clears setuid
		if i%11 == 0 {
			if err := unix.Lsetxattr(p, "user.memento.test", []byte("v"+strconv.Itoa(i)), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
				t.Fatal(err)
			}
		}
		repotest.Touch(t, p, time.Unix(1500000000+int64(i), int64(i)*1000003), false)
	}
	for i, n := range []int{directio.MinSize - 1, directio.MinSize, directio.MinSize + 1} {
		repotest.WriteFile(t, filepath.Join(src, "boundary"+strconv.Itoa(i)), repotest.RandomBytes(uint64(1000+i), n), 0o640)
	}
	for i := range 12 {
		repotest.Touch(t, filepath.Join(src, "d"+strconv.Itoa(i)), time.Unix(1400000000, int64(i)), false)
	}
	want := repotest.DigestTree(t, src)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	restored := filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src")
	repotest.CompareTrees(t, want, repotest.DigestTree(t, restored))
	if !root {
		return
	}
	for i := 0; i < 240; i += 5 {
		rel := filepath.Join("d"+strconv.Itoa(i%12), "f"+strconv.Itoa(i))
		st := repotest.Lstat(t, filepath.Join(restored, rel)).Sys().(*syscall.Stat_t)
		if int(st.Uid) != 1000+i || int(st.Gid) != 2000+i {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, st.Uid, st.Gid, 1000+i, 2000+i)
		}
	}
}

// TestRestoreSmallFileHoles: a small file's chunks of zeros that the
// restore does not read (a chunk of zeros met twice) or finds all zero
// leave whole blocks unwritten, holes, in the middle and at the end, and
// the bytes and size are exact.
func TestRestoreSmallFileHoles(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	c := repotest.NewCrafter(t, tr.Repository, "")
	zeros := make([]byte, 12<<10)
	data := repotest.RandomBytes(5, 5000)
	z, d := c.File("z", zeros).Content[0], c.File("d", data).Content[0]
	node := func(name string, ids ...[]byte) *repo.Node {
		var all []byte
		var n repo.Node
		for _, b := range ids {
			all = append(all, b...)
			if bytes.Equal(b, zeros) {
				n.Content = append(n.Content, z)
			} else {
				n.Content = append(n.Content, d)
			}
		}
		h := repo.Hash(blake3.Sum256(all))
		n.Name, n.Type, n.Mode, n.Size, n.BLAKE3, n.MTimeNS = name, repo.NodeFile, 0o644, uint64(len(all)), &h, 1
		return &n
	}
	sn := c.Snapshot(c.Tree(
		node("allzero", zeros, zeros), // sorted by name, as trees are
		node("middle", zeros, data, zeros, data),
		node("trailing", data, zeros, zeros),
	))
	dst := restoretest.Restore(t, tr.Repository, sn)
	cases := []struct {
		name  string
		want  []byte
		holes [][2]int64 // [start, end) that must be holes
	}{
		{"middle", cat(zeros, data, zeros, data), [][2]int64{{0, 12288}, {20480, 28672}}},
		{"trailing", cat(data, zeros, zeros), [][2]int64{{8192, 29576}}},
		{"allzero", cat(zeros, zeros), [][2]int64{{0, 24576}}},
	}
	for _, tc := range cases {
		p := filepath.Join(dst, tc.name)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %d bytes, want %d, contents differ", tc.name, len(got), len(tc.want))
		}
		for _, h := range tc.holes {
			wantHole(t, p, h[0], h[1])
		}
	}
}

// wantHole fails unless [start, end) of p holds no data (SEEK_DATA from
// start finds data only at end or beyond).
func wantHole(t *testing.T, p string, start, end int64) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next, err := unix.Seek(int(f.Fd()), start, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return // no data after start at all
	}
	if err != nil {
		t.Fatal(err)
	}
	if next < end {
		t.Errorf("%s: data at %d, want a hole over [%d, %d)", filepath.Base(p), next, start, end)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestRestoreRefusesFileDigestMismatch: a file whose chunks all verify
// but whose content does not match the tree's BLAKE3 is refused as
// corrupt, naming the file and the snapshot, and nothing is written; on the
// small-file path (gathered before the file is created) and the large one.
func TestRestoreRefusesFileDigestMismatch(t *testing.T) {
	for name, size := range map[string]int{"small": 3000, "large": directio.MinSize + 4096} {
		t.Run(name, func(t *testing.T) {
			tr := repotest.New(t, repo.InitOptions{})
			c := repotest.NewCrafter(t, tr.Repository, "")
			n := c.File("victim", repotest.RandomBytes(9, size))
			bad := repo.Hash(blake3.Sum256([]byte("something else")))
			n.BLAKE3 = &bad
			sn := c.Snapshot(c.Tree(c.File("ok", []byte("fine")), n))
			restore.WantRestoreRefused(t, tr.Repository, sn, "file victim", "content BLAKE3 does not match", "snapshot "+sn.ShortID())
		})
	}
}

// streamCounter is a Repository that counts the blobs asked of StreamBlobs.
type streamCounter struct {
	*repo.Repository
	mu    sync.Mutex
	asked map[chunk.ID]int
}

func (s *streamCounter) StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error {
	s.mu.Lock()
	for _, id := range ids {
		s.asked[id]++
	}
	s.mu.Unlock()
	return s.Repository.StreamBlobs(ctx, space, t, ids, opts, fn)
}

// TestRestoreReadsEachGroupOnce: a tree of small files backed up into
// groups (format 6) restores byte for byte, its files written by four
// workers from their groups, each group read and decoded once, by one
// worker, and no member read on its own (through the Repository's shared
// cache of groups).
func TestRestoreReadsEachGroupOnce(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	for i := range 600 {
		dir := filepath.Join(src, "d"+strconv.Itoa(i%7))
		if i < 7 {
			repotest.Mkdir(t, dir, 0o755)
		}
		repotest.WriteFile(t, filepath.Join(dir, "f"+strconv.Itoa(i)), repotest.RandomBytes(uint64(i+1), 100+(i*4099)%(20<<10)), 0o644)
	}
	same := repotest.RandomBytes(7, 3000) // one member for two files
	repotest.WriteFile(t, filepath.Join(src, "same1"), same, 0o644)
	repotest.WriteFile(t, filepath.Join(src, "same2"), same, 0o644)
	want := repotest.DigestTree(t, src)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	sc := &streamCounter{Repository: tr.Repository, asked: map[chunk.ID]int{}}
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := restore.Restore(context.Background(), sc, sn, dst, restore.RestoreOptions{Workers: 4}); err != nil {
		t.Fatal(err)
	}
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(dst, "src")))
	ids := make([]chunk.ID, 0, len(sc.asked))
	for id, n := range sc.asked {
		if n != 1 {
			t.Errorf("blob %s read %d times, want once", id.Short(), n)
		}
		ids = append(ids, id)
	}
	locs, err := tr.Locate("", ids)
	if err != nil {
		t.Fatal(err)
	}
	members := 0
	for _, l := range locs {
		if l.Flags&repo.FlagMember != 0 {
			members++
		}
	}
	if members != 0 || len(ids) == 0 || len(ids) > 20 {
		t.Fatalf("%d blobs read, %d of them members: want a few groups, no member read on its own", len(ids), members)
	}
}
