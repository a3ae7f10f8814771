package restore

import (
	"context"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestoreKeepsSafetyCopy: restoring over a non-empty target first moves
// it aside, intact, to TARGET.pre-restore-<time>; an empty target is simply
// replaced.
func TestRestoreKeepsSafetyCopy(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "new"), []byte("restored content"), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})

	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	repotest.WriteFile(t, filepath.Join(target, "old", "precious"), []byte("old content"), 0o600)
	repotest.WriteFile(t, filepath.Join(target, "src", "new"), []byte("old version of new"), 0o644)
	oldDigest := repotest.DigestTree(t, target)

	res, err := Restore(context.Background(), tr.Repository, sn, target, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.SafetyCopy == "" || !strings.HasPrefix(res.SafetyCopy, target+".pre-restore-") {
		t.Fatalf("safety copy %q", res.SafetyCopy)
	}
	repotest.CompareTrees(t, oldDigest, repotest.DigestTree(t, res.SafetyCopy))
	got, err := os.ReadFile(filepath.Join(target, "src", "new"))
	if err != nil || string(got) != "restored content" {
		t.Fatalf("restored %q, %v", got, err)
	}
	if _, err := os.Lstat(filepath.Join(target, "old")); err == nil {
		t.Error("old content is still in the target")
	}
	repotest.NoTempLeft(t, parent)

	// An existing empty directory is replaced without a safety copy.
	empty := filepath.Join(t.TempDir(), "empty")
	repotest.Mkdir(t, empty, 0o755)
	res, err = Restore(context.Background(), tr.Repository, sn, empty, RestoreOptions{})
	if err != nil || res.SafetyCopy != "" {
		t.Fatalf("restore into an empty dir: safety copy %q, %v", res.SafetyCopy, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(empty)); len(ents) != 1 {
		t.Errorf("restore into an empty dir left %d entries beside it", len(ents))
	}
}

// engramDataDir writes a small Engram data dir with the given spaces.
func engramDataDir(t *testing.T, dir string, spaces ...string) {
	t.Helper()
	repotest.WriteFile(t, filepath.Join(dir, "metadata.json"), []byte(`{"spaces":["`+strings.Join(spaces, `","`)+`"]}`), 0o644)
	for i, s := range spaces {
		sd := filepath.Join(dir, "spaces", s)
		repotest.WriteFile(t, filepath.Join(sd, "wal", "wal-0000000000000001.log"), repotest.RandomBytes(uint64(100+i), 300<<10), 0o644)
		repotest.WriteFile(t, filepath.Join(sd, "hot", "recent.json"), []byte(`{"space":"`+s+`"}`), 0o644)
		repotest.WriteFile(t, filepath.Join(sd, "warm", "warm_tier.dat"), repotest.WarmPages(uint64(200+i), 64<<10), 0o644)
		repotest.WriteFile(t, filepath.Join(sd, "cold", "seg-1.col"), repotest.ColdSegment(uint64(300+i), 100<<10), 0o644)
		repotest.WriteFile(t, filepath.Join(sd, "shared.bin"), repotest.RandomBytes(42, 50<<10), 0o644) // same bytes in every space
		repotest.WriteFile(t, filepath.Join(sd, "checkpoint.json"), []byte(`{"sequence": 1, "timestamp_ns": 1}`), 0o644)
	}
}

// TestEngramSpaceBackupRestore: a space snapshot holds metadata.json and only
// its own space; restoring it into a data dir replaces spaces/<id> alone
// (keeping a safety copy) and leaves other spaces and metadata.json alone.
// Spaces share no chunk even for identical bytes.
func TestEngramSpaceBackupRestore(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	engramDataDir(t, dd, "alpha", "beta")
	repotest.Chmod(t, filepath.Join(dd, "spaces", "alpha"), 0o750) // the space dir's own mode and mtime come back too
	repotest.Touch(t, filepath.Join(dd, "spaces", "alpha"), time.Unix(1700000000, 123), false)
	wantAlpha := repotest.DigestTree(t, filepath.Join(dd, "spaces"))
	delete(wantAlpha, "beta")
	for p := range wantAlpha {
		if strings.HasPrefix(p, "beta/") {
			delete(wantAlpha, p)
		}
	}

	snA := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: "alpha", DataDir: dd})
	snB := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: "beta", DataDir: dd})
	if snA.Space != "alpha" || snA.Paths[0] != filepath.Join(dd, "spaces", "alpha") {
		t.Errorf("manifest space %q paths %q", snA.Space, snA.Paths)
	}
	root, err := tr.LoadTree(context.Background(), "alpha", snA.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Nodes) != 2 || root.Find("metadata.json") == nil || root.Find("spaces") == nil {
		t.Fatalf("space snapshot root holds %d nodes", len(root.Nodes))
	}
	sp, err := tr.LoadTree(context.Background(), "alpha", *root.Find("spaces").Subtree)
	if err != nil || len(sp.Nodes) != 1 || sp.Nodes[0].Name != "alpha" {
		t.Fatalf("spaces/ of the alpha snapshot: %+v, %v", sp, err)
	}

	// Isolation: identical bytes have different IDs per space, and alpha's
	// chunks are not in beta's part of the index.
	a := tr.NodeAt(t, snA, "spaces/alpha/shared.bin")
	b := tr.NodeAt(t, snB, "spaces/beta/shared.bin")
	if *a.BLAKE3 != *b.BLAKE3 || a.Content[0] == b.Content[0] {
		t.Fatalf("shared.bin: same content must give the same BLAKE3 and different chunk IDs")
	}
	if found, err := tr.Index().Lookup("beta", a.Content); err != nil || len(found) != 0 {
		t.Errorf("alpha's chunk found under beta: %v %v", found, err)
	}
	if _, err := tr.ReadBlob(context.Background(), "beta", repo.DataBlob, a.Content[0]); err == nil {
		t.Error("reading alpha's chunk as beta succeeded")
	}

	// Damage alpha and change beta, then restore alpha into the data dir.
	repotest.WriteFile(t, filepath.Join(dd, "spaces", "alpha", "hot", "recent.json"), []byte("broken"), 0o644)
	repotest.WriteFile(t, filepath.Join(dd, "spaces", "alpha", "stray"), []byte("stray"), 0o644)
	repotest.WriteFile(t, filepath.Join(dd, "spaces", "beta", "hot", "new.json"), []byte("beta moved on"), 0o644)
	repotest.WriteFile(t, filepath.Join(dd, "metadata.json"), []byte(`{"edited":true}`), 0o644)
	damagedAlpha := repotest.DigestTree(t, filepath.Join(dd, "spaces", "alpha"))
	beta := repotest.DigestTree(t, filepath.Join(dd, "spaces", "beta"))

	res, err := Restore(context.Background(), tr.Repository, snA, dd, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	repotest.CompareTrees(t, wantAlpha, spaceDigest(t, dd, "alpha"))
	repotest.CompareTrees(t, beta, repotest.DigestTree(t, filepath.Join(dd, "spaces", "beta")))
	if !strings.HasPrefix(res.SafetyCopy, filepath.Join(dd, "spaces", "alpha.pre-restore-")) {
		t.Fatalf("safety copy %q", res.SafetyCopy)
	}
	repotest.CompareTrees(t, damagedAlpha, repotest.DigestTree(t, res.SafetyCopy))
	if got, _ := os.ReadFile(filepath.Join(dd, "metadata.json")); string(got) != `{"edited":true}` {
		t.Errorf("an existing metadata.json was replaced: %q", got)
	}
	repotest.NoTempLeft(t, filepath.Join(dd, "spaces"))

	// Into a fresh data dir: metadata.json and spaces/alpha only.
	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, err := Restore(context.Background(), tr.Repository, snA, fresh, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got := repotest.DigestTree(t, fresh)
	if _, ok := got["metadata.json"]; !ok {
		t.Error("metadata.json missing from a fresh data dir")
	}
	if _, ok := got["spaces/beta"]; ok {
		t.Error("beta restored from alpha's snapshot")
	}
	repotest.CompareTrees(t, wantAlpha, spaceDigest(t, fresh, "alpha"))
}

// spaceDigest describes spaces/<space> of a data dir, the directory included,
// keyed like repotest.DigestTree(dataDir/spaces).
func spaceDigest(t *testing.T, dataDir, space string) map[string]repotest.Entry {
	d := repotest.DigestTree(t, filepath.Join(dataDir, "spaces"))
	for p := range d {
		if p != space && !strings.HasPrefix(p, space+"/") {
			delete(d, p)
		}
	}
	return d
}
