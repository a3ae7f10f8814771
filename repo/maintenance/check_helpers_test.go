package maintenance

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/verify"
	"memento/walreplay"
)

// testPassword opens every repository the tests create.
const testPassword = "correct horse battery staple"

// fastKDF keeps argon2id cheap in tests; the real cost is DefaultKDF.
var fastKDF = repo.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// testRepo is a repository on a real local directory with its own cache dir.
type testRepo struct {
	*repo.Repository
	dir   string // repository directory
	cache string // local index cache directory
	be    *local.Backend
}

// newTestRepo creates and opens a fresh repository under t.TempDir().
func newTestRepo(t testing.TB, opts repo.InitOptions) *testRepo {
	t.Helper()
	base := t.TempDir()
	tr := &testRepo{dir: filepath.Join(base, "repo"), cache: filepath.Join(base, "cache")}
	be, err := local.Create(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	tr.be = be
	if opts.KDF == (repo.KDFParams{}) {
		opts.KDF = fastKDF
	}
	if opts.Password == "" && !opts.Insecure {
		opts.Password = testPassword
	}
	if _, err := repo.Init(context.Background(), be, opts); err != nil {
		t.Fatalf("init: %v", err)
	}
	tr.Repository = tr.reopen(t)
	return tr
}

// reopen opens the repository again, as a new process would.
func (tr *testRepo) reopen(t testing.TB) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), tr.be, repo.Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// backup backs up paths and fails the test on error.
func (tr *testRepo) backup(t testing.TB, opts repo.BackupOptions) *repo.Snapshot {
	t.Helper()
	sn, err := tr.Backup(context.Background(), opts)
	if err != nil {
		t.Fatalf("backup %v: %v", opts.Paths, err)
	}
	return sn
}

// restore restores sn into a fresh directory and returns it.
func (tr *testRepo) restore(t testing.TB, sn *repo.Snapshot) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := tr.Restore(context.Background(), sn, dst, repo.RestoreOptions{}); err != nil {
		t.Fatalf("restore %s: %v", sn.ShortID(), err)
	}
	return dst
}

// entry describes one file system object as a restore must reproduce it.
type entry struct {
	Type   string // "file", "dir", "symlink"
	Mode   fs.FileMode
	Size   int64
	MTime  int64 // ns; directories included
	Sum    string
	Target string
}

func (e entry) String() string {
	return fmt.Sprintf("%s mode=%v size=%d mtime=%d b3=%.16s target=%q", e.Type, e.Mode, e.Size, e.MTime, e.Sum, e.Target)
}

// digestTree describes every object below root (root itself excluded), keyed by
// slash-separated relative path. Two trees are restored faithfully when their
// digests are equal.
func digestTree(t testing.TB, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), MTime: st.Mtim.Nano()}
		switch {
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type, e.Mode = "symlink", 0
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			e.Type, e.Size, e.Sum = "file", fi.Size(), fileSum(t, p)
		default:
			e.Type = "other"
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatalf("digest %s: %v", root, err)
	}
	return out
}

// fileSum is the hex BLAKE3-256 of a file, streamed.
func fileSum(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// compareTrees fails the test with every difference between two digests.
func compareTrees(t testing.TB, want, got map[string]entry) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q (%v)", p, w))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%q:\n\twant %v\n\tgot  %v", p, w, g))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %q (%v)", p, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d differences:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

// writeFile writes data to p, making parent directories.
func writeFile(t testing.TB, p string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatal(err)
	}
}

// randomBytes returns n deterministic pseudo-random, incompressible bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := 0; i+8 <= n; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i], b[i+1], b[i+2], b[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

// nodeAt walks a snapshot's trees to the node at slash-separated rel.
func (tr *testRepo) nodeAt(t testing.TB, sn *repo.Snapshot, rel string) *repo.Node {
	t.Helper()
	id := sn.Root
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		tree, err := tr.LoadTree(context.Background(), sn.Space, id)
		if err != nil {
			t.Fatal(err)
		}
		n := tree.Find(part)
		if n == nil {
			t.Fatalf("snapshot %s has no %s", sn.ShortID(), strings.Join(parts[:i+1], "/"))
		}
		if i == len(parts)-1 {
			return n
		}
		id = *n.Subtree
	}
	return nil
}

// engramEpoch is where the test WALs' timestamps start.
const engramEpoch = int64(1_790_000_000_000_000_000)

// writeEngramSpace writes an Engram data dir holding one space: n WAL
// entries (stores and updates of n/2 ids, a delete every 11th) in segments
// of about segSize bytes, the three tiers, and checkpoint.json at cp.
func writeEngramSpace(t testing.TB, dataDir, space string, n int, segSize int64, cp uint64) {
	t.Helper()
	sd := filepath.Join(dataDir, "spaces", space)
	w, err := walreplay.OpenWriter(filepath.Join(sd, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("mem-%05d", i%(n/2+1))
		e := &walreplay.Entry{Seq: uint64(i), TimestampNS: engramEpoch + int64(i)*1000, Type: walreplay.EpisodeStore}
		switch {
		case i%11 == 0 && i > 11:
			e.Type, e.Payload = walreplay.MemoryDelete, walreplay.AppendDelete(nil, fmt.Sprintf("mem-%05d", (i-5)%(n/2+1)))
		default:
			if i > n/2 {
				e.Type = walreplay.MemoryUpdate
			}
			emb := make([]float32, 16)
			for k := range emb {
				emb[k] = float32(i*k%97) / 97
			}
			e.Payload = walreplay.AppendRecord(nil, &walreplay.Record{ID: id, Confidence: float32(i%100) / 100, Embedding: emb,
				Content: strings.Repeat(fmt.Sprintf("memory %d ", i), 1+i%5)})
		}
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sd, "hot", "stats.json"), []byte(`{"entries":`+fmt.Sprint(n)+`}`), 0o644)
	writeFile(t, filepath.Join(sd, "warm", "warm_tier.dat"), randomBytes(uint64(len(space)), 96<<10), 0o644)
	writeFile(t, filepath.Join(sd, "cold", "seg-000001.col"), randomBytes(7, 160<<10), 0o644)
	writeFile(t, filepath.Join(sd, "checkpoint.json"), fmt.Appendf(nil, `{"sequence":%d,"timestamp_ns":%d}`, cp, engramEpoch+int64(cp)*1000), 0o644)
	writeFile(t, filepath.Join(dataDir, "metadata.json"), []byte(`{"format":"engram-data-dir","version":1,"spaces":[{"id":"`+space+`"}]}`), 0o644)
}

// backupSpace backs up a space as the CLI does, recording its WAL range and
// state digest in the manifest.
func (tr *testRepo) backupSpace(t testing.TB, dataDir, space string) *repo.Snapshot {
	t.Helper()
	rec := repo.NewEngramRecorder(context.Background(), dataDir, space)
	defer rec.Close()
	opts := repo.BackupOptions{Space: space, DataDir: dataDir}
	rec.Attach(&opts)
	sn, err := tr.Backup(context.Background(), opts)
	if err != nil {
		t.Fatalf("backup space %s: %v", space, err)
	}
	return sn
}

// verifyIDs verifies snapshots and fails the test if verification itself fails.
func verifyIDs(t testing.TB, r *repo.Repository, level repo.Level, ids ...chunk.ID) []*verify.Verdict {
	t.Helper()
	vds, err := r.VerifySnapshots(context.Background(), ids, repo.VerifyOptions{Level: level, TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("verify %s: %v", level, err)
	}
	return vds
}

// wantPass requires every verdict to have passed.
func wantPass(t testing.TB, vds ...*verify.Verdict) {
	t.Helper()
	for _, vd := range vds {
		if !vd.Passed {
			t.Fatalf("snapshot %s %s: want pass, got findings:\n%s", vd.Short(), vd.Level, findingsText(vd))
		}
	}
}

// wantFinding requires a failed verdict with a finding at level whose text
// contains every one of want.
func wantFinding(t testing.TB, vd *verify.Verdict, level repo.Level, want ...string) {
	t.Helper()
	if vd.Passed {
		t.Fatalf("snapshot %s %s passed, want a finding at %s containing %q", vd.Short(), vd.Level, level, want)
	}
	for _, f := range vd.Findings {
		if f.Level != level {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(f.String(), w)
		}
		if ok {
			return
		}
	}
	t.Fatalf("snapshot %s: no %s finding containing %q in:\n%s", vd.Short(), level, want, findingsText(vd))
}

func findingsText(vd *verify.Verdict) string {
	var b strings.Builder
	for _, f := range vd.Findings {
		b.WriteString("\t" + f.String() + "\n")
	}
	return b.String()
}

// spaceFixture is a repository with one Engram space snapshot and one
// snapshot of plain paths.
type spaceFixture struct {
	tr      *testRepo
	dataDir string
	space   *repo.Snapshot
	paths   *repo.Snapshot
}

func newSpaceFixture(t *testing.T, packSize int64) *spaceFixture {
	t.Helper()
	tr := newTestRepo(t, repo.InitOptions{PackSize: packSize})
	dd := filepath.Join(t.TempDir(), "engram")
	writeEngramSpace(t, dd, "tenant_01", 600, 16<<10, 450)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "big"), randomBytes(3, 3<<20), 0o644)
	writeFile(t, filepath.Join(src, "dir", "small"), []byte("small file"), 0o600)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o644)
	if err := os.Symlink("big", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	return &spaceFixture{tr: tr, dataDir: dd, space: tr.backupSpace(t, dd, "tenant_01"), paths: tr.backup(t, repo.BackupOptions{Paths: []string{src}})}
}

// repoFiles lists a repository's files of one kind ("" = all), relative.
func repoFiles(t testing.TB, dir, kind string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, kind), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func chmod(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// corruptFixture is a repository with one snapshot of src/{victim,other}.
type corruptFixture struct {
	tr     *testRepo
	sn     *repo.Snapshot
	victim chunk.ID // first chunk of src/victim
	pack   string   // path of the pack holding it
	loc    struct{ off, length int64 }
}

func newCorruptFixture(t *testing.T, insecure bool) *corruptFixture {
	t.Helper()
	tr := newTestRepo(t, repo.InitOptions{Insecure: insecure})
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "victim"), randomBytes(5, 1<<20), 0o644)
	writeFile(t, filepath.Join(src, "other"), []byte("unharmed"), 0o644)
	sn := tr.backup(t, repo.BackupOptions{Paths: []string{src}})
	n := tr.nodeAt(t, sn, "src/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[n.Content[0]]
	fx := &corruptFixture{tr: tr, sn: sn, victim: n.Content[0], pack: filepath.Join(tr.dir, filepath.FromSlash(repo.PackName(loc.Pack)))}
	fx.loc.off, fx.loc.length = int64(loc.Offset), int64(loc.Length)
	return fx
}

// flip inverts one byte of a repository file in place.
func flip(t *testing.T, p string, off int64) {
	t.Helper()
	chmod(t, p, 0o600)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// lockInfo is the JSON of a lock file (the repository's private lockInfo).
type lockInfo struct {
	Version      int       `json:"version"`
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	Time         time.Time `json:"time"`
	Exclusive    bool      `json:"exclusive"`
	Command      string    `json:"command,omitempty"`
	BootID       string    `json:"boot_id,omitempty"`
	PIDNamespace string    `json:"pid_ns,omitempty"`
}

// writeTestLock stores li as a lock file whose mtime (the storage's clock)
// is age ago.
func (tr *testRepo) writeTestLock(t *testing.T, li lockInfo, age time.Duration) string {
	t.Helper()
	id, err := tr.SaveFile(context.Background(), repo.DirLocks, "lock", li) // what the repository's writeLock does
	if err != nil {
		t.Fatal(err)
	}
	name := repo.FileName(repo.DirLocks, id)
	if age != 0 {
		at := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(tr.dir, filepath.FromSlash(name)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	return name
}
