package repo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// goldenOfFormat is the golden repository a binary of each format wrote.
var goldenOfFormat = map[int]string{
	2: "repo-format2-encrypted", 3: "repo-format3-xaes", 4: "repo-format4-delta",
	5: "repo-format5-digest", 6: "repo-format6-group",
}

// TestInitFormat: Init with Format N (OldestInitFormat..FormatVersion)
// writes the config a binary of format N wrote (its golden repository's:
// the same fields, version, encryption and chunk parameter set; format 2
// gets xchacha20-poly1305, the cipher of its binaries), whose gates are
// those of format N, and a path backup of small files into it stores no
// member blob below format 6 (every file's chunk stored whole: what a
// binary of format 5 reads), restoring byte for byte; format 6 groups them.
func TestInitFormat(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	var rels []string
	for i := range 40 {
		rel := fmt.Sprintf("d%d/f%02d.py", i%4, i)
		repotest.WriteFile(t, filepath.Join(src, filepath.FromSlash(rel)), bytes.Repeat(fmt.Appendf(nil, "def f%d(x):\n    return x * %d\n", i, i*i), 10+i), 0o644)
		rels = append(rels, rel)
	}
	for v := repo.OldestInitFormat; v <= repo.FormatVersion; v++ {
		t.Run(fmt.Sprintf("format%d", v), func(t *testing.T) {
			tr := repotest.New(t, repo.InitOptions{Format: v})
			got := configFields(t, filepath.Join(tr.Dir, repo.ConfigName))
			want := configFields(t, filepath.Join("testdata", goldenOfFormat[v], "repo", repo.ConfigName))
			if len(got) != len(want) {
				t.Fatalf("config of format %d: fields %v, the golden's %v", v, keys(got), keys(want))
			}
			for k := range want {
				if _, ok := got[k]; !ok {
					t.Fatalf("config of format %d has no %q (the golden's fields %v)", v, k, keys(want))
				}
			}
			for _, k := range []string{"version", "encryption", "chunk_params"} {
				if string(got[k]) != string(want[k]) {
					t.Fatalf("config of format %d: %s %s, the golden's %s", v, k, got[k], want[k])
				}
			}
			cfg := tr.Config()
			if cfg.Version != v || cfg.GroupedFiles() != (v >= 6) || (cfg.StateDigestKind() != "") != (v >= 5) ||
				cfg.DeltaBlobs() != (v >= 4) || cfg.WALRecords() != (v >= 4) || cfg.HuffPlanes() != (v >= 3) {
				t.Fatalf("format %d: config %+v, gates grouped %v digest %q delta %v walrec %v huff %v", v, cfg,
					cfg.GroupedFiles(), cfg.StateDigestKind(), cfg.DeltaBlobs(), cfg.WALRecords(), cfg.HuffPlanes())
			}
			sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			members := 0
			for _, rel := range rels {
				n := tr.NodeAt(t, sn, "src/"+rel)
				l, err := tr.Locate("", n.Content)
				if err != nil || len(l) != 1 {
					t.Fatalf("%s: %v, %d locations", rel, err, len(l))
				}
				if l[n.Content[0]].Flags&repo.FlagMember != 0 {
					members++
				}
			}
			if (v < 6 && members != 0) || (v >= 6 && members == 0) {
				t.Fatalf("format %d: %d of %d small files stored as members", v, members, len(rels))
			}
			repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Reopen(t), sn), "src")))
		})
	}
}

// TestInitFormatRefused: a format this binary does not create (format 1,
// newer than its own, negative), or XAES-256-GCM in a repository of
// format 2, is refused with ErrInvalidArgument naming the value and what is
// accepted, writing nothing.
func TestInitFormatRefused(t *testing.T) {
	for _, c := range []struct {
		opts repo.InitOptions
		want string
	}{
		{repo.InitOptions{Format: 1}, "invalid argument: repository format 1 (this binary creates formats 2 to 6)"},
		{repo.InitOptions{Format: repo.FormatVersion + 1}, "invalid argument: repository format 7 (this binary creates formats 2 to 6)"},
		{repo.InitOptions{Format: -5}, "invalid argument: repository format -5 (this binary creates formats 2 to 6)"},
		{repo.InitOptions{Format: 2, Cipher: repo.EncryptionXAES}, "invalid argument: cipher xaes-256-gcm in a repository of format 2 (it needs format 3 or later)"},
	} {
		dir := filepath.Join(t.TempDir(), "repo")
		be, err := local.Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		c.opts.Password, c.opts.KDF = repotest.Password, repotest.FastKDF
		_, err = repo.Init(context.Background(), be, c.opts)
		if !errors.Is(err, repo.ErrInvalidArgument) || err.Error() != c.want {
			t.Errorf("init %+v: %v, want %q", c.opts, err, c.want)
		}
		entries, _ := os.ReadDir(dir)
		keys, _ := os.ReadDir(filepath.Join(dir, repo.DirKeys))
		if _, err := os.Stat(filepath.Join(dir, repo.ConfigName)); !errors.Is(err, os.ErrNotExist) || len(keys) != 0 {
			t.Errorf("init %+v left a config (%v) or %d key files (%d entries)", c.opts, err, len(keys), len(entries))
		}
		be.Close()
	}
}

// configFields decodes a config file into its raw fields.
func configFields(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
