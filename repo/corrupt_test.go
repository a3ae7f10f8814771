package repo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// corruptFixture is a repository with one snapshot of src/{victim,other}.
type corruptFixture struct {
	tr     *repotest.Repo
	sn     *repo.Snapshot
	victim chunk.ID // first chunk of src/victim
	pack   string   // path of the pack holding it
	loc    struct{ off, length int64 }
}

func newCorruptFixture(t *testing.T, insecure bool) *corruptFixture {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{Insecure: insecure})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "victim"), repotest.RandomBytes(5, 1<<20), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "other"), []byte("unharmed"), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	n := tr.NodeAt(t, sn, "src/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[n.Content[0]]
	fx := &corruptFixture{tr: tr, sn: sn, victim: n.Content[0], pack: filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack)))}
	fx.loc.off, fx.loc.length = int64(loc.Offset), int64(loc.Length)
	return fx
}

// TestFlippedByteInPack: one flipped bit in a data blob makes ReadBlob fail,
// naming the pack and the blob; the other blobs still read. (That restore
// refuses it too, naming the pack, the file and the snapshot, and writes
// nothing is repo/restore's TestRestoreRefusesFlippedByteInPack.)
func TestFlippedByteInPack(t *testing.T) {
	for _, mode := range []struct {
		name     string
		insecure bool
	}{{"encrypted", false}, {"insecure", true}} {
		t.Run(mode.name, func(t *testing.T) {
			fx := newCorruptFixture(t, mode.insecure)
			packShort := filepath.Base(fx.pack)[:8]
			flip(t, fx.pack, fx.loc.off+fx.loc.length/2)

			_, err := fx.tr.ReadBlob(context.Background(), "", repo.DataBlob, fx.victim)
			var ce *repo.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("ReadBlob of a damaged blob: %v, want a CorruptError", err)
			}
			if ce.What != "pack "+packShort || !strings.Contains(ce.Detail, fx.victim.Short()) {
				t.Errorf("CorruptError names %q / %q, want pack %s and blob %s", ce.What, ce.Detail, packShort, fx.victim.Short())
			}

			// The other file's blob still reads.
			n := fx.tr.NodeAt(t, fx.sn, "src/other")
			b, err := fx.tr.ReadBlob(context.Background(), "", repo.DataBlob, n.Content[0])
			if err != nil || string(b) != "unharmed" {
				t.Errorf("undamaged blob: %q, %v", b, err)
			}
		})
	}
}

// TestTruncatedPack: a pack cut short is reported as corruption by index
// rebuild, naming the pack. (Restore's report of it is repo/restore's
// TestRestoreRefusesTruncatedPack.)
func TestTruncatedPack(t *testing.T) {
	fx := newCorruptFixture(t, false)
	fi := lstat(t, fx.pack)
	chmod(t, fx.pack, 0o600)
	if err := os.Truncate(fx.pack, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	packShort := filepath.Base(fx.pack)[:8]

	// Without index files, rebuild has to read every pack's header.
	dropIndexFiles(t, fx.tr)
	res, err := fx.tr.RebuildIndex(context.Background())
	if err != nil {
		t.Fatalf("rebuild with a truncated pack: %v", err)
	}
	if len(res.Damaged) != 1 || !strings.Contains(res.Damaged[0], "pack "+packShort) {
		t.Errorf("rebuild reports damaged %q, want pack %s", res.Damaged, packShort)
	}
}

// TestFlippedByteInPackHeader: the header is authenticated, so rebuild refuses
// a pack whose header was touched, and says which.
func TestFlippedByteInPackHeader(t *testing.T) {
	fx := newCorruptFixture(t, false)
	fi := lstat(t, fx.pack)
	flip(t, fx.pack, fi.Size()-repo.PackTrailerSize-20)
	dropIndexFiles(t, fx.tr)
	res, err := fx.tr.RebuildIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	short := filepath.Base(fx.pack)[:8]
	if len(res.Damaged) != 1 || !strings.Contains(res.Damaged[0], "pack "+short+": header cannot be authenticated") {
		t.Fatalf("damaged = %q", res.Damaged)
	}
	// With the pack's blobs gone from the index, restore cannot find them.
	if _, err := restore.Restore(context.Background(), fx.tr.Repository, fx.sn, filepath.Join(t.TempDir(), "x"), restore.RestoreOptions{}); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("restore after the only pack was refused: %v, want ErrNotFound", err)
	}
}

// TestFlippedByteInSnapshot: a damaged manifest is refused by hash before any
// key is used.
func TestFlippedByteInSnapshot(t *testing.T) {
	fx := newCorruptFixture(t, false)
	p := filepath.Join(fx.tr.Dir, filepath.FromSlash(repo.FileName(repo.DirSnapshots, fx.sn.ID)))
	flip(t, p, 40)
	_, err := fx.tr.FindSnapshot(context.Background(), fx.sn.ID.String())
	if !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), "content does not match its name") {
		t.Fatalf("FindSnapshot of a damaged manifest: %v", err)
	}
}

// TestWrongPassword: no key opens, the error says so and names the repository.
func TestWrongPassword(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	_, err := repo.Open(context.Background(), tr.Backend, repo.Options{Password: "not it", CacheDir: tr.Cache})
	if !errors.Is(err, repo.ErrWrongPassword) || !strings.Contains(err.Error(), tr.Dir) {
		t.Fatalf("open with a wrong password: %v", err)
	}
	if _, err := repo.Open(context.Background(), tr.Backend, repo.Options{Password: "", CacheDir: tr.Cache}); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("open with an empty password: %v", err)
	}
	if _, err := repo.Init(context.Background(), tr.Backend, repo.InitOptions{Password: "x", KDF: repotest.FastKDF}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("init over an existing repository: %v", err)
	}
	base := t.TempDir()
	be := repotest.NewLocal(t, filepath.Join(base, "r2"))
	if _, err := repo.Init(context.Background(), be, repo.InitOptions{KDF: repotest.FastKDF}); err == nil || !strings.Contains(err.Error(), "empty password") {
		t.Fatalf("init with an empty password: %v", err)
	}
}

// TestInsecureMode: without encryption the data is in the clear in packs (that
// is what the flag means) but still authenticated; with encryption it is not.
func TestInsecureMode(t *testing.T) {
	marker := repotest.RandomBytes(77, 64<<10) // incompressible, so stored as is
	for _, insecure := range []bool{false, true} {
		tr := repotest.New(t, repo.InitOptions{Insecure: insecure})
		if _, err := repo.Open(context.Background(), tr.Backend, repo.Options{Password: "anything", CacheDir: tr.Cache}); (err == nil) != insecure {
			t.Fatalf("insecure=%v: open with another password: %v", insecure, err)
		}
		src := filepath.Join(t.TempDir(), "src")
		repotest.WriteFile(t, filepath.Join(src, "m"), marker, 0o644)
		backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
		var found bool
		for _, p := range tr.PackFiles(t) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			found = found || strings.Contains(string(b), string(marker[:4096]))
		}
		if found != insecure {
			t.Errorf("insecure=%v: plaintext found in packs: %v", insecure, found)
		}
		kf, err := os.ReadDir(filepath.Join(tr.Dir, repo.DirKeys))
		if err != nil || len(kf) != 1 {
			t.Fatalf("keys: %v %v", kf, err)
		}
	}
}

// dropIndexFiles deletes the repository's index files, leaving the packs as
// the only record of where blobs are.
func dropIndexFiles(t *testing.T, tr *repotest.Repo) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(tr.Dir, repo.DirIndex)); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedKeyFile: a key file whose bytes changed is an integrity failure
// naming the file, not a wrong password, even when it is the only key.
func TestDamagedKeyFile(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	kf, err := os.ReadDir(filepath.Join(tr.Dir, repo.DirKeys))
	if err != nil || len(kf) != 1 {
		t.Fatalf("keys: %v %v", kf, err)
	}
	flip(t, filepath.Join(tr.Dir, repo.DirKeys, kf[0].Name()), 30)
	_, err = repo.Open(context.Background(), tr.Backend, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if !errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrWrongPassword) || !strings.Contains(err.Error(), kf[0].Name()) {
		t.Fatalf("open with a damaged key file: %v, want ErrCorrupt naming %s", err, kf[0].Name())
	}
}

// TestKDFBounds: the argon2id bounds readers enforce are the ones writers
// enforce and the ones repository-format.md states.
func TestKDFBounds(t *testing.T) {
	doc, err := os.ReadFile("../docs/repository-format.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("`time` 1..%d,\n`memory_kib` %d..%d, `threads` ≥ 1", repo.MaxKDFTime, repo.MinKDFMemoryKiB, repo.MaxKDFMemoryKiB)
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/repository-format.md does not state the bounds the code enforces: %q", want)
	}
	be := repotest.NewLocal(t, filepath.Join(t.TempDir(), "r"))
	for _, p := range []repo.KDFParams{{Time: repo.MaxKDFTime + 1, MemoryKiB: 64, Threads: 1}, {Time: 1, MemoryKiB: repo.MaxKDFMemoryKiB + 1, Threads: 1},
		{Time: 1, MemoryKiB: repo.MinKDFMemoryKiB - 1, Threads: 1}, {Time: 1, MemoryKiB: 64}} {
		if _, err := repo.Init(context.Background(), be, repo.InitOptions{Password: "x", KDF: p}); err == nil || !strings.Contains(err.Error(), "implausible argon2id parameters") {
			t.Errorf("init with %+v: %v, want a refusal", p, err)
		}
	}
}
