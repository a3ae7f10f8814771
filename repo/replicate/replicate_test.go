package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// recordingBackend wraps a destination to observe and disturb replication:
// it records the order of writes and deletes, can fail every write after
// the first failAfter, and can flip a byte of what it stores.
type recordingBackend struct {
	repo.Backend
	mu        sync.Mutex
	writes    []string
	deletes   []string
	failAfter int // < 0: never
	flip      string
}

var errInjected = errors.New("injected write failure")

func (b *recordingBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	b.mu.Lock()
	if b.failAfter >= 0 && len(b.writes) >= b.failAfter {
		b.mu.Unlock()
		return errInjected
	}
	b.writes = append(b.writes, name)
	flip := b.flip != "" && strings.HasPrefix(name, b.flip)
	b.mu.Unlock()
	if flip {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		data[len(data)/2] ^= 1
		r = bytes.NewReader(data)
	}
	return b.Backend.Write(ctx, name, r, size)
}

func (b *recordingBackend) Delete(ctx context.Context, name string) error {
	b.mu.Lock()
	b.deletes = append(b.deletes, name)
	b.mu.Unlock()
	return b.Backend.Delete(ctx, name)
}

// replicaFixture is a source repository with a few snapshots of known trees.
type replicaFixture struct {
	src   *repotest.Repo
	trees map[string]map[string]repotest.Entry // snapshot ID -> digest of what it holds
}

func newReplicaFixture(t *testing.T, snapshots int) *replicaFixture {
	t.Helper()
	f := &replicaFixture{src: repotest.New(t, repo.InitOptions{PackSize: 1 << 20}), trees: map[string]map[string]repotest.Entry{}}
	data := t.TempDir()
	for i := range snapshots {
		repotest.WriteFile(t, filepath.Join(data, "d", fmt.Sprintf("f%d.bin", i)), repotest.RandomBytes(uint64(i+1), 700<<10+i), 0o644)
		repotest.WriteFile(t, filepath.Join(data, "d", "small.txt"), []byte(fmt.Sprintf("version %d\n", i)), 0o644)
		sn := backuptest.Backup(t, f.src.Repository, backup.BackupOptions{Paths: []string{filepath.Join(data, "d")}, Host: "h1"})
		f.trees[sn.ID.String()] = repotest.DigestTree(t, filepath.Join(data))
	}
	return f
}

// checkReplica opens the repository on be as a new host would, and restores
// every snapshot the fixture made, byte for byte.
func (f *replicaFixture) checkReplica(t *testing.T, be repo.Backend, wantAll bool) int {
	t.Helper()
	r, err := repo.Open(context.Background(), be, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open replica %s: %v", be.Location(), err)
	}
	sns, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if wantAll && len(sns) != len(f.trees) {
		t.Fatalf("replica has %d snapshots, want %d", len(sns), len(f.trees))
	}
	for _, sn := range sns {
		want, ok := f.trees[sn.ID.String()]
		if !ok {
			t.Fatalf("replica has unknown snapshot %s", sn.ShortID())
		}
		dst := filepath.Join(t.TempDir(), "r")
		if _, err := restore.Restore(context.Background(), r, sn, dst, restore.RestoreOptions{}); err != nil {
			t.Fatalf("restore %s from replica: %v", sn.ShortID(), err)
		}
		// The fixture's tree is the data dir as of that backup; the restore holds d/.
		got := repotest.DigestTree(t, dst)
		for p, e := range want {
			if p == "d" {
				continue
			}
			if g := got[p]; g.Sum != e.Sum || g.Size != e.Size {
				t.Fatalf("snapshot %s: %s restored as %v, want %v", sn.ShortID(), p, g, e)
			}
		}
	}
	return len(sns)
}

// replicaFiles lists every file of a backend but locks, with sizes.
func replicaFiles(t *testing.T, be repo.Backend) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	if err := be.List(context.Background(), "", func(name string, size int64) error {
		if !strings.HasPrefix(name, "locks/") {
			out[name] = size
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReplicateLocal(t *testing.T) {
	f := newReplicaFixture(t, 3)
	ctx := context.Background()
	// A lock held on the source is not copied.
	lk, err := f.src.Lock(ctx, false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	dst := &recordingBackend{Backend: repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica")), failAfter: -1}
	st, err := Replicate(ctx, f.src.Backend, dst, ReplicateOptions{Parallel: 3, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	srcFiles := replicaFiles(t, f.src.Backend)
	var total int64
	for _, s := range srcFiles {
		total += s
	}
	if st.Files != int64(len(srcFiles)) || st.Bytes != total || st.Skipped != 0 || st.Verified != st.Files {
		t.Fatalf("stats %+v; source has %d files, %d bytes", st, len(srcFiles), total)
	}
	if got := replicaFiles(t, dst); fmt.Sprint(got) != fmt.Sprint(srcFiles) {
		t.Fatalf("replica files differ:\n%v\n%v", got, srcFiles)
	}
	checkWriteOrder(t, dst.writes)
	f.checkReplica(t, dst, true)

	// A rerun copies nothing.
	st, err = Replicate(ctx, f.src.Backend, dst, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 0 || st.Skipped != int64(len(srcFiles)) || st.SkippedBytes != total {
		t.Fatalf("rerun stats %+v", st)
	}
}

// checkWriteOrder asserts the phase order: no file is written before every
// file of an earlier phase.
func checkWriteOrder(t *testing.T, writes []string) {
	t.Helper()
	last := -1
	for _, name := range writes {
		p, skip := replicationPhase(name)
		if skip {
			t.Errorf("%s was replicated", name)
		}
		if p < last {
			t.Fatalf("%s (phase %d) written after a file of phase %d; order: %v", name, p, last, writes)
		}
		last = p
	}
}

func TestReplicationPhase(t *testing.T) {
	tests := []struct {
		name  string
		phase int
		skip  bool
	}{
		{"keys/ab", phaseKeys, false},
		{"config", phaseConfig, false},
		{"data/ab/abcd", phaseData, false},
		{"index/ab", phaseIndex, false},
		{"wal/0011/c/ab", phaseWAL, false},
		{"snapshots/ab", phaseSnapshots, false},
		{"logs/ab", phaseLogs, false},
		{"damaged/ab", phaseOther, false},
		{"locks/ab", 0, true},
		{"configx", phaseOther, false},
	}
	for _, tt := range tests {
		p, skip := replicationPhase(tt.name)
		if p != tt.phase || skip != tt.skip {
			t.Errorf("replicationPhase(%q) = %d, %v; want %d, %v", tt.name, p, skip, tt.phase, tt.skip)
		}
	}
}

// An interrupted replication leaves a valid repository at every point, and
// a rerun completes it.
func TestReplicateInterrupted(t *testing.T) {
	f := newReplicaFixture(t, 3)
	n := len(replicaFiles(t, f.src.Backend))
	for _, after := range []int{0, 1, 2, 3, n / 2, n - 2, n - 1} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			dst := &recordingBackend{Backend: repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica")), failAfter: after}
			_, err := Replicate(context.Background(), f.src.Backend, dst, ReplicateOptions{Parallel: 1})
			if !errors.Is(err, errInjected) {
				t.Fatalf("replicate with failing writes: %v", err)
			}
			if _, err := dst.Stat(context.Background(), repo.ConfigName); err == nil {
				// Whatever snapshots made it across are complete.
				f.checkReplica(t, dst.Backend, false)
			}
			dst.failAfter = -1
			st, err := Replicate(context.Background(), f.src.Backend, dst, ReplicateOptions{Parallel: 2})
			if err != nil {
				t.Fatal(err)
			}
			if st.Skipped != int64(after) || st.Files != int64(n-after) {
				t.Fatalf("resume after %d: %+v", after, st)
			}
			f.checkReplica(t, dst, true)
		})
	}
}

func TestReplicateVerifyCatchesDamage(t *testing.T) {
	f := newReplicaFixture(t, 1)
	dst := &recordingBackend{Backend: repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica")), failAfter: -1, flip: "index/"}
	_, err := Replicate(context.Background(), f.src.Backend, dst, ReplicateOptions{Verify: true})
	var ce *repo.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("verify of a damaged copy: %v", err)
	}
	// The damaged file was removed and no snapshot refers to it yet.
	for name := range replicaFiles(t, dst) {
		if strings.HasPrefix(name, "index/") || strings.HasPrefix(name, "snapshots/") {
			t.Fatalf("%s is in the replica after a failed verify", name)
		}
	}
	dst.flip = ""
	if _, err := Replicate(context.Background(), f.src.Backend, dst, ReplicateOptions{Verify: true}); err != nil {
		t.Fatal(err)
	}
	f.checkReplica(t, dst, true)
}

func TestReplicateRefusesOtherRepository(t *testing.T) {
	a := repotest.New(t, repo.InitOptions{})
	b := repotest.New(t, repo.InitOptions{})
	before := replicaFiles(t, b.Backend)
	_, err := Replicate(context.Background(), a.Backend, b.Backend, ReplicateOptions{})
	if !errors.Is(err, ErrReplicaMismatch) {
		t.Fatalf("replicate into another repository: %v", err)
	}
	if after := replicaFiles(t, b.Backend); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("the other repository was changed")
	}
	empty := repotest.NewLocal(t, filepath.Join(t.TempDir(), "empty"))
	if _, err := Replicate(context.Background(), empty, b.Backend, ReplicateOptions{}); !errors.Is(err, repo.ErrNoRepository) {
		t.Fatalf("replicate from an empty location: %v", err)
	}
}

// --delete removes what the source pruned, referrers first, and leaves a
// valid repository.
func TestReplicateDelete(t *testing.T) {
	f := newReplicaFixture(t, 2)
	ctx := context.Background()
	dst := &recordingBackend{Backend: repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica")), failAfter: -1}
	if _, err := Replicate(ctx, f.src.Backend, dst, ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The destination gained files the source never had (as after a prune
	// of the source): a snapshot manifest, an index file and a pack.
	extra := []string{"snapshots/" + strings.Repeat("1", 64), "index/" + strings.Repeat("2", 64), "data/33/" + strings.Repeat("3", 64), "damaged/" + strings.Repeat("4", 64)}
	for _, name := range extra {
		if err := dst.Backend.Write(ctx, name, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Replicate(ctx, f.src.Backend, dst, ReplicateOptions{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Deleted != 4 || st.Files != 0 {
		t.Fatalf("stats %+v", st)
	}
	order := strings.Join(dst.deletes, " ")
	if order != strings.Join([]string{extra[3], extra[0], extra[1], extra[2]}, " ") {
		t.Fatalf("deletion order %v, want other, snapshots, index, data", dst.deletes)
	}
	if got, want := replicaFiles(t, dst), replicaFiles(t, f.src.Backend); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replica differs from source after --delete")
	}
	f.checkReplica(t, dst, true)
}

// --bwlimit holds the average rate within 10 %.
func TestReplicateBandwidthLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	ctx := context.Background()
	src := repotest.NewLocal(t, filepath.Join(t.TempDir(), "src"))
	if err := src.Write(ctx, repo.ConfigName, strings.NewReader("{}"), 2); err != nil {
		t.Fatal(err)
	}
	const total, rate = 3 << 19, 1 << 20
	for i := range 6 {
		data := repotest.RandomBytes(uint64(i), total/6)
		if err := src.Write(ctx, fmt.Sprintf("data/%02d/%064d", i, i), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	a := repotest.NewLocal(t, filepath.Join(t.TempDir(), "a"))
	b := repotest.NewLocal(t, filepath.Join(t.TempDir(), "b"))
	start := time.Now()
	// Two destinations share the limit: 3 MiB at 1 MiB/s.
	stats, err := ReplicateAll(ctx, src, []repo.Backend{a, b}, ReplicateOptions{Parallel: 3, BytesPerSecond: rate})
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start).Seconds()
	got := float64(stats[0].Bytes+stats[1].Bytes) / d
	if got > rate*1.10 || got < rate*0.90 {
		t.Fatalf("average %.0f B/s over %.2fs, want %d ±10%%", got, d, rate)
	}
	t.Logf("average %.3f MiB/s over %.2fs", got/(1<<20), d)
}

// A plain `rsync -a --ignore-existing` of a local repository is a valid
// replica, because every file is immutable and written atomically.
func TestRsyncIsAReplica(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsync is required in CI")
		}
		t.Skip("no rsync")
	}
	f := newReplicaFixture(t, 2)
	dstDir := filepath.Join(t.TempDir(), "replica")
	for range 2 { // the second run copies nothing and changes nothing
		out, err := exec.Command(rsync, "-a", "--ignore-existing", "--exclude=/locks/", f.src.Dir+"/", dstDir+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("rsync: %v\n%s", err, out)
		}
	}
	be, err := local.Open(dstDir)
	if err != nil {
		t.Fatal(err)
	}
	f.checkReplica(t, be, true)
	// memento replicate agrees: nothing is missing.
	st, err := Replicate(context.Background(), f.src.Backend, be, ReplicateOptions{Verify: true})
	if err != nil || st.Files != 0 {
		t.Fatalf("replicate after rsync: %+v, %v", st, err)
	}
}

func TestRateLimiter(t *testing.T) {
	var nilLim *rateLimiter
	if err := nilLim.wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	l := newRateLimiter(10 << 20)
	start := time.Now()
	for range 40 {
		if err := l.wait(context.Background(), 64<<10); err != nil {
			t.Fatal(err)
		}
	}
	// 2.5 MiB at 10 MiB/s: 250 ms, less the 50 ms burst allowance.
	if d := time.Since(start); d < 190*time.Millisecond || d > 400*time.Millisecond {
		t.Fatalf("40 x 64 KiB at 10 MiB/s took %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx, 100<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestSourceFileReads(t *testing.T) {
	ctx := context.Background()
	be := repotest.NewLocal(t, filepath.Join(t.TempDir(), "src"))
	data := repotest.RandomBytes(9, 300<<10+7)
	if err := be.Write(ctx, "data/00/x", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	f := &sourceFile{ctx: ctx, be: be, name: "data/00/x", size: int64(len(data))}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	// Parallel ReadAt of parts, as a multipart upload does.
	var wg sync.WaitGroup
	parts := make([][]byte, 4)
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sr := io.NewSectionReader(f, int64(i)*(100<<10), 100<<10)
			parts[i], _ = io.ReadAll(sr)
		}()
	}
	wg.Wait()
	if !bytes.Equal(bytes.Join(parts, nil), data) {
		t.Fatal("parallel parts differ")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	again, _ := io.ReadAll(f)
	if !bytes.Equal(again, data) {
		t.Fatal("read after Seek(0) differs")
	}
	buf := make([]byte, 20)
	if n, err := f.ReadAt(buf, int64(len(data))-10); n != 10 || err != io.EOF || !bytes.Equal(buf[:10], data[len(data)-10:]) {
		t.Fatalf("ReadAt past the end: %d, %v", n, err)
	}
	gone := &sourceFile{ctx: ctx, be: be, name: "data/00/y", size: 5}
	if _, err := io.ReadAll(gone); !errors.Is(err, fs.ErrNotExist) || !errors.Is(gone.err, fs.ErrNotExist) {
		t.Fatalf("missing source: %v / %v", err, gone.err)
	}
}
