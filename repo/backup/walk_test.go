package backup

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// writeDirTree writes a tree of directories fan levels deep, fan
// subdirectories each, a few small files in every directory: many small
// directories, the shape the concurrent walk of a path backup is for.
func writeDirTree(t testing.TB, dir string, fan, levels int, seed *uint64) {
	for i := range 3 {
		*seed++
		repotest.WriteFile(t, filepath.Join(dir, fmt.Sprintf("f%d.txt", i)), repotest.RandomBytes(*seed, 100+int(*seed%900)), 0o644)
	}
	if levels == 0 {
		return
	}
	for i := range fan {
		writeDirTree(t, filepath.Join(dir, fmt.Sprintf("d%02d", i)), fan, levels-1, seed)
	}
}

// TestPathBackupWalksDirectoriesConcurrently: a path backup walks
// directories concurrently (saveDirs), a space-style walk (a BeforeDir hook)
// one at a time, in depth-first order. Both must store the same trees, so the
// same root; an unchanged re-backup reuses every file and keeps the root; the
// snapshot restores byte for byte.
func TestPathBackupWalksDirectoriesConcurrently(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	var seed uint64
	writeDirTree(t, src, 4, 3, &seed) // 85 directories, 255 files
	const dirs, files = 1 + 4 + 16 + 64, 3 * (1 + 4 + 16 + 64)

	sn1 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	if s := sn1.Summary; s.Files != files || s.Dirs != dirs || s.UnchangedFiles != 0 {
		t.Fatalf("first backup: %+v", s)
	}

	var mu sync.Mutex
	var order []string
	before := func(rel string) error {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, rel)
		return nil
	}
	sn2 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}, NoParent: true, BeforeDir: before})
	if sn2.Root != sn1.Root {
		t.Errorf("the walk one directory at a time made root %s, the concurrent one %s", sn2.Root.Short(), sn1.Root.Short())
	}
	if len(order) != dirs+1 || order[0] != "" || order[1] != "src" || order[2] != "src/d00" || order[3] != "src/d00/d00" {
		t.Errorf("BeforeDir order: %d calls, starting %q", len(order), order[:min(len(order), 4)])
	}
	if want := slices.Clone(order); !slices.IsSorted(want[1:]) {
		t.Errorf("BeforeDir was not called in depth-first order: %q", order)
	}

	sn3 := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	if s := sn3.Summary; s.UnchangedFiles != files || s.NewChunks != 0 || s.StoredBytes != 0 || sn3.Root != sn1.Root {
		t.Errorf("unchanged re-backup: root %s (want %s), %+v", sn3.Root.Short(), sn1.Root.Short(), s)
	}
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn3), "src")))
}

// TestPathBackupWalksSubdirectoriesWhileFilesAreSaved: a path backup walks
// a directory's subdirectories while the directory's small files are still
// being saved. Here the save of src/a.txt waits until src/sub/b.txt's has
// begun: a walk that waited for a.txt before walking src/sub would wait for
// it (for 10 s, then the test fails). The snapshot restores byte for byte.
func TestPathBackupWalksSubdirectoriesWhileFilesAreSaved(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "a.txt"), repotest.RandomBytes(1, 150), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "sub", "b.txt"), repotest.RandomBytes(2, 150), 0o644)
	subSaved := make(chan struct{})
	var once sync.Once
	var waited atomic.Bool
	save := func(rel string) {
		switch rel {
		case "src/sub/b.txt":
			once.Do(func() { close(subSaved) })
		case "src/a.txt":
			select {
			case <-subSaved:
			case <-time.After(10 * time.Second):
				waited.Store(true)
			}
		}
	}
	sn := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}, smallSave: save})
	if waited.Load() {
		t.Error("src/sub was not walked while src/a.txt was being saved: the walk waited for the directory's files first")
	}
	if s := sn.Summary; s.Files != 2 || s.Dirs != 2 {
		t.Errorf("summary: %+v", s)
	}
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src")))
}
