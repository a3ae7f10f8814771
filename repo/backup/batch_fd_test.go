//go:build linux

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
	for _, limit := range []uint64{96, 96, 96, 128, 256, 512} {
		restore := setFDLimit(t, limit)
		sn, err := Backup(t.Context(), tr.Repository, BackupOptions{Paths: []string{src}, NoParent: true})
		restore()
		if err != nil {
			t.Fatalf("backup under RLIMIT_NOFILE %d: %v", limit, err)
		}
		if sn.Summary.Files != dirs*per {
			t.Fatalf("backup under RLIMIT_NOFILE %d: %d files, want %d", limit, sn.Summary.Files, dirs*per)
		}
	}
}

// TestWorkerOpenAfterBatchClosedItsFiles: a worker's open that found no
// descriptor while a batch held its files, the batch closing them and
// ending its hold before the worker looks at what batches hold (a
// goroutine preempted right after its open, on a loaded machine), must try
// again, not report "too many open files": the descriptor it lacked is free.
func TestWorkerOpenAfterBatchClosedItsFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	repotest.WriteFile(t, path, []byte("x"), 0o644)
	b := newBatchReader()
	defer b.close()
	defer setFDLimit(t, uint64(openFDCount(t)+16))()
	var filler []int // every descriptor left; the last is the batch's file
	defer func() {
		for _, fd := range filler {
			if fd >= 0 {
				syscall.Close(fd)
			}
		}
	}()
	filler = openUntilEMFILE(t, filler)
	if !b.hold(1) {
		t.Fatal("no worker waits, yet the batch may not hold its file")
	}
	hooked := 0
	b.openHook = func() {
		if hooked++; hooked == 1 { // the batch closes its file and ends its hold
			syscall.Close(filler[len(filler)-1])
			filler[len(filler)-1] = -1
			b.unhold(1)
		}
	}
	fd, err := b.open(path)
	if err != nil {
		t.Fatalf("open after the batch closed its file: %v", err)
	}
	syscall.Close(fd)
	if hooked == 0 {
		t.Fatal("the open found a descriptor: the test filled none")
	}
}

// openUntilEMFILE opens /dev/null until the descriptor table is full and
// returns fds with the new descriptors appended (the caller closes them).
func openUntilEMFILE(t *testing.T, fds []int) []int {
	t.Helper()
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EMFILE {
			return fds
		}
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
}
