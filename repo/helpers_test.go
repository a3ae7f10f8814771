package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/zeebo/blake3"

	"memento/repo/backend/local"
)

// testPassword opens every repository the tests create.
const testPassword = "correct horse battery staple"

// fastKDF keeps argon2id cheap in tests; the real cost is DefaultKDF.
var fastKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// testRepo is a repository on a real local directory with its own cache dir.
type testRepo struct {
	*Repository
	dir   string // repository directory
	cache string // local index cache directory
	be    *local.Backend
}

// newTestRepo creates and opens a fresh repository under t.TempDir().
func newTestRepo(t testing.TB, opts InitOptions) *testRepo {
	t.Helper()
	base := t.TempDir()
	tr := &testRepo{dir: filepath.Join(base, "repo"), cache: filepath.Join(base, "cache")}
	be, err := local.Create(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	tr.be = be
	if opts.KDF == (KDFParams{}) {
		opts.KDF = fastKDF
	}
	if opts.Password == "" && !opts.Insecure {
		opts.Password = testPassword
	}
	if _, err := Init(context.Background(), be, opts); err != nil {
		t.Fatalf("init: %v", err)
	}
	tr.Repository = tr.reopen(t)
	return tr
}

// reopen opens the repository again, as a new process would.
func (tr *testRepo) reopen(t testing.TB) *Repository {
	t.Helper()
	r, err := Open(context.Background(), tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// backup backs up paths and fails the test on error.
func (tr *testRepo) backup(t testing.TB, opts BackupOptions) *Snapshot {
	t.Helper()
	sn, err := tr.Backup(context.Background(), opts)
	if err != nil {
		t.Fatalf("backup %v: %v", opts.Paths, err)
	}
	return sn
}

// restore restores sn into a fresh directory and returns it.
func (tr *testRepo) restore(t testing.TB, sn *Snapshot) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := RestoreBridge(context.Background(), tr.Repository, sn, dst, nil); err != nil {
		t.Fatalf("restore %s: %v", sn.ShortID(), err)
	}
	return dst
}

// packFiles returns the paths of all pack files of the repository.
func (tr *testRepo) packFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(tr.dir, DirData), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
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

// noTempLeft fails if parent holds a restore temporary directory.
func noTempLeft(t testing.TB, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".restore-") {
			t.Errorf("restore left a temporary %s in %s", e.Name(), parent)
		}
	}
}

// nodeAt walks a snapshot's trees to the node at slash-separated rel.
func (tr *testRepo) nodeAt(t testing.TB, sn *Snapshot, rel string) *Node {
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

// newLocal creates a local backend in a new directory p.
func newLocal(t testing.TB, p string) *local.Backend {
	t.Helper()
	be, err := local.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	return be
}
