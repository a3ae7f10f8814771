package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
	"memento/repo/backend/local"
)

// mountRequireFUSE skips a mount test where FUSE cannot work, except in CI
// (CI=true), where it fails: a skipped mount test would hide an untested mount.
func mountRequireFUSE(t *testing.T) {
	t.Helper()
	fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err == nil {
		syscall.Close(fd)
		if os.Geteuid() == 0 {
			return
		}
		if _, lerr := exec.LookPath("fusermount3"); lerr == nil {
			return
		}
		err = errors.New("not root and no fusermount3")
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("FUSE tests must run in CI: /dev/fuse: %v", err)
	}
	t.Skipf("FUSE unusable here (%v); set CI=true to make this a failure", err)
}

// mountLogBuffer is an io.Writer safe to read while a process writes it.
type mountLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *mountLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *mountLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mountProc is a running `memento mount`.
type mountProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mp     string
	stdout *mountLogBuffer
	stderr *mountLogBuffer
	exited chan struct{}
	code   int
}

// startMount runs `memento mount MP` and waits until it says it is ready.
func (e *env) startMount(t *testing.T, args ...string) *mountProc {
	t.Helper()
	mountRequireFUSE(t)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &mountProc{t: t, mp: mp, stdout: &mountLogBuffer{}, stderr: &mountLogBuffer{}, exited: make(chan struct{})}
	m.cmd = exec.Command(mementoBin, append([]string{"mount", mp}, args...)...)
	m.cmd.Env = e.environ()
	m.cmd.Stderr = m.stderr
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			m.stdout.Write([]byte(sc.Text() + "\n"))
			if first {
				ready <- sc.Text()
				first = false
			}
		}
	}()
	go func() {
		err := m.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			m.code = ee.ExitCode()
		}
		close(m.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-m.exited:
			return
		default:
		}
		m.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-m.exited:
		case <-time.After(15 * time.Second):
			m.cmd.Process.Kill()
			exec.Command("umount", "-l", mp).Run()
			t.Errorf("memento mount did not exit 15s after SIGINT\nstderr: %s", m.stderr)
		}
	})
	select {
	case line := <-ready:
		want := fmt.Sprintf("mounted %s at %s; Ctrl-C or 'memento umount %s' to unmount", e.repo, mp, mp)
		if line != want {
			t.Fatalf("first line %q, want %q", line, want)
		}
		t.Logf("mount ready in %v", time.Since(start))
	case <-m.exited:
		t.Fatalf("memento mount exited %d before it was ready\nstderr: %s", m.code, m.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("memento mount not ready after 30s\nstderr: %s", m.stderr)
	}
	return m
}

// stop sends sig and requires a clean exit with code 0 within timeout.
func (m *mountProc) stop(sig os.Signal, timeout time.Duration) {
	m.t.Helper()
	m.cmd.Process.Signal(sig)
	m.wait(timeout)
}

func (m *mountProc) wait(timeout time.Duration) {
	m.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(timeout):
		m.t.Fatalf("memento mount still running %v later\nstderr: %s", timeout, m.stderr)
	}
	if m.code != 0 {
		m.t.Fatalf("memento mount exited %d\nstderr: %s", m.code, m.stderr)
	}
	if !strings.Contains(m.stdout.String(), "unmounted "+m.mp) {
		m.t.Errorf("no 'unmounted' line in:\n%s", m.stdout)
	}
	if isMounted(m.mp) {
		m.t.Errorf("%s is still mounted", m.mp)
	}
}

func isMounted(mp string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b), " "+mp+" ")
}

// mountSource writes a tree with every kind of node, exact modes and mtimes.
func mountSource(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	files := map[string]int{"a.txt": 1000, "big.bin": 3<<20 + 17, "empty": 0, "sub/b.txt": 70000, "sub/deeper/c": 5, "sub/run.sh": 100}
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustOK(t, os.Chmod(filepath.Join(dir, "sub/run.sh"), 0o755))
	mustOK(t, os.Chmod(filepath.Join(dir, "a.txt"), 0o600))
	mustOK(t, os.Symlink("sub/b.txt", filepath.Join(dir, "link")))
	mustOK(t, os.Symlink("/nonexistent/target", filepath.Join(dir, "dangling")))
	mustOK(t, os.Chmod(filepath.Join(dir, "sub/deeper"), 0o700))
	mt := time.Date(2025, 12, 24, 18, 0, 0, 123456789, time.UTC)
	mustOK(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		mt = mt.Add(time.Minute)
		return os.Chtimes(p, mt, mt)
	}))
	// Directories last, children first, so their times stick.
	mustOK(t, os.Chtimes(filepath.Join(dir, "sub", "deeper"), mt, mt))
	mustOK(t, os.Chtimes(filepath.Join(dir, "sub"), mt, mt))
	mustOK(t, os.Chtimes(dir, mt, mt))
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mountSameTree compares two trees through lstat and content, and with diff -r.
func mountSameTree(t *testing.T, want, got string) {
	t.Helper()
	out, err := exec.Command("diff", "-r", "--no-dereference", want, got).CombinedOutput()
	if err != nil {
		t.Errorf("diff -r %s %s: %v\n%s", want, got, err, out)
	}
	sameModesAndSizes(t, want, got, true)
}

func TestMountServesSnapshots(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	mountSource(t, src)
	e.mustRun("backup", src, "--tag", "e2e", "--host", "testhost")
	restored := filepath.Join(t.TempDir(), "restored")
	e.mustRun("restore", "latest", "--target", restored)

	m := e.startMount(t)
	latest, err := os.Readlink(filepath.Join(m.mp, "snapshots", "latest"))
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(m.mp, "snapshots", latest)
	inSnap := inSnapshot(t, snap, src) // the full-path layout: src's absolute path
	mountSameTree(t, src, inSnap)
	mountSameTree(t, inSnapshot(t, restored, src), inSnap)
	for _, p := range []string{"hosts/testhost/latest", "tags/e2e/" + latest} {
		if got, err := os.Readlink(filepath.Join(m.mp, p)); err != nil || got != "../../snapshots/"+latest {
			t.Errorf("%s -> %q, %v", p, got, err)
		}
	}

	t.Run("stable inodes", func(t *testing.T) {
		var a, b syscall.Stat_t
		p := filepath.Join(inSnap, "sub", "b.txt")
		mustOK(t, syscall.Stat(p, &a))
		mustOK(t, syscall.Stat(p, &b))
		if a.Ino != b.Ino || a.Ino == 0 {
			t.Errorf("inode %d then %d", a.Ino, b.Ino)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		f := filepath.Join(inSnap, "a.txt")
		d := filepath.Join(inSnap, "sub")
		for name, op := range map[string]func() error{
			"write":  func() error { return os.WriteFile(f, []byte("x"), 0o644) },
			"create": func() error { return os.WriteFile(filepath.Join(d, "new"), []byte("x"), 0o644) },
			"mkdir":  func() error { return os.Mkdir(filepath.Join(d, "new"), 0o755) },
			"unlink": func() error { return os.Remove(f) },
			"rename": func() error { return os.Rename(f, filepath.Join(d, "moved")) },
			"chmod":  func() error { return os.Chmod(f, 0o777) },
		} {
			if err := op(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("%s: %v, want EROFS", name, err)
			}
		}
	})

	t.Run("concurrent readers", func(t *testing.T) {
		names := []string{"big.bin", "sub/b.txt", "a.txt"}
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := names[g%len(names)]
				if g%2 == 0 {
					name = "big.bin"
				}
				want, _ := os.ReadFile(filepath.Join(src, name))
				got, err := os.ReadFile(filepath.Join(inSnap, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("reader %d: %s differs (%v)", g, name, err)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("new snapshot appears", func(t *testing.T) {
		mustOK(t, os.WriteFile(filepath.Join(src, "added.txt"), []byte("added\n"), 0o644))
		e.mustRun("backup", src)
		deadline := time.Now().Add(15 * time.Second)
		for {
			l, _ := os.Readlink(filepath.Join(m.mp, "snapshots", "latest"))
			if l != latest {
				b, err := os.ReadFile(filepath.Join(inSnapshot(t, filepath.Join(m.mp, "snapshots", l), src), "added.txt"))
				if err != nil || string(b) != "added\n" {
					t.Errorf("new snapshot %s: added.txt = %q, %v", l, b, err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("new snapshot did not appear within 15s")
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	m.stop(syscall.SIGINT, 15*time.Second)
	if s := m.stderr.String(); s != "" {
		t.Errorf("mount logged:\n%s", s)
	}
}

// openRepo opens the test's repository in this process.
func (e *env) openRepo(t *testing.T) *repo.Repository {
	t.Helper()
	be, err := local.Open(e.repo)
	mustOK(t, err)
	r, err := repo.Open(context.Background(), be, repo.Options{Password: e.password, CacheDir: e.cache})
	mustOK(t, err)
	return r
}

// mountChunkLocation opens the repository in the test to find where a file's
// chunk is stored.
func (e *env) mountChunkLocation(t *testing.T, snapRef, space, rel string, i int) (chunk.ID, string, int64) {
	t.Helper()
	ctx := context.Background()
	r := e.openRepo(t)
	sn, err := r.FindSnapshot(ctx, snapRef)
	mustOK(t, err)
	id := sn.Root
	var n *repo.Node
	for _, part := range strings.Split(rel, "/") {
		tree, err := r.LoadTree(ctx, space, id)
		mustOK(t, err)
		if n = tree.Find(part); n == nil {
			t.Fatalf("%s: no %s", rel, part)
		}
		if n.Subtree != nil {
			id = *n.Subtree
		}
	}
	cid := n.Content[i]
	locs, err := r.Index().Lookup(space, []chunk.ID{cid})
	mustOK(t, err)
	loc := locs[cid]
	h := fmt.Sprintf("%x", loc.Pack)
	return cid, filepath.Join(e.repo, "data", h[:2], h), int64(loc.Offset) + int64(loc.Length)/2
}

func TestMountCorruptChunkGivesEIO(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "data")
	// The warm page file is cut in fixed chunks of cs bytes: chunk 3 starts at 3*cs.
	warm := filepath.Join(dd, "spaces", "s1", "warm", "warm_tier.dat")
	cs := int64(chunk.ParamsWarm.Max)
	mustOK(t, os.MkdirAll(filepath.Dir(warm), 0o755))
	content := make([]byte, 256<<10)
	for i := range content {
		content[i] = byte(i*7 + i/4096)
	}
	for p := 0; p < len(content); p += engram.PageSize { // pages as Engram writes them: the backup guard looks
		copy(content[p:], engram.WarmPageMagic)
		binary.LittleEndian.PutUint32(content[p+4:], uint32(p/engram.PageSize))
	}
	mustOK(t, os.WriteFile(warm, content, 0o644))
	e.mustRun("backup", "--data-dir", dd, "--space", "s1")
	rel := "spaces/s1/warm/warm_tier.dat"
	id, pack, off := e.mountChunkLocation(t, "latest", "s1", rel, 3)
	f, err := os.OpenFile(pack, os.O_RDWR, 0)
	mustOK(t, err)
	b := []byte{0}
	_, err = f.ReadAt(b, off)
	mustOK(t, err)
	b[0] ^= 1
	_, err = f.WriteAt(b, off)
	mustOK(t, err)
	f.Close()

	m := e.startMount(t)
	snapID, _ := os.Readlink(filepath.Join(m.mp, "snapshots", "latest"))
	mf, err := os.Open(filepath.Join(m.mp, "snapshots", snapID, rel))
	mustOK(t, err)
	defer mf.Close()
	buf := make([]byte, 4096)
	if _, err := mf.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, content[:4096]) {
		t.Errorf("good chunk: %v", err)
	}
	if n, err := mf.ReadAt(buf, 3*cs+100); !errors.Is(err, syscall.EIO) {
		t.Errorf("read in the damaged chunk: %d bytes, %v; want EIO", n, err)
	}
	if _, err := mf.ReadAt(buf, 5*cs); err != nil || !bytes.Equal(buf, content[5*cs:5*cs+4096]) {
		t.Errorf("chunk after the damaged one: %v", err)
	}
	mf.Close()
	m.stop(syscall.SIGTERM, 15*time.Second)
	log := m.stderr.String()
	for _, want := range []string{"read failed", "snapshot=" + snapID, "file=/" + rel, "chunk=" + id.String(), "corrupt=true"} {
		if !strings.Contains(log, want) {
			t.Errorf("mount log does not contain %q:\n%s", want, log)
		}
	}
}

func TestMountUnmountWithOpenReader(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	mountSource(t, src)
	e.mustRun("backup", src)

	t.Run("umount command", func(t *testing.T) {
		m := e.startMount(t)
		f, err := os.Open(filepath.Join(inSnapshot(t, filepath.Join(m.mp, "snapshots", "latest"), src), "big.bin"))
		mustOK(t, err)
		buf := make([]byte, 1<<20)
		_, err = io.ReadFull(f, buf)
		mustOK(t, err)
		out := e.mustRun("umount", m.mp)
		if !strings.Contains(out, "detached") {
			t.Errorf("umount with an open file said %q", out)
		}
		if isMounted(m.mp) {
			t.Error("still in the mount table after umount")
		}
		// The open file still reads; closing it ends the mount process.
		if _, err := io.ReadFull(f, buf); err != nil {
			t.Errorf("read after a lazy unmount: %v", err)
		}
		f.Close()
		m.wait(15 * time.Second)
	})

	t.Run("SIGTERM", func(t *testing.T) {
		m := e.startMount(t)
		f, err := os.Open(filepath.Join(inSnapshot(t, filepath.Join(m.mp, "snapshots", "latest"), src), "big.bin"))
		mustOK(t, err)
		defer f.Close()
		_, err = f.Read(make([]byte, 1000))
		mustOK(t, err)
		start := time.Now()
		m.stop(syscall.SIGTERM, 15*time.Second) // must not wait for the reader
		t.Logf("exited %v after SIGTERM with a file open", time.Since(start))
	})

	t.Run("umount without open files", func(t *testing.T) {
		m := e.startMount(t)
		if out := e.mustRun("umount", m.mp); !strings.Contains(out, "unmounted "+m.mp) {
			t.Errorf("umount said %q", out)
		}
		m.wait(15 * time.Second)
	})
}

func TestMountErrors(t *testing.T) {
	mountRequireFUSE(t)
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	mustOK(t, os.WriteFile(file, nil, 0o644))
	e.wantFail(exitUsage, "does not exist (create it with 'mkdir -p", "mount", filepath.Join(dir, "missing"))
	e.wantFail(exitUsage, "is not a directory", "mount", file)
	e.wantFail(exitUsage, "--cache-size", "mount", dir, "--cache-size", "lots")
	e.wantFail(exitFailure, "is not a mount point", "umount", dir)
	m := e.startMount(t)
	e.wantFail(exitFailure, "is already mounted", "mount", m.mp)
	m.stop(syscall.SIGINT, 15*time.Second)
}
