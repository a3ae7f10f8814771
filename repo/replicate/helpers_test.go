package replicate

// Test helpers copied from repo/helpers_test.go (issue 13: the integrator
// unifies them), adapted to package replicate.

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/zeebo/blake3"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backup"
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
func (tr *testRepo) backup(t testing.TB, opts backup.BackupOptions) *repo.Snapshot {
	t.Helper()
	sn, err := backup.Backup(context.Background(), tr.Repository, opts)
	if err != nil {
		t.Fatalf("backup %v: %v", opts.Paths, err)
	}
	return sn
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

// newLocal creates a local backend in a new directory p.
func newLocal(t testing.TB, p string) *local.Backend {
	t.Helper()
	be, err := local.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	return be
}
