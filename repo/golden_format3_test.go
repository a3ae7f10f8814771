package repo_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// testdata/repo-format3-xaes was written once by the first binary of
// repository format 3, whose new repositories seal with XAES-256-GCM, with
// the same two snapshots as the other goldens. Never regenerated;
// regenerate only when deliberately starting it with
//
//	go test ./repo -run 'TestGoldenRepositoryFormat3$' -update-golden
func TestGoldenRepositoryFormat3(t *testing.T) {
	checkGoldenFormat(t, "repo-format3-xaes", 3, repo.EncryptionXAES)
}

// TestXChaChaGoldenKeepsItsCipher: backing up into a copy of the format-2
// golden (XChaCha20-Poly1305) leaves its config as it was, byte for byte,
// and both the golden's snapshots and the new one restore, also from a
// fresh cache (as the next command would read it).
func TestXChaChaGoldenKeepsItsCipher(t *testing.T) {
	r := openGoldenCopy(t, filepath.Join("testdata", "repo-format2-encrypted", "repo"))
	dir := r.Backend().Location()
	before, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	repotest.WriteFile(t, filepath.Join(src, "rand.bin"), repotest.RandomBytes(19, 300<<10), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "small"), []byte("a 300-byte object\n"), 0o644)
	sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{src}, Host: "h"})
	after, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil || !bytes.Equal(before, after) || r.Config().Encryption != repo.EncryptionXChaCha || r.Config().Version != 2 {
		t.Fatalf("config after a backup (%v, %s, format %d):\n%s", err, r.Config().Encryption, r.Config().Version, after)
	}
	r2 := openGoldenCopy(t, dir)
	sns, err := r2.Snapshots(t.Context())
	if err != nil || len(sns) != 3 {
		t.Fatalf("%d snapshots after the backup, want 3: %v", len(sns), err)
	}
	sn2, err := r2.FindSnapshot(t.Context(), sn.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	want := repotest.DigestTree(t, src)
	got := restoredDigest(t, sn2, restoretest.Restore(t, r2, sn2))
	for name, w := range want {
		var found bool
		for p, e := range got {
			if filepath.Base(p) == name && e.Type == "file" {
				found = true
				if e.Sum != w.Sum || e.Size != w.Size {
					t.Errorf("restored %s: %d bytes, sum %s; want %d, %s", p, e.Size, e.Sum, w.Size, w.Sum)
				}
			}
		}
		if !found && w.Type == "file" {
			t.Errorf("%s not restored", name)
		}
	}
}
