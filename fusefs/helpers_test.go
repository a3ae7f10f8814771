package fusefs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/repo"
)

// requireFUSE skips a test that needs a real mount when FUSE cannot work
// here, except in CI (CI=true), where a skipped FUSE test would hide that the
// mount is untested: there it fails.
func requireFUSE(t testing.TB) {
	t.Helper()
	reason := ""
	if fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0); err != nil {
		reason = "cannot open /dev/fuse: " + err.Error()
	} else {
		syscall.Close(fd)
		if os.Geteuid() != 0 {
			if _, err := fusermount(); err != nil {
				reason = "not root and " + err.Error()
			}
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("FUSE tests must run in CI: %s", reason)
	}
	t.Skipf("FUSE unusable here (%s); set CI=true to make this a failure", reason)
}

// logBuffer collects log lines for tests that check what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// mount mounts r on a fresh directory and unmounts it when the test ends.
func mount(t testing.TB, r *repo.Repository, opts Options) (*Server, string, *logBuffer) {
	t.Helper()
	requireFUSE(t)
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Mount(r, mp, opts)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if _, err := s.Unmount(5 * time.Second); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return s, mp, logs
}

// entry describes one file of a source tree to create.
type entry struct {
	path   string
	kind   string // "file", "dir", "symlink"
	size   int    // files: bytes of pseudo-random content
	mode   fs.FileMode
	target string // symlinks
	mtime  time.Time
}

// makeTree creates a source tree under dir: content is seeded, so runs repeat.
func makeTree(t testing.TB, dir string, entries []entry) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var dirs []entry
	for _, e := range entries {
		p := filepath.Join(dir, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch e.kind {
		case "dir":
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, e)
		case "symlink":
			if err := os.Symlink(e.target, p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, pseudoRandom(rng, e.size), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
		if !e.mtime.IsZero() {
			ts := []syscall.Timespec{syscall.NsecToTimespec(e.mtime.UnixNano()), syscall.NsecToTimespec(e.mtime.UnixNano())}
			if err := utimesNoFollow(p, ts); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Directory modes and times last: creating files inside changes them.
	for i := len(dirs) - 1; i >= 0; i-- {
		e := dirs[i]
		p := filepath.Join(dir, e.path)
		if e.mode != 0 {
			if err := os.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
		if !e.mtime.IsZero() {
			if err := os.Chtimes(p, e.mtime, e.mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// pseudoRandom returns n bytes that compress somewhat, like real data:
// letters from a 64-symbol alphabet.
func pseudoRandom(rng *rand.Rand, n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n"
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = alphabet[v&63]
			v >>= 6
		}
	}
	return b
}

// compareTrees fails the test unless got holds exactly what want holds:
// the same names, types, permission bits, sizes, mtimes, link targets and bytes.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		g := filepath.Join(got, rel)
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(g)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		if rel != "." && !wi.ModTime().Equal(gi.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		switch {
		case wi.Mode().Type() == fs.ModeSymlink:
			wt, _ := os.Readlink(p)
			gt, err := os.Readlink(g)
			if err != nil || wt != gt {
				t.Errorf("%s: link target %q (%v), want %q", rel, gt, err, wt)
			}
		case wi.Mode().IsRegular():
			if wi.Size() != gi.Size() {
				t.Errorf("%s: size %d, want %d", rel, gi.Size(), wi.Size())
			}
			if !sameContent(t, p, g) {
				t.Errorf("%s: content differs", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if !seen[rel] {
			t.Errorf("%s: not in %s", rel, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sameContent(t testing.TB, a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Errorf("open %s: %v", b, err)
		return false
	}
	defer fb.Close()
	ba, bb := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			if isEOF(ea) && isEOF(eb) {
				return true
			}
			t.Errorf("read %s: %v / %v", b, ea, eb)
			return false
		}
	}
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
