package repo_test

import (
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// TestChunkParamSetIsKept: the chunk parameter set is the one the repository
// was created with, not the binary's current one, so upgrading memento never
// re-cuts (and re-stores) the files of an existing repository. A 256 KiB warm
// page file is 16 chunks in sets 1 and 2 and 8 in set 3; a 3 MiB WAL segment
// is cut at content-defined boundaries in sets 1 and 2 and in three 1 MiB
// chunks in set 3. A repository whose config names no set uses set 1.
func TestChunkParamSetIsKept(t *testing.T) {
	src := t.TempDir()
	repotest.WriteFile(t, filepath.Join(src, "warm", "warm_tier.dat"), repotest.RandomBytes(7, 256<<10), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "wal", "wal-0000000000000001.log"), repotest.RandomBytes(8, 3<<20), 0o644)
	for _, tc := range []struct {
		set      chunk.ParamSet // 0: the field is absent
		warm     int
		fixedWAL bool
	}{{0, 16, false}, {chunk.ParamSet1, 16, false}, {chunk.ParamSet2, 16, false}, {chunk.ParamSet3, 8, true}} {
		tr := repotest.New(t, repo.InitOptions{})
		if tc.set != chunk.CurrentParamSet {
			tr.SetConfigParams(t, tc.set)
		}
		tr.Repository = tr.Reopen(t)
		sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
		base := filepath.Base(src)
		if n := tr.NodeAt(t, sn, base+"/warm/warm_tier.dat"); len(n.Content) != tc.warm {
			t.Errorf("set %d: warm file in %d chunks, want %d", tc.set, len(n.Content), tc.warm)
		}
		wal := tr.NodeAt(t, sn, base+"/wal/wal-0000000000000001.log")
		sizes, err := tr.ChunkSizes("", wal.Content)
		if err != nil {
			t.Fatal(err)
		}
		fixed := len(sizes) == 3
		for _, sz := range sizes {
			fixed = fixed && sz == 1<<20
		}
		if fixed != tc.fixedWAL {
			t.Errorf("set %d: WAL segment in chunks of %v bytes; want fixed 1 MiB chunks: %v", tc.set, sizes, tc.fixedWAL)
		}
	}
	if chunk.CurrentParamSet != chunk.ParamSet3 {
		t.Errorf("CurrentParamSet = %d: add its row above", chunk.CurrentParamSet)
	}
}
