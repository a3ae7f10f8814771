package repotest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"memento/repo/backend/local"
)

// Entry describes one file system object as a restore must reproduce it.
type Entry struct {
	Type   string // "file", "dir", "symlink"
	Mode   fs.FileMode
	Size   int64
	MTime  int64 // ns; directories included
	Sum    string
	Target string
	// Link names the first path (in walk order) of a regular file's hard-link
	// group, for files with more than one link; Xattrs lists the extended
	// attributes, name=quoted value, sorted. Empty for most objects, and
	// absent from the format-1 golden digests.
	Link   string `json:",omitempty"`
	Xattrs string `json:",omitempty"`
}

func (e Entry) String() string {
	return fmt.Sprintf("%s mode=%v size=%d mtime=%d b3=%.16s target=%q link=%q xattrs=%s", e.Type, e.Mode, e.Size, e.MTime, e.Sum, e.Target, e.Link, e.Xattrs)
}

// DigestTree describes every object below root (root itself excluded), keyed by
// slash-separated relative path. Two trees are restored faithfully when their
// digests are equal.
func DigestTree(t testing.TB, root string) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	groups := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := Entry{Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), MTime: st.Mtim.Nano()}
		switch {
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type, e.Mode = "symlink", 0
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			e.Type, e.Size, e.Sum = "file", fi.Size(), FileSum(t, p)
			if st.Nlink > 1 {
				if _, ok := groups[st.Ino]; !ok {
					groups[st.Ino] = filepath.ToSlash(rel)
				}
				e.Link = groups[st.Ino]
			}
		case fi.Mode()&fs.ModeNamedPipe != 0:
			e.Type = "fifo"
		default:
			e.Type = "other"
		}
		e.Xattrs = xattrList(t, p)
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatalf("digest %s: %v", root, err)
	}
	return out
}

// FileSum is the hex BLAKE3-256 of a file, streamed.
func FileSum(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CompareTrees fails the test with every difference between two digests.
func CompareTrees(t testing.TB, want, got map[string]Entry) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q (%v)", p, w))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%q:\n\twant %v\n\tgot  %v", p, w, g))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %q (%v)", p, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d differences:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

// WriteFile writes data to p, making parent directories.
func WriteFile(t testing.TB, p string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatal(err)
	}
}

// RandomBytes returns n deterministic pseudo-random, incompressible bytes.
func RandomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := 0; i+8 <= n; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i], b[i+1], b[i+2], b[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

// NoTempLeft fails if parent holds a restore temporary directory.
func NoTempLeft(t testing.TB, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".restore-") {
			t.Errorf("restore left a temporary %s in %s", e.Name(), parent)
		}
	}
}

// NewLocal creates a local backend in a new directory p, closed when the
// test ends.
func NewLocal(t testing.TB, p string) *local.Backend {
	t.Helper()
	be, err := local.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// xattrList lists p's extended attributes as name="value" pairs, sorted.
func xattrList(t testing.TB, p string) string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return ""
	}
	buf := make([]byte, sz)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("list xattrs of %s: %v", p, err)
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var out []string
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("xattr %s of %s: %v", name, p, err)
		}
		out = append(out, fmt.Sprintf("%s=%q", name, v[:m]))
	}
	return strings.Join(out, " ")
}
