package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/walreplay"
)

const testSpace = "tenant_a"

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)

// spaceTree is an Engram-like data dir with one space: every kind of node,
// several chunking regimes, odd modes and exact mtimes.
func spaceTree() []entry {
	sp := "spaces/" + testSpace + "/"
	return []entry{
		{path: "metadata.json", size: 120, mode: 0o644, mtime: t0},
		{path: sp + "hot/notes.txt", size: 5000, mode: 0o644, mtime: t0.Add(time.Second)},
		{path: sp + "cold/seg-000001.col", size: 6<<20 + 12345, mode: 0o640, mtime: t0.Add(2 * time.Second)},
		{path: sp + "warm/warm_tier.dat", size: 200 << 10, mode: 0o600, mtime: t0.Add(3 * time.Second)},
		{path: sp + "wal/wal-000001.log", size: 1<<20 + 77, mode: 0o644, mtime: t0.Add(4 * time.Second)},
		{path: sp + "empty", size: 0, mode: 0o644, mtime: t0.Add(5 * time.Second)},
		{path: sp + "bin/run.sh", size: 300, mode: 0o755, mtime: t0.Add(6 * time.Second)},
		{path: sp + "bin/setuid", size: 10, mode: 0o755 | os.ModeSetuid, mtime: t0.Add(7 * time.Second)},
		{path: sp + "link", kind: "symlink", target: "hot/notes.txt", mtime: t0.Add(8 * time.Second)},
		{path: sp + "dangling", kind: "symlink", target: "../../nowhere", mtime: t0.Add(9 * time.Second)},
		{path: sp + "deep/a/b/c/d.txt", size: 17, mode: 0o444, mtime: t0.Add(10 * time.Second)},
		{path: sp + "private", kind: "dir", mode: 0o700, mtime: t0.Add(11 * time.Second)},
		{path: sp + "private/key", size: 64, mode: 0o400, mtime: t0.Add(12 * time.Second)},
		{path: sp + "deep", kind: "dir", mode: 0o750, mtime: t0.Add(13 * time.Second)},
		{path: sp, kind: "dir", mode: 0o755, mtime: t0.Add(14 * time.Second)},
	}
}

// spaceFixture backs up spaceTree and returns the repository, the data dir and the snapshot.
func spaceFixture(t testing.TB) (*repotest.Repo, string, *repo.Snapshot) {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "data")
	makeTree(t, dd, spaceTree())
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: testSpace, DataDir: dd, Host: "host-a", Tags: []string{"nightly"}})
	return tr, dd, sn
}

func TestMountMatchesSourceAndRestore(t *testing.T) {
	tr, dd, sn := spaceFixture(t)
	_, mp, logs := mount(t, tr.Repository, Options{})
	snapDir := filepath.Join(mp, "snapshots", sn.ShortID())
	spaceRel := filepath.Join("spaces", testSpace)

	compareTrees(t, filepath.Join(dd, spaceRel), filepath.Join(snapDir, spaceRel))
	if !sameContent(t, filepath.Join(dd, "metadata.json"), filepath.Join(snapDir, "metadata.json")) {
		t.Error("metadata.json differs")
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := restore.Restore(context.Background(), tr.Repository, sn, restored, restore.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, filepath.Join(restored, spaceRel), filepath.Join(snapDir, spaceRel))

	if diff, err := exec.LookPath("diff"); err == nil {
		for _, src := range []string{filepath.Join(dd, spaceRel), filepath.Join(restored, spaceRel)} {
			out, err := exec.Command(diff, "-r", "--no-dereference", src, filepath.Join(snapDir, spaceRel)).CombinedOutput()
			if err != nil {
				t.Errorf("diff -r %s: %v\n%s", src, err, out)
			}
		}
	}
	if s := logs.String(); s != "" {
		t.Errorf("unexpected log output:\n%s", s)
	}
}

func TestLayout(t *testing.T) {
	tr, dd, sn := spaceFixture(t)
	// A second snapshot of plain paths, with another host and no tag.
	other := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{filepath.Join(dd, "metadata.json")}, Host: "host-b"})
	_, mp, _ := mount(t, tr.Repository, Options{})

	wantDir := func(p string, want ...string) {
		t.Helper()
		es, err := os.ReadDir(filepath.Join(mp, p))
		if err != nil {
			t.Fatalf("readdir %s: %v", p, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Errorf("readdir %s = %q, want %q", p, got, want)
		}
	}
	wantLink := func(p, want string) {
		t.Helper()
		got, err := os.Readlink(filepath.Join(mp, p))
		if err != nil || got != want {
			t.Errorf("readlink %s = %q, %v; want %q", p, got, err, want)
		}
		if _, err := os.Stat(filepath.Join(mp, p)); err != nil {
			t.Errorf("%s does not resolve: %v", p, err)
		}
	}
	ids := []string{sn.ShortID(), other.ShortID()}
	slices.Sort(ids)
	tname := sn.Time.UTC().Format(time.RFC3339Nano)

	wantDir("", "hosts", "snapshots", "spaces", "tags")
	wantDir("snapshots", append(ids, "latest")...)
	wantLink("snapshots/latest", other.ShortID())
	wantDir("spaces", testSpace)
	wantDir("spaces/"+testSpace, "at", "by-time", "latest", "timelines")
	wantDir("spaces/"+testSpace+"/timelines", "README")
	wantLink("spaces/"+testSpace+"/latest", "../../snapshots/"+sn.ShortID())
	wantDir("spaces/"+testSpace+"/by-time", tname)
	wantLink("spaces/"+testSpace+"/by-time/"+tname, "../../../snapshots/"+sn.ShortID())
	wantDir("spaces/"+testSpace+"/at", "README")
	wantDir("hosts", "host-a", "host-b")
	wantDir("hosts/host-a", sn.ShortID(), "identities", "latest", "spaces")
	// The host's one database: its spaces as under spaces/ (databases.go).
	wantDir("hosts/host-a/spaces", testSpace)
	wantDir("hosts/host-a/spaces/"+testSpace, "at", "by-time", "latest", "timelines")
	wantLink("hosts/host-a/spaces/"+testSpace+"/latest", "../../../../snapshots/"+sn.ShortID())
	wantLink("hosts/host-a/spaces/"+testSpace+"/by-time/"+tname, "../../../../../snapshots/"+sn.ShortID())
	wantDir("hosts/host-a/identities", "legacy")
	wantLink("hosts/host-a/identities/legacy/spaces/"+testSpace+"/latest", "../../../../../../snapshots/"+sn.ShortID())
	wantDir("hosts/host-b", other.ShortID(), "latest") // no space: no spaces/
	wantLink("hosts/host-a/"+sn.ShortID(), "../../snapshots/"+sn.ShortID())
	wantLink("hosts/host-b/latest", "../../snapshots/"+other.ShortID())
	wantDir("tags", "nightly")
	wantLink("tags/nightly/latest", "../../snapshots/"+sn.ShortID())
	wantDir("snapshots/"+other.ShortID(), "metadata.json")

	readme, err := os.ReadFile(filepath.Join(mp, "spaces", testSpace, "at", "README"))
	if err != nil || !strings.Contains(string(readme), "memento restore --at") {
		t.Errorf("at/README = %q, %v", readme, err)
	}
	if _, err := os.Stat(filepath.Join(mp, "spaces", testSpace, "at", "2026-11-21T14:29:00Z")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("at/<T> without point-in-time recovery: %v, want ENOENT", err)
	}
	for _, p := range []string{"nope", "snapshots/00000000", "spaces/nope", "hosts/nope", "snapshots/" + sn.ShortID() + "/nope"} {
		if _, err := os.Lstat(filepath.Join(mp, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lstat %s: %v, want ENOENT", p, err)
		}
	}
	fi, err := os.Stat(filepath.Join(mp, "snapshots", sn.ShortID()))
	if err != nil || !fi.ModTime().Equal(sn.Time) || fi.Mode() != os.ModeDir|0o755 {
		t.Errorf("snapshot root: %v %v, want mtime %v mode drwxr-xr-x", fi, err, sn.Time)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(mp, "snapshots", sn.ShortID()), &st); err != nil || st.Bsize != 4096 || st.Blocks == 0 {
		t.Errorf("statfs: %+v, %v", st, err)
	}
}

func TestStableInodes(t *testing.T) {
	tr, _, sn := spaceFixture(t)
	paths := []string{"", "metadata.json", "spaces/" + testSpace + "/cold/seg-000001.col", "spaces/" + testSpace + "/link", "spaces/" + testSpace + "/deep/a"}
	inodes := func(mp string) []uint64 {
		var out []uint64
		for _, p := range paths {
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(mp, "snapshots", sn.ShortID(), p), &st); err != nil {
				t.Fatal(err)
			}
			out = append(out, st.Ino)
		}
		return out
	}
	_, mp1, _ := mount(t, tr.Repository, Options{})
	first, second := inodes(mp1), inodes(mp1)
	if !slices.Equal(first, second) {
		t.Errorf("inodes changed between two stats: %v then %v", first, second)
	}
	if u := slices.Compact(slices.Sorted(slices.Values(first))); len(u) != len(paths) {
		t.Errorf("inodes not distinct: %v", first)
	}
	if want := inoFor(sn.ID.String(), "/metadata.json"); first[1] != want {
		t.Errorf("inode of metadata.json = %d, want %d", first[1], want)
	}
	_, mp2, _ := mount(t, tr.Reopen(t), Options{})
	if again := inodes(mp2); !slices.Equal(first, again) {
		t.Errorf("inodes differ across mounts: %v then %v", first, again)
	}
}

func TestWritesGetEROFS(t *testing.T) {
	tr, _, sn := spaceFixture(t)
	_, mp, _ := mount(t, tr.Repository, Options{})
	root := filepath.Join(mp, "snapshots", sn.ShortID())
	file := filepath.Join(root, "metadata.json")
	dir := filepath.Join(root, "spaces")
	tests := []struct {
		name string
		op   func() error
	}{
		{"write", func() error {
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"read-write open", func() error { f, err := os.OpenFile(file, os.O_RDWR, 0); closeIf(f); return err }},
		{"truncate", func() error { return os.Truncate(file, 0) }},
		{"create", func() error { f, err := os.Create(filepath.Join(dir, "new")); closeIf(f); return err }},
		{"create at top", func() error { f, err := os.Create(filepath.Join(mp, "new")); closeIf(f); return err }},
		{"mkdir", func() error { return os.Mkdir(filepath.Join(dir, "d"), 0o755) }},
		{"mkdir in snapshots", func() error { return os.Mkdir(filepath.Join(mp, "snapshots", "d"), 0o755) }},
		{"unlink", func() error { return os.Remove(file) }},
		{"rmdir", func() error { return syscall.Rmdir(dir) }},
		{"rename", func() error { return os.Rename(file, filepath.Join(root, "renamed")) }},
		{"chmod", func() error { return os.Chmod(file, 0o777) }},
		{"chown", func() error { return os.Chown(file, 1, 1) }},
		{"chtimes", func() error { return os.Chtimes(file, time.Now(), time.Now()) }},
		{"symlink", func() error { return os.Symlink("x", filepath.Join(dir, "l")) }},
		{"link", func() error { return os.Link(file, filepath.Join(dir, "h")) }},
		{"setxattr", func() error { return syscall.Setxattr(file, "user.x", []byte("1"), 0) }},
		{"unlink latest", func() error { return os.Remove(filepath.Join(mp, "snapshots", "latest")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("%s: %v, want EROFS", tt.name, err)
			}
		})
	}
}

func closeIf(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// fileNodeOf finds a file's node in a snapshot, to learn its chunk IDs.
func fileNodeOf(t testing.TB, r *repo.Repository, sn *repo.Snapshot, rel string) *repo.Node {
	t.Helper()
	id := sn.Root
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		tree, err := r.LoadTree(context.Background(), sn.Space, id)
		if err != nil {
			t.Fatal(err)
		}
		n := tree.Find(part)
		if n == nil {
			t.Fatalf("%s: no %s", rel, part)
		}
		if i == len(parts)-1 {
			return n
		}
		id = *n.Subtree
	}
	return nil
}

// flipBlobByte damages the stored bytes of one blob in its pack file.
func flipBlobByte(t testing.TB, tr *repotest.Repo, space string, id chunk.ID) {
	t.Helper()
	locs, err := tr.Index().Lookup(space, []chunk.ID{id})
	if err != nil || len(locs) != 1 {
		t.Fatalf("locate %s: %v %v", id.Short(), locs, err)
	}
	loc := locs[id]
	h := fmt.Sprintf("%x", loc.Pack)
	pack := filepath.Join(tr.Dir, "data", h[:2], h)
	f, err := os.OpenFile(pack, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := int64(loc.Offset) + int64(loc.Length)/2
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptChunkGivesEIO(t *testing.T) {
	tr, dd, sn := spaceFixture(t)
	// The warm page file has fixed-size chunks, so the layout is known.
	rel := "spaces/" + testSpace + "/warm/warm_tier.dat"
	n := fileNodeOf(t, tr.Repository, sn, rel)
	if len(n.Content) < 3 { // the bad chunk must have good ones on both sides
		t.Fatalf("want a file of several chunks, got %d", len(n.Content))
	}
	const badIndex = 5
	bad := n.Content[badIndex]
	flipBlobByte(t, tr, testSpace, bad)
	sizes, err := tr.ChunkSizes(testSpace, n.Content)
	if err != nil {
		t.Fatal(err)
	}
	offs := prefixSums(sizes)
	badStart, badEnd := offs[badIndex], offs[badIndex+1]

	_, mp, logs := mount(t, tr.Repository, Options{})
	want, err := os.ReadFile(filepath.Join(dd, rel))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(mp, "snapshots", sn.ShortID(), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name    string
		off     int64
		n       int
		wantEIO bool
	}{
		{"first chunk", 0, 4096, false},
		{"in the bad chunk", badStart + 100, 4096, true},
		{"straddling into the bad chunk", badStart - 10, 4096, true},
		// The kernel reads whole pages: start past the page the bad chunk ends in.
		{"after the bad chunk", (badEnd + 8191) &^ 4095, 4096, false},
		{"last bytes", int64(len(want)) - 10, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, tt.n)
			got, err := f.ReadAt(buf, tt.off)
			if tt.wantEIO {
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("read at %d: %d bytes, %v; want EIO", tt.off, got, err)
				}
				return
			}
			if err != nil && !(errors.Is(err, io.EOF) && got == tt.n) {
				t.Fatalf("read at %d: %v", tt.off, err)
			}
			if !bytes.Equal(buf[:got], want[tt.off:tt.off+int64(got)]) {
				t.Fatalf("read at %d: wrong bytes", tt.off)
			}
		})
	}
	if _, err := io.ReadAll(f); !errors.Is(err, syscall.EIO) {
		t.Errorf("reading the whole file: %v, want EIO", err)
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "read failed") {
			line = l
			break
		}
	}
	if !contains(line, "snapshot="+sn.ShortID(), "file=/"+rel, "chunk="+bad.String(), "corrupt=true") {
		t.Errorf("log line %q does not name snapshot %s, file /%s and chunk %s", line, sn.ShortID(), rel, bad)
	}
}

func TestConcurrentReaders(t *testing.T) {
	tr, dd, sn := spaceFixture(t)
	// A small cache forces evictions and refetches while readers overlap.
	_, mp, logs := mount(t, tr.Repository, Options{CacheSize: 3 << 20})
	sp := "spaces/" + testSpace + "/"
	files := []string{sp + "cold/seg-000001.col", sp + "warm/warm_tier.dat", sp + "wal/wal-000001.log", sp + "hot/notes.txt", "metadata.json"}
	want := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dd, f))
		if err != nil {
			t.Fatal(err)
		}
		want[f] = b
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 20 {
				name := files[rng.IntN(len(files))]
				if g%2 == 0 {
					name = files[0] // half the readers share one file
				}
				f, err := os.Open(filepath.Join(mp, "snapshots", sn.ShortID(), name))
				if err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					got, err := io.ReadAll(f)
					if err != nil || !bytes.Equal(got, want[name]) {
						errs <- fmt.Errorf("reader %d: %s: whole read differs (%v)", g, name, err)
					}
				} else {
					w := want[name]
					for range 10 {
						off := rng.IntN(len(w) + 1)
						buf := make([]byte, rng.IntN(300<<10)+1)
						n, err := f.ReadAt(buf, int64(off))
						if (err != nil && !errors.Is(err, io.EOF)) || !bytes.Equal(buf[:n], w[off:min(len(w), off+len(buf))]) {
							errs <- fmt.Errorf("reader %d: %s at %d: wrong bytes (%v)", g, name, off, err)
						}
					}
				}
				f.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := logs.String(); s != "" {
		t.Errorf("unexpected log output:\n%s", s)
	}
}

func TestNewSnapshotAppearsWithoutRemount(t *testing.T) {
	tr, dd, sn := spaceFixture(t)
	_, mp, _ := mount(t, tr.Repository, Options{RefreshInterval: 200 * time.Millisecond})
	if got, _ := os.Readlink(filepath.Join(mp, "spaces", testSpace, "latest")); got != "../../snapshots/"+sn.ShortID() {
		t.Fatalf("latest = %q", got)
	}
	// Another process backs up a changed space.
	if err := os.WriteFile(filepath.Join(dd, "spaces", testSpace, "hot", "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r2 := tr.Reopen(t)
	sn2, err := backup.Backup(context.Background(), r2, backup.BackupOptions{Space: testSpace, DataDir: dd})
	if err != nil {
		t.Fatal(err)
	}
	// Looking the new snapshot up by name works at once (a miss syncs, at most once a second).
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(mp, "snapshots", sn2.ShortID(), "spaces", testSpace, "hot", "new.txt"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new snapshot %s not visible: %v", sn2.ShortID(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // let the kernel's one-second entry cache expire
	es, err := os.ReadDir(filepath.Join(mp, "snapshots"))
	if err != nil || len(es) != 3 {
		t.Errorf("snapshots/ has %d entries (%v), want 2 snapshots and latest", len(es), err)
	}
	for _, p := range []string{"snapshots/latest", "spaces/" + testSpace + "/latest"} {
		got, _ := os.Readlink(filepath.Join(mp, p))
		if !strings.HasSuffix(got, sn2.ShortID()) {
			t.Errorf("%s = %q, want the new snapshot %s", p, got, sn2.ShortID())
		}
	}
}

func TestUnmountWithOpenReader(t *testing.T) {
	tr, dd, sn := spaceFixture(t)
	s, mp, _ := mount(t, tr.Repository, Options{})
	rel := "spaces/" + testSpace + "/cold/seg-000001.col"
	f, err := os.Open(filepath.Join(mp, "snapshots", sn.ShortID(), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatal(err)
	}
	type result struct {
		lazy bool
		err  error
	}
	done := make(chan result, 1)
	go func() {
		lazy, err := s.Unmount(500 * time.Millisecond)
		done <- result{lazy, err}
	}()
	select {
	case res := <-done:
		if res.err != nil || !res.lazy {
			t.Fatalf("unmount with an open file: lazy=%v err=%v, want a lazy unmount", res.lazy, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("unmount hung while a reader had a file open")
	}
	if _, ok := mountType(mp); ok {
		t.Error("still mounted after unmount")
	}
	// The reader keeps what it has; closing it ends the detached mount.
	want, _ := os.ReadFile(filepath.Join(dd, rel))
	if !bytes.Equal(buf, want[:1000]) {
		t.Error("bytes read before unmount differ")
	}
	f.Close()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Error("server still running 10s after the last file was closed")
	}
}

func TestMountpointErrors(t *testing.T) {
	requireFUSE(t)
	tr := repotest.New(t, repo.InitOptions{})
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, mp, _ := mount(t, tr.Repository, Options{})
	tests := []struct {
		name, path string
		want       error
		msg        string
	}{
		{"missing", filepath.Join(dir, "nope"), ErrMountpoint, "does not exist (create it with 'mkdir -p"},
		{"not a directory", file, ErrMountpoint, "is not a directory"},
		{"already mounted", mp, ErrBusy, "is already mounted (fuse.memento); unmount it first ('memento umount " + mp + "')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Mount(tr.Repository, tt.path, Options{})
			if err == nil {
				s.Unmount(time.Second)
				t.Fatal("mount succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("mount %s: %v, want %v containing %q", tt.path, err, tt.want, tt.msg)
			}
		})
	}
	if _, err := Unmount(dir); !errors.Is(err, ErrNotMounted) {
		t.Errorf("unmount of a plain directory: %v, want ErrNotMounted", err)
	}
}

func TestPointInTimeView(t *testing.T) {
	tr, dd, sn := spaceFixture(t)
	memories := []byte(`{"id":1,"text":"hello"}` + "\n" + `{"id":2,"text":"world"}` + "\n")
	var calls []int64
	var mu sync.Mutex
	pit := func(ctx context.Context, space string, _ uint32, at int64) (*PointInTime, error) {
		mu.Lock()
		calls = append(calls, at)
		mu.Unlock()
		if at < sn.Time.UnixNano() {
			return nil, fmt.Errorf("space %s at %d: before the first snapshot", space, at)
		}
		return &PointInTime{Base: sn, Tree: sn.Root, Files: []VirtualFile{{Name: "memories.jsonl", Size: int64(len(memories)), Data: bytes.NewReader(memories)}}}, nil
	}
	_, mp, logs := mount(t, tr.Repository, Options{PointInTime: pit, ParseInstant: walreplay.ParseTime})
	at := filepath.Join(mp, "spaces", testSpace, "at")
	instant := sn.Time.Add(time.Minute).UTC().Format(time.RFC3339)
	got, err := os.ReadFile(filepath.Join(at, instant, "memories.jsonl"))
	if err != nil || !bytes.Equal(got, memories) {
		t.Fatalf("memories.jsonl = %q, %v", got, err)
	}
	compareTrees(t, filepath.Join(dd, "spaces", testSpace), filepath.Join(at, instant, "spaces", testSpace))
	es, err := os.ReadDir(filepath.Join(at, instant))
	if err != nil || len(es) != 3 {
		t.Errorf("at/%s lists %v (%v), want metadata.json, spaces, memories.jsonl", instant, es, err)
	}
	ns := fmt.Sprint(sn.Time.Add(time.Hour).UnixNano())
	if _, err := os.Stat(filepath.Join(at, ns, "memories.jsonl")); err != nil {
		t.Errorf("at/<unix ns>: %v", err)
	}
	early := sn.Time.Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	if _, err := os.Stat(filepath.Join(at, early)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unrecoverable instant: %v, want ENOENT", err)
	}
	if !contains(logs.String(), "point in time cannot be recovered", "before the first snapshot") {
		t.Errorf("no log line says why %s is unrecoverable:\n%s", early, logs)
	}
	if _, err := os.Stat(filepath.Join(at, "yesterday")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("malformed instant: %v, want ENOENT", err)
	}
	readme, _ := os.ReadFile(filepath.Join(at, "README"))
	if strings.Contains(string(readme), "cannot recover") {
		t.Errorf("README says PITR is missing although it is configured:\n%s", readme)
	}
}
