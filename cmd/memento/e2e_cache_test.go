package main

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cacheFile finds the one local index cache file under the env's cache dir.
func (e *env) cacheFile() string {
	e.t.Helper()
	var found []string
	_ = filepath.WalkDir(e.cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		e.t.Fatalf("want one cache file under %s, found %v", e.cache, found)
	}
	return found[0]
}

// A truncated cache file (a crash, a full disk, a copy cut short) never
// crashes a command: the cache is validated before bbolt maps it, recreated
// from the repository with one log line naming it, and the command goes on.
func TestTruncatedCacheIsRebuilt(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeRandomTree(t, src, 3<<20, 7)
	e.mustRun("backup", src)
	e.mustRun("backup", src)
	cache := e.cacheFile()
	good, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	// The pages in use end at the high-water mark of the newer meta page
	// (bbolt's layout: page size at byte 24, page count at 56, txid at 64 of
	// each meta page); bbolt grows the file in larger steps than that.
	pageSize := int64(binary.LittleEndian.Uint32(good[24:]))
	meta := good[:pageSize]
	if binary.LittleEndian.Uint64(good[pageSize+64:]) > binary.LittleEndian.Uint64(good[64:]) {
		meta = good[pageSize:]
	}
	used := int64(binary.LittleEndian.Uint64(meta[56:])) * pageSize
	if used < 6*pageSize || used > int64(len(good)) {
		t.Fatalf("cache file of %d bytes uses %d: too few pages to cut mid-data", len(good), used)
	}
	sizes := map[string]int64{"empty": 0, "mid-meta": 100, "second meta": pageSize + 100,
		"mid-data": used / 2, "last page": used - pageSize + 1}
	cmds := map[string][]string{
		"snapshots":      {"snapshots"},
		"restore":        {"restore", "latest", "--target", ""},
		"index rebuild":  {"index", "rebuild"},
		"check --repair": {"check", "--repair"},
	}
	for what, size := range sizes {
		for name, args := range cmds {
			t.Run(strings.ReplaceAll(what+" "+name, " ", "_"), func(t *testing.T) {
				e.t = t
				// Every case starts from the full, valid cache, cut short.
				if err := os.WriteFile(cache, good[:size], 0o600); err != nil {
					t.Fatal(err)
				}
				args := append([]string(nil), args...)
				if args[0] == "restore" {
					args[3] = filepath.Join(t.TempDir(), "dst")
				}
				r := e.run(args...)
				if r.code != 0 {
					t.Fatalf("memento %s with a cache cut to %d bytes: exit %d\nstderr: %s", strings.Join(args, " "), size, r.code, r.stderr)
				}
				var lines []string
				for _, l := range strings.Split(r.stderr, "\n") {
					if strings.Contains(l, cache) {
						lines = append(lines, l)
					}
				}
				if size > 0 && len(lines) != 1 {
					t.Fatalf("cache cut to %d bytes: want one line naming %s, got %d:\n%s", size, cache, len(lines), r.stderr)
				}
				if args[0] == "restore" {
					sameDigest(t, "restore after cache rebuild", repoTreeDigest(t, src), repoTreeDigest(t, inSnapshot(t, args[3], src)))
				}
			})
		}
	}
}
