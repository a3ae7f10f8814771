package inspect_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/inspect"
	"memento/repo/repotest"
)

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// content returns n bytes that do not repeat within a file and differ per seed.
func content(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// twoSnapshots backs up a tree, changes it and backs it up again.
func twoSnapshots(t *testing.T) (*repotest.Repo, *repo.Snapshot, *repo.Snapshot, string) {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "t")
	big := content(300<<10, 1)
	write(t, filepath.Join(src, "a", "big"), big)
	write(t, filepath.Join(src, "a", "copy"), big) // the same content twice
	write(t, filepath.Join(src, "a", "small"), []byte("small\n"))
	write(t, filepath.Join(src, "b", "x"), []byte("x\n"))
	write(t, filepath.Join(src, "c"), []byte("becomes a directory\n"))
	a := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	write(t, filepath.Join(src, "a", "small"), []byte("small, changed\n"))
	if err := os.Chmod(filepath.Join(src, "b", "x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "c")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "c", "inside"), []byte("in\n"))
	b := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	return tr, a, b, src
}

func TestDiff(t *testing.T) {
	tr, a, b, _ := twoSnapshots(t)
	var got []string
	sum, err := inspect.Diff(context.Background(), tr.Repository, a, b, func(c inspect.Change) error {
		got = append(got, c.Kind+" "+c.Path+" "+c.What)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"M /t/a/small ", "U /t/b/x mode", "- /t/c ", "+ /t/c ", "+ /t/c/inside "}
	if !slices.Equal(got, want) {
		t.Fatalf("diff:\n got %q\nwant %q", got, want)
	}
	if sum.Added.Files != 1 || sum.Added.Dirs != 1 || sum.Removed.Files != 1 || sum.Modified != 1 || sum.MetadataOnly != 1 ||
		sum.Added.Bytes != uint64(len("in\n")+len("small, changed\n")) || sum.Removed.Bytes != uint64(len("becomes a directory\n")+len("small\n")) {
		t.Fatalf("summary %+v", sum)
	}
	// A snapshot against itself: nothing, and no tree read beyond the root.
	n := 0
	if _, err := inspect.Diff(context.Background(), tr.Repository, b, b, func(inspect.Change) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("diff with itself: %d changes, %v", n, err)
	}
}

func TestStats(t *testing.T) {
	tr, a, b, _ := twoSnapshots(t)
	st, err := inspect.ComputeStats(context.Background(), tr.Repository, []*repo.Snapshot{a}, inspect.StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := uint64(2*(300<<10) + len("small\n") + len("x\n") + len("becomes a directory\n"))
	// The copy is deduplicated: the distinct data is one big file and the small ones.
	raw := files - 300<<10
	if st.Files != 5 || st.Dirs != 3 || st.Bytes != files || st.DataRawBytes != raw ||
		st.DedupRatio != float64(files)/float64(raw) || st.DataStoredBytes == 0 || st.TreeBlobs != 4 {
		t.Fatalf("stats of one snapshot: %+v, want %d bytes, %d raw", st, files, raw)
	}
	both, err := inspect.ComputeStats(context.Background(), tr.Repository, []*repo.Snapshot{a, b}, inspect.StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bFiles := files - uint64(len("small\n")+len("becomes a directory\n")) + uint64(len("small, changed\n")+len("in\n"))
	if both.Snapshots != 2 || both.Bytes != files+bFiles || both.DataRawBytes != raw+uint64(len("small, changed\n")+len("in\n")) {
		t.Fatalf("stats of two snapshots: %+v", both)
	}
	only, err := inspect.ComputeStats(context.Background(), tr.Repository, []*repo.Snapshot{a, b}, inspect.StatsOptions{RestoreSizeOnly: true})
	if err != nil || only.Bytes != both.Bytes || only.DataBlobs != 0 {
		t.Fatalf("restore size only: %+v, %v", only, err)
	}
}

func TestFindAndWalk(t *testing.T) {
	tr, a, b, _ := twoSnapshots(t)
	var got []string
	err := inspect.Find(context.Background(), tr.Repository, []*repo.Snapshot{b, a}, inspect.FindOptions{Patterns: []string{"s*", "/t/c/*"}}, func(m inspect.Match) error {
		got = append(got, m.Snapshot[:8]+" "+m.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{b.ShortID() + " /t/a/small", b.ShortID() + " /t/c/inside", a.ShortID() + " /t/a/small"}
	if !slices.Equal(got, want) {
		t.Fatalf("find:\n got %q\nwant %q", got, want)
	}
	if err := inspect.Find(context.Background(), tr.Repository, nil, inspect.FindOptions{Patterns: []string{"[x"}}, nil); err == nil {
		t.Fatal("a malformed pattern was accepted")
	}
	err = inspect.Walk(context.Background(), tr.Repository, a, "/t/nope", func(string, *repo.Node) error { return nil })
	if !errors.Is(err, repo.ErrNotFound) || err.Error() != "snapshot "+a.ShortID()+": /t/nope: not found" {
		t.Fatalf("walk of a missing path: %v", err)
	}
	err = inspect.Walk(context.Background(), tr.Repository, a, "/t/c/x", func(string, *repo.Node) error { return nil })
	if !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("walk below a file: %v", err)
	}
}

func TestDumpFileAndTar(t *testing.T) {
	tr, a, _, src := twoSnapshots(t)
	ctx := context.Background()
	n, _, err := inspect.Lookup(ctx, tr.Repository, a, "/t/a/big")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := inspect.DumpFile(ctx, tr.Repository, a, "/t/a/big", n, &buf); err != nil || !bytes.Equal(buf.Bytes(), content(300<<10, 1)) {
		t.Fatalf("dump: %d bytes, %v", buf.Len(), err)
	}
	buf.Reset()
	if err := inspect.DumpArchive(ctx, tr.Repository, a, "/t/a", inspect.Tar, &buf); err != nil {
		t.Fatal(err)
	}
	rd := tar.NewReader(&buf)
	var names []string
	for {
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(rd)
			want, _ := os.ReadFile(filepath.Join(filepath.Dir(src), "t", h.Name))
			if h.Name == "a/small" {
				want = []byte("small\n") // as in snapshot a
			}
			if !bytes.Equal(b, want) || h.ModTime.After(time.Now()) {
				t.Fatalf("tar %s: %q", h.Name, b)
			}
		}
	}
	if !slices.Equal(names, []string{"a/", "a/big", "a/copy", "a/small"}) {
		t.Fatalf("tar names %q", names)
	}
	// A damaged pack and no second copy: dump fails naming the damage.
	locs, err := tr.Locate(a.Space, n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	l := locs[n.Content[0]]
	repotest.FlipByte(t, filepath.Join(tr.Dir, repo.PackName(l.Pack)), int64(l.Offset)+int64(l.Length)/2)
	r := tr.Reopen(t)
	defer r.Close()
	err = inspect.DumpFile(ctx, r, a, "/t/a/big", n, io.Discard)
	if !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), "pack "+repo.ShortHex(l.Pack)) || !strings.Contains(err.Error(), "/t/a/big") {
		t.Fatalf("dump of a damaged file: %v", err)
	}
}

func TestFilterGroupLatest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sn := func(i int, host, space string, tags ...string) *repo.Snapshot {
		s := &repo.Snapshot{Manifest: repo.Manifest{Time: t0.Add(time.Duration(i) * time.Hour), Host: host, Space: space, Tags: tags, Paths: []string{"/srv/x/"}}}
		s.ID[0] = byte(i)
		return s
	}
	all := []*repo.Snapshot{sn(0, "h1", "s1", "a", "b"), sn(1, "h2", "s1", "a"), sn(2, "h1", "", "c"), sn(3, "h1", "s2", "b", "c", "identity:00")}
	pick := func(f inspect.Filter) []int {
		var out []int
		for _, s := range f.Select(all) {
			out = append(out, int(s.ID[0]))
		}
		return out
	}
	cases := []struct {
		f    inspect.Filter
		want []int
	}{
		{inspect.Filter{}, []int{0, 1, 2, 3}},
		{inspect.Filter{Tags: []string{"a,b"}}, []int{0}},
		{inspect.Filter{Tags: []string{"a,b", "c"}}, []int{0, 2, 3}},
		{inspect.Filter{Hosts: []string{"h2", "h3"}}, []int{1}},
		{inspect.Filter{Spaces: []string{"s2", ""}}, []int{2, 3}},
		{inspect.Filter{Paths: []string{"/srv/x"}, Hosts: []string{"h1"}, Tags: []string{"b"}}, []int{0, 3}},
		{inspect.Filter{Paths: []string{"/srv/x", "/other"}}, nil},
	}
	for _, c := range cases {
		if got := pick(c.f); !slices.Equal(got, c.want) {
			t.Errorf("filter %+v: %v, want %v", c.f, got, c.want)
		}
	}
	ids := func(sns []*repo.Snapshot) []int {
		var out []int
		for _, s := range sns {
			out = append(out, int(s.ID[0]))
		}
		return out
	}
	if got := ids(inspect.Latest(nil, all, 1)); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("latest 1 per space (and host's paths): %v", got)
	}
	if got := ids(inspect.Latest([]string{"host"}, all, 1)); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("latest 1 per host: %v", got)
	}
	keys, err := inspect.ParseGroupBy("tags,host,tags")
	if err != nil || !slices.Equal(keys, []string{"tags", "host"}) {
		t.Fatalf("ParseGroupBy: %v %v", keys, err)
	}
	if _, err := inspect.ParseGroupBy("host,colour"); err == nil {
		t.Fatal("an unknown --group-by key was accepted")
	}
	g := inspect.GroupBy(keys, all)
	var names []string
	for _, x := range g {
		names = append(names, x.Key.String()+":"+string(rune('0'+len(x.Snapshots))))
	}
	// identity: is a system tag: not part of the group's tags.
	want := []string{"host h1, tags [a, b]:1", "host h1, tags [b, c]:1", "host h1, tags [c]:1", "host h2, tags [a]:1"}
	if !slices.Equal(names, want) {
		t.Fatalf("groups %q, want %q", names, want)
	}
}
