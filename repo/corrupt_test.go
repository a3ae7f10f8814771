package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
)

// corruptFixture is a repository with one snapshot of src/{victim,other}.
type corruptFixture struct {
	tr     *testRepo
	sn     *Snapshot
	victim chunk.ID // first chunk of src/victim
	pack   string   // path of the pack holding it
	loc    struct{ off, length int64 }
}

func newCorruptFixture(t *testing.T, insecure bool) *corruptFixture {
	t.Helper()
	tr := newTestRepo(t, InitOptions{Insecure: insecure})
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "victim"), randomBytes(5, 1<<20), 0o644)
	writeFile(t, filepath.Join(src, "other"), []byte("unharmed"), 0o644)
	sn := tr.backup(t, BackupOptions{Paths: []string{src}})
	n := tr.nodeAt(t, sn, "src/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[n.Content[0]]
	fx := &corruptFixture{tr: tr, sn: sn, victim: n.Content[0], pack: filepath.Join(tr.dir, filepath.FromSlash(PackName(loc.Pack)))}
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

// wantRestoreRefused restores sn and requires a CorruptError mentioning every
// string in want, and that neither the target nor a temporary was left behind.
func wantRestoreRefused(t *testing.T, tr *testRepo, sn *Snapshot, want ...string) error {
	t.Helper()
	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	_, err := RestoreBridge(context.Background(), tr.Repository, sn, target, nil)
	if err == nil {
		t.Fatal("restore of damaged data succeeded")
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
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
	noTempLeft(t, parent)
	return err
}

// TestFlippedByteInPack: one flipped bit in a data blob makes ReadBlob and
// Restore fail, naming the pack and the file, and nothing is written.
func TestFlippedByteInPack(t *testing.T) {
	for _, mode := range []struct {
		name     string
		insecure bool
	}{{"encrypted", false}, {"insecure", true}} {
		t.Run(mode.name, func(t *testing.T) {
			fx := newCorruptFixture(t, mode.insecure)
			packShort := filepath.Base(fx.pack)[:8]
			flip(t, fx.pack, fx.loc.off+fx.loc.length/2)

			_, err := fx.tr.ReadBlob(context.Background(), "", DataBlob, fx.victim)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("ReadBlob of a damaged blob: %v, want a CorruptError", err)
			}
			if ce.What != "pack "+packShort || !strings.Contains(ce.Detail, fx.victim.Short()) {
				t.Errorf("CorruptError names %q / %q, want pack %s and blob %s", ce.What, ce.Detail, packShort, fx.victim.Short())
			}
			wantRestoreRefused(t, fx.tr, fx.sn, "pack "+packShort, "file src/victim", "snapshot "+fx.sn.ShortID())

			// The other file's blob still reads.
			n := fx.tr.nodeAt(t, fx.sn, "src/other")
			b, err := fx.tr.ReadBlob(context.Background(), "", DataBlob, n.Content[0])
			if err != nil || string(b) != "unharmed" {
				t.Errorf("undamaged blob: %q, %v", b, err)
			}
		})
	}
}

// TestTruncatedPack: a pack cut short is reported as corruption by restore and
// by index rebuild, naming the pack.
func TestTruncatedPack(t *testing.T) {
	fx := newCorruptFixture(t, false)
	fi := lstat(t, fx.pack)
	chmod(t, fx.pack, 0o600)
	if err := os.Truncate(fx.pack, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	packShort := filepath.Base(fx.pack)[:8]
	// Which blob of victim is the first beyond the cut depends on the layout;
	// the error must name the pack and the file either way.
	wantRestoreRefused(t, fx.tr, fx.sn, "pack "+packShort)

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
	flip(t, fx.pack, fi.Size()-packTrailerSize-20)
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
	if _, err := RestoreBridge(context.Background(), fx.tr.Repository, fx.sn, filepath.Join(t.TempDir(), "x"), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("restore after the only pack was refused: %v, want ErrNotFound", err)
	}
}

// TestFlippedByteInSnapshot: a damaged manifest is refused by hash before any
// key is used.
func TestFlippedByteInSnapshot(t *testing.T) {
	fx := newCorruptFixture(t, false)
	p := filepath.Join(fx.tr.dir, filepath.FromSlash(FileName(DirSnapshots, fx.sn.ID)))
	flip(t, p, 40)
	_, err := fx.tr.FindSnapshot(context.Background(), fx.sn.ID.String())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "content does not match its name") {
		t.Fatalf("FindSnapshot of a damaged manifest: %v", err)
	}
}

// TestWrongPassword: no key opens, the error says so and names the repository.
func TestWrongPassword(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	_, err := Open(context.Background(), tr.be, Options{Password: "not it", CacheDir: tr.cache})
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), tr.dir) {
		t.Fatalf("open with a wrong password: %v", err)
	}
	if _, err := Open(context.Background(), tr.be, Options{Password: "", CacheDir: tr.cache}); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("open with an empty password: %v", err)
	}
	if _, err := Init(context.Background(), tr.be, InitOptions{Password: "x", KDF: fastKDF}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("init over an existing repository: %v", err)
	}
	base := t.TempDir()
	be := newLocal(t, filepath.Join(base, "r2"))
	if _, err := Init(context.Background(), be, InitOptions{KDF: fastKDF}); err == nil || !strings.Contains(err.Error(), "empty password") {
		t.Fatalf("init with an empty password: %v", err)
	}
}

// TestInsecureMode: without encryption the data is in the clear in packs (that
// is what the flag means) but still authenticated; with encryption it is not.
func TestInsecureMode(t *testing.T) {
	marker := randomBytes(77, 64<<10) // incompressible, so stored as is
	for _, insecure := range []bool{false, true} {
		tr := newTestRepo(t, InitOptions{Insecure: insecure})
		if _, err := Open(context.Background(), tr.be, Options{Password: "anything", CacheDir: tr.cache}); (err == nil) != insecure {
			t.Fatalf("insecure=%v: open with another password: %v", insecure, err)
		}
		src := filepath.Join(t.TempDir(), "src")
		writeFile(t, filepath.Join(src, "m"), marker, 0o644)
		tr.backup(t, BackupOptions{Paths: []string{src}})
		var found bool
		for _, p := range tr.packFiles(t) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			found = found || strings.Contains(string(b), string(marker[:4096]))
		}
		if found != insecure {
			t.Errorf("insecure=%v: plaintext found in packs: %v", insecure, found)
		}
		kf, err := os.ReadDir(filepath.Join(tr.dir, DirKeys))
		if err != nil || len(kf) != 1 {
			t.Fatalf("keys: %v %v", kf, err)
		}
	}
}

// dropIndexFiles deletes the repository's index files, leaving the packs as
// the only record of where blobs are.
func dropIndexFiles(t *testing.T, tr *testRepo) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(tr.dir, DirIndex)); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedKeyFile: a key file whose bytes changed is an integrity failure
// naming the file, not a wrong password, even when it is the only key.
func TestDamagedKeyFile(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	kf, err := os.ReadDir(filepath.Join(tr.dir, DirKeys))
	if err != nil || len(kf) != 1 {
		t.Fatalf("keys: %v %v", kf, err)
	}
	flip(t, filepath.Join(tr.dir, DirKeys, kf[0].Name()), 30)
	_, err = Open(context.Background(), tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), kf[0].Name()) {
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
	want := fmt.Sprintf("`time` 1..%d,\n`memory_kib` %d..%d, `threads` ≥ 1", maxKDFTime, minKDFMemoryKiB, maxKDFMemoryKiB)
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/repository-format.md does not state the bounds the code enforces: %q", want)
	}
	be := newLocal(t, filepath.Join(t.TempDir(), "r"))
	for _, p := range []KDFParams{{Time: maxKDFTime + 1, MemoryKiB: 64, Threads: 1}, {Time: 1, MemoryKiB: maxKDFMemoryKiB + 1, Threads: 1},
		{Time: 1, MemoryKiB: minKDFMemoryKiB - 1, Threads: 1}, {Time: 1, MemoryKiB: 64}} {
		if _, err := Init(context.Background(), be, InitOptions{Password: "x", KDF: p}); err == nil || !strings.Contains(err.Error(), "implausible argon2id parameters") {
			t.Errorf("init with %+v: %v, want a refusal", p, err)
		}
	}
}
