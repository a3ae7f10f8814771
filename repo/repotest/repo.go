package repotest

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backend/local"
)

// Password opens every repository the tests create.
const Password = "correct horse battery staple"

// FastKDF keeps argon2id cheap in tests; the real cost is repo.DefaultKDF.
var FastKDF = repo.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// Repo is a repository on a real local directory with its own cache dir,
// created under the test's temporary directory.
type Repo struct {
	*repo.Repository
	Dir     string // repository directory
	Cache   string // local index cache directory
	Backend *local.Backend
}

// New creates and opens a fresh repository under t.TempDir(). Zero KDF
// parameters mean FastKDF, an empty password (unless Insecure) Password.
func New(t testing.TB, opts repo.InitOptions) *Repo {
	t.Helper()
	base := t.TempDir()
	tr := &Repo{Dir: filepath.Join(base, "repo"), Cache: filepath.Join(base, "cache")}
	be, err := local.Create(tr.Dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() }) // its open packs, before TempDir goes
	tr.Backend = be
	if opts.KDF == (repo.KDFParams{}) {
		opts.KDF = FastKDF
	}
	if opts.Password == "" && !opts.Insecure {
		opts.Password = Password
	}
	if _, err := repo.Init(context.Background(), be, opts); err != nil {
		t.Fatalf("init: %v", err)
	}
	tr.Repository = tr.Reopen(t)
	return tr
}

// Reopen opens the repository again, as a new process would.
func (tr *Repo) Reopen(t testing.TB) *repo.Repository {
	t.Helper()
	return tr.ReopenWith(t, repo.Options{})
}

// ReopenWith opens the repository again with opts; the password and the
// cache directory are the test repository's.
func (tr *Repo) ReopenWith(t testing.TB, opts repo.Options) *repo.Repository {
	t.Helper()
	opts.Password, opts.CacheDir = Password, tr.Cache
	r, err := repo.Open(context.Background(), tr.Backend, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// PackFiles returns the paths of all pack files of the repository.
func (tr *Repo) PackFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(tr.Dir, repo.DirData), func(p string, d fs.DirEntry, err error) error {
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

// NodeAt walks a snapshot's trees to the node at slash-separated rel.
func (tr *Repo) NodeAt(t testing.TB, sn *repo.Snapshot, rel string) *repo.Node {
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

// SetConfigParams rewrites the repository's config as an older binary wrote
// it: chunk_params set to set, or absent for 0. Reopen to use it.
func (tr *Repo) SetConfigParams(t testing.TB, set chunk.ParamSet) {
	t.Helper()
	tr.editConfig(t, func(m map[string]any) {
		if set == 0 {
			delete(m, "chunk_params")
		} else {
			m["chunk_params"] = int(set)
		}
	})
}

// SetFormat rewrites the repository's config as made by a binary of format
// version v (an older one: what the config holds is otherwise the same).
// Reopen to use it.
func (tr *Repo) SetFormat(t testing.TB, v int) {
	t.Helper()
	tr.editConfig(t, func(m map[string]any) { m["version"] = v })
}

// editConfig rewrites the repository's config through edit of its JSON.
func (tr *Repo) editConfig(t testing.TB, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(tr.Dir, repo.ConfigName)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
