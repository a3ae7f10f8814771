package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// EXT4_IOC_SHUTDOWN (_IOR('X', 125, __u32)) with EXT4_GOING_FLAGS_NOLOGFLUSH:
// the file system stops at once, as at a power cut, and whatever its journal
// has not committed is lost.
const (
	ext4IocShutdown          = 0x8004587d
	ext4GoingFlagsNoLogFlush = 2
)

// loopExt4 is a small ext4 file system in an image file, loop-mounted.
type loopExt4 struct {
	t        *testing.T
	img, mnt string
}

// newLoopExt4 makes and mounts one. It needs root, mkfs.ext4 and loop
// devices: without them the test is skipped, except in CI (CI=true), where
// that is a failure.
func newLoopExt4(t *testing.T) *loopExt4 {
	t.Helper()
	unusable := func(format string, args ...any) {
		t.Helper()
		reason := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("the power-cut test must run in CI: %s", reason)
		}
		t.Skipf("power-cut test unusable here (%s); set CI=true to make this a failure", reason)
	}
	if os.Geteuid() != 0 {
		unusable("needs root to mount a loop device")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		unusable("no mkfs.ext4: %v", err)
	}
	d := t.TempDir()
	fs := &loopExt4{t: t, img: filepath.Join(d, "ext4.img"), mnt: filepath.Join(d, "mnt")}
	f, err := os.Create(fs.img)
	if err == nil {
		err = f.Truncate(96 << 20)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", fs.img).CombinedOutput(); err != nil {
		unusable("mkfs.ext4: %v: %s", err, out)
	}
	if err := os.Mkdir(fs.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", fs.img, fs.mnt).CombinedOutput(); err != nil {
		unusable("mount -o loop: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", fs.mnt).Run() })
	return fs
}

// powerCut shuts the file system down without flushing its journal, then
// unmounts and mounts it again (the journal is replayed).
func (fs *loopExt4) powerCut() {
	t := fs.t
	t.Helper()
	f, err := os.Open(fs.mnt)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.IoctlSetPointerInt(int(f.Fd()), ext4IocShutdown, ext4GoingFlagsNoLogFlush)
	f.Close()
	if err != nil {
		t.Fatalf("EXT4_IOC_SHUTDOWN: %v", err)
	}
	for _, args := range [][]string{{"umount", fs.mnt}, {"mount", "-o", "loop", fs.img, fs.mnt}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// writeSmallTree writes files of 0 to 300 KiB (and one of 3 MiB, written
// with O_DIRECT by a restore) in a few directories, a symlink and a 0700
// directory.
func writeSmallTree(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(19, 1))
	put := func(rel string, n int) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		put(fmt.Sprintf("d%d/f%02d", i%4, i), rng.IntN(300<<10))
	}
	put("empty", 0)
	put("big.bin", 3<<20)
	put("private/key", 77)
	if err := os.Chmod(filepath.Join(dir, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d1/f01", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

// TestRestorePowerCut is issue 19's power-cut test: right after a plain
// restore (over an existing target, so a safety copy is made), a space
// restore and a point-in-time restore into a loop-mounted ext4 have exited
// 0, the file system is shut down without flushing its journal. Once it is
// mounted again, every restored file must be there with its bytes, and the
// safety copy too: a restore that exits 0 has put everything on disk.
func TestRestorePowerCut(t *testing.T) {
	fs := newLoopExt4(t)
	e := newEnv(t)
	work := t.TempDir()
	src := filepath.Join(work, "src")
	writeSmallTree(t, src)
	e.mustRun("backup", src)
	plainID := e.snapshotIDs()[0]

	dd := filepath.Join(work, "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "1500", "--segment-size", "64KiB",
		"--dim", "16", "--cold-rows", "400", "--seed", "19")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "1500", "--cold-rows", "400")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	const space, toSeq = "space-a", 2222 // beyond the snapshot: archived segments, one cut
	want := e.simTruth(dd, space, "--to-seq", strconv.Itoa(toSeq))

	// The targets: an existing tree to be kept as the safety copy, made
	// durable before the restores start.
	plain, spaceDD, pitrDD := filepath.Join(fs.mnt, "plain"), filepath.Join(fs.mnt, "dd"), filepath.Join(fs.mnt, "pitr")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "old"), []byte("the previous content"), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()

	out := e.mustRun("restore", plainID, "--target", plain)
	if !strings.Contains(out, "the previous content is kept at "+plain+".pre-restore-") {
		t.Fatalf("plain restore over a non-empty target: %q", out)
	}
	e.mustRun("restore", "--space", space, "--latest", "--target", spaceDD)
	e.mustRun("restore", "--space", space, "--to-seq", strconv.Itoa(toSeq), "--target", pitrDD)

	sameDigest(t, "plain restore", repoTreeDigest(t, src), repoTreeDigest(t, inSnapshot(t, plain, src)))
	before := repoTreeDigest(t, fs.mnt)
	nfiles := 0
	for p, d := range before {
		if strings.HasPrefix(d, "-") {
			nfiles++
		}
		if strings.Contains(p, ".restore-") || strings.Contains(p, ".pitr-") {
			t.Fatalf("staging left behind: %s", p)
		}
	}
	for _, d := range []string{"wal", "hot", "cold", "checkpoint.json"} {
		for _, root := range []string{spaceDD, pitrDD} {
			if _, err := os.Lstat(filepath.Join(root, "spaces", space, d)); err != nil {
				t.Fatalf("the restored space has no %s: %v", d, err)
			}
		}
	}

	fs.powerCut()

	sameDigest(t, "after the power cut", before, repoTreeDigest(t, fs.mnt))
	if got := e.simTruth(pitrDD, space); got != want {
		t.Fatalf("point-in-time restore after the power cut replays to %+v, want %+v", got, want)
	}
	t.Logf("%d restored files intact after the power cut", nfiles)
}

// TestRestoreRemovesKilledStaging: the staging directory and owner file a
// killed restore left beside the target are removed by the next restore
// there, with one line on stderr; a safety copy is kept.
func TestRestoreRemovesKilledStaging(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeSmallTree(t, src)
	e.mustRun("backup", src)
	parent := t.TempDir()
	stale := filepath.Join(parent, ".target.restore-12345")
	safety := filepath.Join(parent, "target.pre-restore-20260101T000000.000000000Z")
	for _, d := range []string{stale, safety} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "sub", "f"), make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(stale+".owner", []byte("pid 4194303\nhost gone\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.run("restore", e.snapshotIDs()[0], "--target", filepath.Join(parent, "target"))
	if r.code != 0 {
		t.Fatalf("restore: exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "removed the staging directory of a restore that did not finish"); n != 1 || !strings.Contains(r.stderr, stale) {
		t.Fatalf("stderr %q: want one line naming %s", r.stderr, stale)
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "target target.pre-restore-20260101T000000.000000000Z" {
		t.Fatalf("beside the target: %s", got)
	}
}
