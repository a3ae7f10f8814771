package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// writeRandomTree writes files of random (incompressible) bytes totalling
// about size bytes under dir, streamed, and returns how many files it wrote.
func writeRandomTree(t *testing.T, dir string, size int64, seed uint64) int {
	t.Helper()
	const fileSize = 8 << 20
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	n := 0
	for written := int64(0); written < size; n++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", n%7))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(sub, fmt.Sprintf("file-%03d.bin", n)))
		if err != nil {
			t.Fatal(err)
		}
		m := min(int64(fileSize-n*4096), size-written) // sizes differ, so files differ
		if _, err := io.CopyN(f, rng, m); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		written += m
	}
	return n
}

// treeDigest describes every object below root: type, permissions, size,
// BLAKE3 of the content, mtime, symlink target, one line per path.
func repoTreeDigest(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d", fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := blake3.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %d %s", fi.Size(), hex.EncodeToString(h.Sum(nil)))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc = "symlink " + target
		case fi.IsDir():
			desc = fmt.Sprintf("%v", fi.Mode()) // directory mtimes change as files are read in
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("digest %s: %v", root, err)
	}
	return out
}

// sameTree fails the test with the differences between two digests.
func sameDigest(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if diffs := digestDiffs(want, got); len(diffs) > 0 {
		t.Fatalf("%s: %d differences:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
	}
}

// digestDiffs lists the differences between two digests, sorted.
func digestDiffs(want, got map[string]string) []string {
	var diffs []string
	for p, w := range want {
		if g := got[p]; g != w {
			diffs = append(diffs, fmt.Sprintf("%s: want %q, got %q", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "unexpected "+p)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// snapshotIDs lists the repository's snapshots through `snapshots --json`.
func (e *env) snapshotIDs() []string {
	e.t.Helper()
	var sns []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &sns); err != nil {
		e.t.Fatal(err)
	}
	ids := make([]string, len(sns))
	for i, s := range sns {
		ids[i] = s.ID
	}
	return ids
}

// countFiles counts the regular, non-temporary files under a repository dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	return n
}
