package backup

// What only this package's tests need; the rest is in repo/repotest.
// (backuptest imports this package, so its tests back up through mustBackup.)

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"memento/repo"
)

// mustBackup backs up what opts say and fails the test on error.
func mustBackup(t testing.TB, r *repo.Repository, opts BackupOptions) *repo.Snapshot {
	t.Helper()
	sn, err := Backup(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("backup %v: %v", opts.Paths, err)
	}
	return sn
}

func mkdir(t testing.TB, p string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, perm); err != nil {
		t.Fatal(err)
	}
}

func touch(t testing.TB, p string, tm time.Time, symlink bool) {
	t.Helper()
	var err error
	if symlink {
		err = lchtimes(p, tm)
	} else {
		err = os.Chtimes(p, tm, tm)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func lchtimes(p string, tm time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}
