package replicate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// TestReplicateKeepsCipher: a repository of either cipher replicates
// sealed files as they are into a replica of the same cipher, whose
// snapshots restore byte for byte; replicating into a repository of the
// other cipher is refused, leaving it as it was (replication never
// re-seals).
func TestReplicateKeepsCipher(t *testing.T) {
	ctx := context.Background()
	srcs := map[string]*repotest.Repo{}
	for _, enc := range repo.Ciphers() {
		srcs[enc] = repotest.New(t, repo.InitOptions{Cipher: enc}) // outlives the subtest
		t.Run(enc, func(t *testing.T) {
			f := &replicaFixture{src: srcs[enc], trees: map[string]map[string]repotest.Entry{}}
			data := t.TempDir()
			repotest.WriteFile(t, filepath.Join(data, "d", "f.bin"), repotest.RandomBytes(5, 300<<10), 0o644)
			repotest.WriteFile(t, filepath.Join(data, "d", "small.txt"), []byte("a small object\n"), 0o644)
			sn := backuptest.Backup(t, f.src.Repository, backup.BackupOptions{Paths: []string{filepath.Join(data, "d")}, Host: "h1"})
			f.trees[sn.ID.String()] = repotest.DigestTree(t, data)
			dst := repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica"))
			if _, err := Replicate(ctx, f.src.Backend, dst, ReplicateOptions{Verify: true}); err != nil {
				t.Fatal(err)
			}
			r, err := repo.Open(ctx, dst, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
			if err != nil || r.Config().Encryption != enc {
				t.Fatalf("replica: %v, encryption %q; want %q", err, r.Config().Encryption, enc)
			}
			if n := f.checkReplica(t, dst, true); n != 1 {
				t.Fatalf("replica has %d snapshots", n)
			}
		})
	}
	a, b := srcs[repo.EncryptionXChaCha], srcs[repo.EncryptionXAES]
	for _, pair := range [][2]*repotest.Repo{{a, b}, {b, a}} {
		before := replicaFiles(t, pair[1].Backend)
		_, err := Replicate(ctx, pair[0].Backend, pair[1].Backend, ReplicateOptions{})
		if !errors.Is(err, ErrReplicaMismatch) {
			t.Fatalf("replicate %s into %s: %v, want ErrReplicaMismatch", pair[0].Config().Encryption, pair[1].Config().Encryption, err)
		}
		if after := replicaFiles(t, pair[1].Backend); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("the other repository was changed")
		}
	}
}
