package repo

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"memento/repo/backend/local"
)

// The internal tests of package repo cannot import repotest (it imports
// repo), so they keep this minimal test repository; the external tests
// (package repo_test) use repotest, backup and restore.

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
	r, err := Open(context.Background(), tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	tr.Repository = r
	return tr
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

func chmod(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
