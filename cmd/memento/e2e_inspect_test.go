package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// goTreeDirs is the subset of the Go toolchain's src/ the inspect tests
// back up: a real tree of a few hundred files, small enough to be quick.
var goTreeDirs = []string{"strings", "encoding/json", "encoding/csv", "net/url", "unicode/utf8"}

// copyGoTree copies goTreeDirs of $GOROOT/src into dst/src, keeping modes
// and mtimes, and returns the path of dst/src.
func copyGoTree(t *testing.T, dst string) string {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(goroot)), "src")
	out := filepath.Join(dst, "src")
	for _, d := range goTreeDirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			target := filepath.Join(out, rel)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			switch {
			case fi.IsDir():
				return os.MkdirAll(target, 0o755)
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
					return err
				}
				return os.Chtimes(target, fi.ModTime(), fi.ModTime())
			}
			return nil
		})
		if err != nil {
			t.Fatalf("copy %s: %v", d, err)
		}
	}
	return out
}

// regularFiles maps the regular files below dir (slash paths relative to
// dir's parent, as dump's tar names them) to their content.
func regularFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	base := filepath.Dir(dir)
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(base, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sumSizes(files map[string][]byte) uint64 {
	var n uint64
	for _, b := range files {
		n += uint64(len(b))
	}
	return n
}

// untar reads a tar archive into name -> content (regular files), name ->
// "-> target" (symlinks), and the modes of everything.
func untar(t *testing.T, b []byte) (files map[string][]byte, links map[string]string, modes map[string]int64) {
	t.Helper()
	files, links, modes = map[string][]byte{}, map[string]string{}, map[string]int64{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		modes[h.Name] = h.Mode
		switch h.Typeflag {
		case tar.TypeReg:
			c, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = c
		case tar.TypeSymlink:
			links[h.Name] = h.Linkname
		}
	}
}

type snapJSON struct {
	ID   string   `json:"id"`
	Tags []string `json:"tags"`
	Host string   `json:"host"`
}

func (e *env) snapshotsJSON(args ...string) []snapJSON {
	e.t.Helper()
	var out []snapJSON
	if err := json.Unmarshal([]byte(e.mustRun(append([]string{"snapshots", "--json"}, args...)...)), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestInspectGoTree runs dump, find, diff, stats, tag, snapshots' filters
// and info on two backups of a real tree (a part of the Go toolchain's
// src/), and checks each answer against the files on disk.
func TestInspectGoTree(t *testing.T) {
	e := newEnv(t)
	src := copyGoTree(t, t.TempDir())
	before := regularFiles(t, src)
	if len(before) < 100 {
		t.Fatalf("only %d files copied from GOROOT", len(before))
	}
	e.mustRun("backup", src, "--tag", "nightly")
	// Path snapshots keep full paths: P is where src's parent is in them.
	P := filepath.Dir(inSnapshot(t, "/", src))

	// Change the tree: content, mode only, removal, addition, a symlink.
	modified := "src/strings/strings.go"
	chmodded := "src/strings/reader.go"
	removed := "src/net/url/url_test.go"
	added := "src/net/url/NOTES.txt"
	link := "src/encoding/json/latest"
	root := filepath.Dir(src)
	appendFile(t, filepath.Join(root, modified), "\n// changed by the test\n")
	if err := os.Chmod(filepath.Join(root, chmodded), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, removed)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, added), []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("stream.go", filepath.Join(root, link)); err != nil {
		t.Fatal(err)
	}
	after := regularFiles(t, src)
	e.mustRun("backup", src, "--tag", "weekly,extra", "--host", "other-host")
	sns := e.snapshotsJSON()
	if len(sns) != 2 {
		t.Fatalf("%d snapshots", len(sns))
	}
	a, b := sns[0].ID, sns[1].ID

	t.Run("dump", func(t *testing.T) {
		if got := e.mustRun("dump", b, P+"/"+modified); got != string(after[modified]) {
			t.Fatalf("dump of the modified file: %d bytes, want %d", len(got), len(after[modified]))
		}
		if got := e.mustRun("dump", a[:8], P+"/"+modified); got != string(before[modified]) {
			t.Fatalf("dump of the file in the first snapshot: %d bytes, want %d", len(got), len(before[modified]))
		}
		// A directory is a tar archive: every file's bytes, modes, symlinks.
		files, links, modes := untar(t, []byte(e.mustRun("dump", "latest", P+"/src")))
		if len(files) != len(after) {
			t.Fatalf("tar has %d files, the tree %d", len(files), len(after))
		}
		for name, want := range after {
			if !bytes.Equal(files[name], want) {
				t.Fatalf("tar %s: %d bytes differ from the tree's %d", name, len(files[name]), len(want))
			}
		}
		if links[link] != "stream.go" {
			t.Fatalf("tar symlink %s -> %q", link, links[link])
		}
		if modes[chmodded] != 0o600 || modes["src/strings/"] != 0o755 {
			t.Fatalf("tar modes: %s %o, src/strings/ %o", chmodded, modes[chmodded], modes["src/strings/"])
		}
		// --archive tar for one file; a subdirectory is named from its parent.
		files, _, _ = untar(t, []byte(e.mustRun("dump", "--archive", "tar", b, P+"/"+added)))
		if string(files["NOTES.txt"]) != "notes\n" || len(files) != 1 {
			t.Fatalf("tar of one file: %v", slices.Collect(maps.Keys(files)))
		}
		files, _, _ = untar(t, []byte(e.mustRun("dump", b, P+"/src/unicode")))
		if !bytes.Equal(files["unicode/utf8/utf8.go"], after["src/unicode/utf8/utf8.go"]) {
			t.Fatalf("tar of /src/unicode: names %v", slices.Sorted(maps.Keys(files)))
		}
		e.wantFail(exitNotFound, P+"/src/nope: not found", "dump", b, P+"/src/nope")
		e.wantFail(exitNotFound, P+"/"+removed+": not found", "dump", b, P+"/"+removed)
		e.wantFail(exitNotFound, "not found", "dump", unusedPrefix(a, b), P+"/src")
		e.wantFail(exitUsage, "symlink", "dump", b, P+"/"+link)
		e.wantFail(exitUsage, "--archive \"7z\"", "dump", "--archive", "7z", b, P+"/src")
		// zip: the same files, modes and symlink.
		zb := []byte(e.mustRun("dump", "--archive", "zip", b, P+"/src/encoding"))
		zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
		if err != nil {
			t.Fatal(err)
		}
		nz := 0
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			c, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("zip %s: %v", f.Name, err)
			}
			switch {
			case f.Mode()&fs.ModeSymlink != 0:
				if "src/"+f.Name != link || string(c) != "stream.go" {
					t.Fatalf("zip symlink %s -> %q", f.Name, c)
				}
			case f.Mode().IsRegular():
				nz++
				fi, err := os.Stat(filepath.Join(src, f.Name))
				if err != nil || !bytes.Equal(c, after["src/"+f.Name]) || f.Mode().Perm() != fi.Mode().Perm() {
					t.Fatalf("zip %s: %d bytes, mode %v", f.Name, len(c), f.Mode())
				}
			}
		}
		if want := len(regularFiles(t, filepath.Join(src, "encoding"))); nz != want {
			t.Fatalf("zip has %d files, the tree %d", nz, want)
		}
	})

	t.Run("find", func(t *testing.T) {
		var ms []struct {
			Snapshot string    `json:"snapshot"`
			Path     string    `json:"path"`
			Size     uint64    `json:"size"`
			MTime    time.Time `json:"mtime"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("find", "--json", "*.go")), &ms); err != nil {
			t.Fatal(err)
		}
		goFiles := func(m map[string][]byte) int {
			n := 0
			for p := range m {
				if strings.HasSuffix(p, ".go") {
					n++
				}
			}
			return n
		}
		if want := goFiles(before) + goFiles(after); len(ms) != want {
			t.Fatalf("find *.go: %d matches, want %d", len(ms), want)
		}
		if ms[0].Snapshot != b || ms[len(ms)-1].Snapshot != a {
			t.Fatalf("find: not newest snapshot first: first %s, last %s", ms[0].Snapshot, ms[len(ms)-1].Snapshot)
		}
		for _, m := range ms {
			if m.Snapshot == b && m.Path == P+"/"+modified {
				fi, err := os.Stat(filepath.Join(root, modified))
				if err != nil || m.Size != uint64(fi.Size()) || !m.MTime.Equal(fi.ModTime()) {
					t.Fatalf("find %s: size %d mtime %v, on disk %v", m.Path, m.Size, m.MTime, fi)
				}
			}
		}
		out := e.mustRun("find", P+"/src/net/url/*.txt", "--snapshot", "latest")
		if !strings.Contains(out, P+"/"+added) || !strings.Contains(out, "1 match in 1 snapshot\n") {
			t.Fatalf("find a path pattern:\n%s", out)
		}
		out = e.mustRun("find", "url_test.go", "--tag", "nightly")
		if !strings.Contains(out, a[:8]) || strings.Contains(out, b[:8]) || !strings.Contains(out, "1 match in 1 snapshot\n") {
			t.Fatalf("find in the nightly snapshot:\n%s", out)
		}
		e.wantFail(exitUsage, "pattern \"[\"", "find", "[")
	})

	t.Run("diff", func(t *testing.T) {
		var d struct {
			Changes []struct{ Path, Kind, Type, What string } `json:"changes"`
			Summary struct {
				Added        struct{ Files, Symlinks, Bytes uint64 } `json:"added"`
				Removed      struct{ Files, Bytes uint64 }           `json:"removed"`
				Modified     uint64                                  `json:"modified"`
				MetadataOnly uint64                                  `json:"metadata_only"`
			} `json:"summary"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("diff", "--json", "--metadata", a, b)), &d); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range d.Changes {
			s := c.Kind + " " + c.Path
			if c.What != "" {
				s += " " + c.What
			}
			got = append(got, s)
		}
		// The directories whose entries changed changed their mtimes.
		// (Directory mtimes, which change with every entry, are not compared.)
		want := []string{"+ " + P + "/" + link, "+ " + P + "/" + added, "- " + P + "/" + removed, "U " + P + "/" + chmodded + " mode", "M " + P + "/" + modified}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("diff:\n got %q\nwant %q", got, want)
		}
		s := d.Summary
		wantAdded := uint64(len(after[added]) + len(after[modified]))
		wantRemoved := uint64(len(before[removed]) + len(before[modified]))
		if s.Added.Files != 1 || s.Added.Symlinks != 1 || s.Removed.Files != 1 || s.Modified != 1 || s.MetadataOnly != 1 ||
			s.Added.Bytes != wantAdded || s.Removed.Bytes != wantRemoved {
			t.Fatalf("diff summary %+v, want bytes +%d -%d", s, wantAdded, wantRemoved)
		}
		out := e.mustRun("diff", a, "latest")
		for _, l := range []string{"M    " + P + "/" + modified, "-    " + P + "/" + removed, "+    " + P + "/" + added, "Files:           1 new,     1 removed,     1 changed"} {
			if !strings.Contains(out, l) {
				t.Fatalf("diff output lacks %q:\n%s", l, out)
			}
		}
		if strings.Contains(out, chmodded) {
			t.Fatalf("diff without --metadata lists a metadata change:\n%s", out)
		}
		if out := e.mustRun("diff", "--json", b, b); !strings.Contains(out, `"changes": []`) {
			t.Fatalf("diff of a snapshot with itself:\n%s", out)
		}
	})

	t.Run("stats", func(t *testing.T) {
		var st struct {
			Snapshots        int     `json:"snapshots"`
			Files            uint64  `json:"files"`
			Bytes            uint64  `json:"restore_size"`
			DataRaw          uint64  `json:"data_raw_bytes"`
			DataStored       uint64  `json:"data_stored_bytes"`
			DataBlobs        uint64  `json:"data_blobs"`
			DedupRatio       float64 `json:"dedup_ratio"`
			CompressionRatio float64 `json:"compression_ratio"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("stats", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		total := sumSizes(before) + sumSizes(after)
		if st.Snapshots != 2 || st.Files != uint64(len(before)+len(after)) || st.Bytes != total {
			t.Fatalf("stats: %+v, want %d files, %d bytes", st, len(before)+len(after), total)
		}
		// The second snapshot adds little: the distinct data is about
		// one tree, so the dedup ratio is close to 2; Go source compresses.
		if st.DataRaw < sumSizes(after) || st.DataRaw > sumSizes(after)+sumSizes(before)/4 || st.DedupRatio < 1.6 ||
			st.DedupRatio != float64(st.Bytes)/float64(st.DataRaw) || st.CompressionRatio < 2 || st.DataBlobs == 0 {
			t.Fatalf("stats: %+v (tree of %d bytes)", st, sumSizes(after))
		}
		if err := json.Unmarshal([]byte(e.mustRun("stats", "--json", a)), &st); err != nil {
			t.Fatal(err)
		}
		if st.Snapshots != 1 || st.Bytes != sumSizes(before) || st.DataRaw > sumSizes(before) {
			t.Fatalf("stats of one snapshot: %+v, want %d bytes", st, sumSizes(before))
		}
		out := e.mustRun("stats", "--mode", "restore-size", "--tag", "weekly")
		if !strings.Contains(out, "Snapshots:          1") || strings.Contains(out, "Dedup") {
			t.Fatalf("stats --mode restore-size:\n%s", out)
		}
		e.wantFail(exitUsage, "--mode \"files\"", "stats", "--mode", "files")
	})

	t.Run("snapshots", func(t *testing.T) {
		ids := func(args ...string) []string {
			var out []string
			for _, s := range e.snapshotsJSON(args...) {
				out = append(out, s.ID)
			}
			return out
		}
		e.wantFail(exitUsage, "invalid snapshot reference", "diff", a, "xyz")
		cases := []struct {
			args []string
			want []string
		}{
			{[]string{"--tag", "nightly", "--tag", "weekly,extra"}, []string{a, b}},
			{[]string{"--tag", "weekly,nightly"}, nil},
			{[]string{"--host", "other-host", "--path", src}, []string{b}},
			{[]string{"--path", "/nope"}, nil},
			{[]string{"--latest", "1"}, []string{a, b}}, // two groups: the hosts differ
		}
		for _, c := range cases {
			if got := ids(c.args...); !slices.Equal(got, c.want) {
				t.Errorf("snapshots %v: %v, want %v", c.args, got, c.want)
			}
		}
		var groups []struct {
			Key struct {
				Host string   `json:"host"`
				Tags []string `json:"tags"`
			} `json:"group_key"`
			Snapshots []snapJSON `json:"snapshots"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json", "--group-by", "host,tags")), &groups); err != nil {
			t.Fatal(err)
		}
		if len(groups) != 2 || groups[0].Key.Host == groups[1].Key.Host || len(groups[0].Snapshots) != 1 {
			t.Fatalf("--group-by host,tags: %+v", groups)
		}
		if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json", "--group-by", "paths", "--latest", "1")), &groups); err != nil {
			t.Fatal(err)
		}
		if len(groups) != 1 || len(groups[0].Snapshots) != 1 || groups[0].Snapshots[0].ID != b {
			t.Fatalf("--group-by paths --latest 1: %+v", groups)
		}
		out := e.mustRun("snapshots", "--group-by", "tags")
		if !strings.Contains(out, "group: tags [extra, weekly]") || !strings.Contains(out, "group: tags [nightly]") {
			t.Fatalf("snapshots --group-by tags:\n%s", out)
		}
		e.wantFail(exitUsage, "unknown key \"colour\"", "snapshots", "--group-by", "host,colour")
	})

	t.Run("info", func(t *testing.T) {
		var info struct {
			Version    int `json:"version"`
			Repository struct {
				Snapshots   int   `json:"snapshots"`
				Packs       int   `json:"packs"`
				StoredBytes int64 `json:"stored_bytes"`
			} `json:"repository"`
			Spaces []any `json:"spaces"`
			Paths  struct {
				Snapshots int `json:"snapshots"`
			} `json:"paths"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("info", "--json")), &info); err != nil {
			t.Fatal(err)
		}
		var packBytes int64
		var packs int
		_ = filepath.WalkDir(filepath.Join(e.repo, "data"), func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.Type().IsRegular() {
				fi, _ := de.Info()
				packBytes += fi.Size()
				packs++
			}
			return nil
		})
		if info.Version != 1 || info.Repository.Snapshots != 2 || info.Paths.Snapshots != 2 || len(info.Spaces) != 0 ||
			info.Repository.Packs != packs || info.Repository.StoredBytes != packBytes {
			t.Fatalf("info %+v; packs on disk %d of %d bytes", info, packs, packBytes)
		}
	})

	// tag last: it replaces the snapshots the other subtests name.
	t.Run("tag", func(t *testing.T) {
		lsBefore := e.mustRun("ls", a)
		out := e.mustRun("tag", "--add", "keep", a[:8])
		sns := e.snapshotsJSON("--tag", "keep")
		if len(sns) != 1 || sns[0].ID == a || !slices.Equal(sns[0].Tags, []string{"nightly", "keep", "original:" + a}) {
			t.Fatalf("after tag --add: %+v\n%s", sns, out)
		}
		na := sns[0].ID
		if !strings.Contains(out, "saved as new snapshot "+na[:8]) {
			t.Fatalf("tag output: %s", out)
		}
		if ids := e.snapshotIDs(); slices.Contains(ids, a) || len(ids) != 2 {
			t.Fatalf("the old snapshot is still listed: %v", ids)
		}
		// The new manifest has the same tree.
		if got := e.mustRun("ls", na); got != lsBefore {
			t.Fatalf("ls of the retagged snapshot differs:\n%s\nbefore:\n%s", got, lsBefore)
		}
		e.mustRun("tag", "--remove", "nightly", "--add", "monthly", na)
		sns = e.snapshotsJSON("--tag", "monthly")
		if len(sns) != 1 || !slices.Equal(sns[0].Tags, []string{"keep", "monthly", "original:" + a}) {
			t.Fatalf("after a second tag: %+v (the original stays the first snapshot)", sns)
		}
		e.mustRun("tag", "--set", "", sns[0].ID)
		sns = e.snapshotsJSON("--host", sns[0].Host)
		if len(sns) != 1 || !slices.Equal(sns[0].Tags, []string{"original:" + a}) {
			t.Fatalf("after --set \"\": %+v", sns)
		}
		out = e.mustRun("tag", "--set", "", sns[0].ID)
		if !strings.Contains(out, "unchanged") {
			t.Fatalf("tag that changes nothing: %s", out)
		}
		if got := e.mustRun("dump", sns[0].ID, P+"/"+modified); got != string(before[modified]) {
			t.Fatal("the retagged snapshot does not dump the first backup's bytes")
		}
		e.wantFail(exitUsage, "written only by memento", "tag", "--add", "timeline:7", b)
		e.wantFail(exitUsage, "written only by memento", "tag", "--remove", "original:"+a, sns[0].ID)
		e.wantFail(exitUsage, "control character", "tag", "--add", "a\tb", b)
		e.wantFail(exitUsage, "--no-lock", "tag", "--no-lock", "--add", "x", b)
		// check knows the replaced snapshots were retagged, not lost.
		if out := e.mustRun("check"); !strings.Contains(out, "0 errors") {
			t.Fatalf("check after tag:\n%s", out)
		}
		var log []struct{ Command, Snapshot string }
		if err := json.Unmarshal([]byte(e.mustRun("log", "--json", "--command", "tag")), &log); err != nil || len(log) != 3 || log[0].Snapshot != a {
			t.Fatalf("audit trail of tag: %+v, %v", log, err)
		}
	})
}

// unusedPrefix returns 8 hex digits no snapshot ID starts with.
func unusedPrefix(ids ...string) string {
	for _, p := range []string{"00000000", "11111111", "22222222"} {
		if !slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, p) }) {
			return p
		}
	}
	return "33333333"
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestInspectEngramSpaces runs dump and info on Engram space snapshots
// with an archived WAL and a verification: dump writes the files the
// backup read, info shows per space what pitr ranges and the audit trail
// say.
func TestInspectEngramSpaces(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "data")
	e.sim("run", "--dir", dd, "--spaces", "2", "--rate", "0", "--entries", "1500")
	e.mustRun("backup", "--data-dir", dd, "--all")
	// dump reads what the backup read: nothing has written since.
	disk := regularFiles(t, filepath.Join(dd, "spaces", "space-a"))
	files, _, _ := untar(t, []byte(e.mustRun("dump", e.snapshotsJSON("--space", "space-a")[0].ID, "/spaces/space-a")))
	if len(files) != len(disk) || len(files) == 0 {
		t.Fatalf("tar of space-a: %d files, on disk %d", len(files), len(disk))
	}
	for name, want := range disk {
		if !bytes.Equal(files[name], want) {
			t.Fatalf("tar %s: %d bytes differ from the disk's %d", name, len(files[name]), len(want))
		}
	}
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "500")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	e.mustRun("verify", "--space", "space-a", "--latest", "--level", "L2")

	type timeline struct {
		Timeline        uint32 `json:"timeline"`
		ArchivedThrough uint64 `json:"archived_through"`
		First           int64  `json:"first_recoverable_ns"`
		Last            int64  `json:"last_recoverable_ns"`
	}
	var info struct {
		Spaces []struct {
			Space     string `json:"space"`
			Snapshots int    `json:"snapshots"`
			NewestID  string `json:"newest_id"`
			Databases []struct {
				Identity  string     `json:"identity"`
				Timelines []timeline `json:"timelines"`
			} `json:"databases"`
			Verified int `json:"verified_snapshots"`
			Last     *struct {
				Level, Result, Snapshot string
			} `json:"last_verification"`
			StoredBytes int64 `json:"stored_bytes"`
		} `json:"spaces"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("info", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Spaces) != 2 || info.Spaces[0].Space != "space-a" || info.Spaces[1].Space != "space-b" || len(info.Problems) != 0 {
		t.Fatalf("info: %+v", info)
	}
	for _, s := range info.Spaces {
		rs := e.ranges(s.Space)
		if s.Snapshots != 1 || len(s.Databases) != 1 || len(s.Databases[0].Timelines) != 1 || s.StoredBytes <= 0 {
			t.Fatalf("info of %s: %+v", s.Space, s)
		}
		tl := s.Databases[0].Timelines[0]
		if len(rs.Ranges) != 1 || tl.First != rs.Ranges[0].FromTS || tl.Last != rs.Ranges[0].ToTS || tl.ArchivedThrough != rs.ArchivedSeq || tl.ArchivedThrough == 0 {
			t.Fatalf("info of %s: timeline %+v, pitr ranges %+v", s.Space, tl, rs)
		}
	}
	a, b := info.Spaces[0], info.Spaces[1]
	if a.Verified != 1 || a.Last == nil || a.Last.Level != "L2" || a.Last.Result != "ok" || a.Last.Snapshot != a.NewestID || b.Verified != 0 || b.Last != nil {
		t.Fatalf("verification state: space-a %+v %+v, space-b %+v", a, a.Last, b)
	}
	out := e.mustRun("info")
	for _, want := range []string{"space space-a", "space space-b", "verification: 1 of 1 snapshot verified; last: L2 ok", "verification: 0 of 1 snapshot verified; never verified", "WAL archived through seq"} {
		if !strings.Contains(out, want) {
			t.Fatalf("info lacks %q:\n%s", want, out)
		}
	}
}
