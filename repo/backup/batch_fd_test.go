package backup

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
)

// TestBackupManySmallFilesLowFDLimit: a first backup of a tree of many
// directories of small files, in a process whose descriptor limit is low
// (a container's hard limit of 256: Go raises the soft limit to it), must
// succeed with every file: the batches (up to batchFiles open each, one
// per walking goroutine) must not take the descriptors the walk, the
// small-file workers and the repository need. On main 2c5d54b it failed
// in 4 runs of 4 ("too many open files", at 96 or 128); without batches
// 40 is enough. 96 three times: a failure there was likely, not certain.
func TestBackupManySmallFilesLowFDLimit(t *testing.T) {
	requireRing(t)
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	const dirs, per = 24, 150
	for d := range dirs {
		for f := range per {
			repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("d%02d", d), fmt.Sprintf("f%03d.txt", f)),
				repotest.RandomBytes(uint64(d*per+f), 200+f), 0o644)
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []uint64{96, 96, 96, 128, 256, 512} {
		low := lim
		low.Cur = min(lim.Cur, limit)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		sn, err := Backup(t.Context(), tr.Repository, BackupOptions{Paths: []string{src}, NoParent: true})
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatalf("backup under RLIMIT_NOFILE %d: %v", limit, err)
		}
		if sn.Summary.Files != dirs*per {
			t.Fatalf("backup under RLIMIT_NOFILE %d: %d files, want %d", limit, sn.Summary.Files, dirs*per)
		}
	}
}
