package restore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// The restore-fidelity tests: what a backup took, a restore gives back
// exactly.

// roundTripCase builds a source tree in dir; check, if set, inspects the
// restored copy beyond the digest comparison every case gets.
type roundTripCase struct {
	name  string
	build func(t *testing.T, dir string)
	check func(t *testing.T, src, restored string)
	long  bool // skipped with -short
}

func roundTripCases() []roundTripCase {
	return []roundTripCase{
		{name: "empty directory", build: func(t *testing.T, dir string) {}},
		{name: "zero-byte files", build: func(t *testing.T, dir string) {
			repotest.WriteFile(t, filepath.Join(dir, "empty"), nil, 0o644)
			repotest.WriteFile(t, filepath.Join(dir, "sub", "also-empty"), nil, 0o600)
			mkdir(t, filepath.Join(dir, "empty-dir"), 0o755)
		}},
		{name: "small sizes", build: func(t *testing.T, dir string) {
			for i, n := range []int{1, 63, 64, 65, 4095, 4096, 4097, 64<<10 + 1} {
				repotest.WriteFile(t, filepath.Join(dir, "f"+strconv.Itoa(n)), repotest.RandomBytes(uint64(i+1), n), 0o644)
			}
			repotest.WriteFile(t, filepath.Join(dir, "text"), []byte(strings.Repeat("compressible line\n", 10000)), 0o644)
			repotest.WriteFile(t, filepath.Join(dir, "zeros"), make([]byte, 100000), 0o644) // a non-sparse file of zeros
		}},
		{name: "multi-MiB file with a hole", build: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "holey")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(repotest.RandomBytes(7, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(repotest.RandomBytes(8, 2<<20+17), 5<<20); err != nil { // 4 MiB hole before
				t.Fatal(err)
			}
			f.Close()
			// A trailing hole too: the size is set past the last data.
			if err := os.Truncate(p, 9<<20+3); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, src, restored string) {
			wantSparse(t, filepath.Join(restored, "holey"), 3<<20)
		}},
		// Over 4 GiB: file offsets and sizes past 32 bits.
		{name: "sparse file over 4 GiB", long: true, build: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "huge")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(repotest.RandomBytes(9, 100<<10)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("the end is near"), 4<<30+5<<20); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := os.Truncate(p, 4<<30+6<<20+1); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, src, restored string) {
			wantSparse(t, filepath.Join(restored, "huge"), 4<<30)
		}},
		{name: "symlinks", build: func(t *testing.T, dir string) {
			repotest.WriteFile(t, filepath.Join(dir, "target"), []byte("x"), 0o644)
			mkdir(t, filepath.Join(dir, "d"), 0o755)
			for name, target := range map[string]string{
				"rel": "target", "abs": "/etc/passwd", "dangling": "does/not/exist", "up": "../../outside",
				"to-dir": "d", "d/back": "../target", "odd target": "a b\nc",
			} {
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			touch(t, filepath.Join(dir, "rel"), time.Unix(1500000000, 987654321), true)
		}},
		{name: "unicode and odd names", build: func(t *testing.T, dir string) {
			names := []string{
				"héllo wörld.txt", "日本語のファイル", "emoji 🎉🎉", "with\nnewline", "with\ttab", "-leading-dash", "--",
				"-rf", " leading space", "trailing space ", "quote\"and'apos", "back\\slash", "*?[glob]", "\x01ctrl\x7f",
				"%s%n", "..dots", "...", ".hidden", "a.b.c.", "NUL-free\u2028line-sep",
				strings.Repeat("n", 255),       // longest ASCII name
				strings.Repeat("é", 127) + "x", // 255 bytes of UTF-8
				strings.Repeat("語", 85),        // 255 bytes, 3-byte runes
				"combining e\u0301 vs \u00e9",  // NFD and NFC stay distinct
				"\u00e9",                       // NFC é
				"e\u0301",                      // NFD é
			}
			for i, n := range names {
				repotest.WriteFile(t, filepath.Join(dir, n), repotest.RandomBytes(uint64(100+i), 10+i), 0o644)
			}
			mkdir(t, filepath.Join(dir, "dir with spaces", "-sub"), 0o755)
			repotest.WriteFile(t, filepath.Join(dir, "dir with spaces", "-sub", strings.Repeat("z", 255)), []byte("deep"), 0o600)
		}},
		{name: "permissions", build: func(t *testing.T, dir string) {
			for name, perm := range map[string]os.FileMode{
				"private": 0o600, "exec": 0o755, "none": 0, "readonly": 0o444, "group": 0o070,
				"setuid": 0o4755 | os.ModeSetuid, "setgid-file": 0o2755 | os.ModeSetgid,
			} {
				p := filepath.Join(dir, name)
				repotest.WriteFile(t, p, []byte(name), 0o600)
				chmod(t, p, perm)
			}
			mkdir(t, filepath.Join(dir, "setgid-dir"), 0o755)
			repotest.WriteFile(t, filepath.Join(dir, "setgid-dir", "f"), []byte("f"), 0o640)
			chmod(t, filepath.Join(dir, "setgid-dir"), 0o2775|os.ModeSetgid)
			mkdir(t, filepath.Join(dir, "sticky"), 0o755)
			chmod(t, filepath.Join(dir, "sticky"), 0o1777|os.ModeSticky)
			// A read-only directory with content: restore must set its mode last.
			mkdir(t, filepath.Join(dir, "ro-dir", "inner"), 0o755)
			repotest.WriteFile(t, filepath.Join(dir, "ro-dir", "inner", "f"), []byte("f"), 0o644)
			chmod(t, filepath.Join(dir, "ro-dir", "inner"), 0o555)
			chmod(t, filepath.Join(dir, "ro-dir"), 0o500)
		}},
		{name: "mtimes to the nanosecond", build: func(t *testing.T, dir string) {
			times := map[string]time.Time{
				"epoch":   time.Unix(0, 0),
				"nano":    time.Unix(1234567890, 123456789),
				"one-ns":  time.Unix(1700000000, 1),
				"max-ns":  time.Unix(1700000000, 999999999),
				"pre1970": time.Date(1960, 3, 4, 5, 6, 7, 891011121, time.UTC),
				"future":  time.Date(2099, 12, 31, 23, 59, 59, 999999999, time.UTC),
			}
			for name, tm := range times {
				p := filepath.Join(dir, name)
				repotest.WriteFile(t, p, []byte(name), 0o644)
				touch(t, p, tm, false)
			}
			mkdir(t, filepath.Join(dir, "d"), 0o755)
			repotest.WriteFile(t, filepath.Join(dir, "d", "f"), []byte("x"), 0o644)
			touch(t, filepath.Join(dir, "d"), time.Unix(1111111111, 222222222), false)
		}},
	}
}

// TestRoundTrip backs up each case's tree and restores it: every byte, mode,
// mtime, symlink target and name must come back exactly.
func TestRoundTrip(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("-short: skipping the >4 GiB sparse file")
			}
			src := filepath.Join(t.TempDir(), "src")
			mkdir(t, src, 0o755)
			tc.build(t, src)
			touch(t, src, time.Unix(1600000000, 424242424), false)
			want := repotest.DigestTree(t, src)
			srcInfo := lstat(t, src)

			sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			dst := restoretest.Restore(t, tr.Repository, sn)
			restored := filepath.Join(dst, "src")
			repotest.CompareTrees(t, want, repotest.DigestTree(t, restored))
			if got := lstat(t, restored); got.Mode() != srcInfo.Mode() || !got.ModTime().Equal(srcInfo.ModTime()) {
				t.Errorf("top directory: mode %v mtime %v, want %v %v", got.Mode(), got.ModTime(), srcInfo.Mode(), srcInfo.ModTime())
			}
			if tc.check != nil {
				tc.check(t, src, restored)
			}
			if got, want := sn.Summary.Files, countType(want, "file"); got != want {
				t.Errorf("summary: %d files, want %d", got, want)
			}
		})
	}
}

// TestRoundTripInsecure runs the same cases through a repository without
// encryption: the MAC-only sealer must carry the same bytes.
func TestRoundTripInsecure(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{Insecure: true})
	if tr.Config().Encryption != repo.EncryptionNone {
		t.Fatalf("encryption %q", tr.Config().Encryption)
	}
	for _, tc := range roundTripCases()[:4] {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			mkdir(t, src, 0o755)
			tc.build(t, src)
			want := repotest.DigestTree(t, src)
			sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src")))
		})
	}
}

func countType(d map[string]repotest.Entry, typ string) uint64 {
	var n uint64
	for _, e := range d {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// wantSparse fails unless at least hole bytes of p are not allocated.
func wantSparse(t *testing.T, p string, hole int64) {
	t.Helper()
	fi := lstat(t, p)
	alloc := fi.Sys().(*syscall.Stat_t).Blocks * 512
	if alloc > fi.Size()-hole {
		t.Errorf("%s: %d of %d bytes allocated; want a hole of at least %d bytes", filepath.Base(p), alloc, fi.Size(), hole)
	}
}

func mkdir(t testing.TB, p string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, perm); err != nil {
		t.Fatal(err)
	}
}

func chmod(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func lstat(t testing.TB, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
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
