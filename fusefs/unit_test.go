package fusefs

import (
	"io/fs"
	"syscall"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
)

func TestChunkAt(t *testing.T) {
	offs := prefixSums([]uint32{10, 5, 1, 20})
	if want := []int64{0, 10, 15, 16, 36}; len(offs) != len(want) {
		t.Fatalf("prefixSums = %v, want %v", offs, want)
	}
	tests := []struct {
		off  int64
		want int
	}{{0, 0}, {9, 0}, {10, 1}, {14, 1}, {15, 2}, {16, 3}, {35, 3}}
	for _, tt := range tests {
		if got := chunkAt(offs, tt.off); got != tt.want {
			t.Errorf("chunkAt(%d) = %d, want %d", tt.off, got, tt.want)
		}
	}
}

func TestCatalogNames(t *testing.T) {
	id := func(hex string) chunk.ID {
		for len(hex) < 64 {
			hex += "0"
		}
		c, err := chunk.ParseID(hex)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	snaps := []*repo.Snapshot{
		{ID: id("aaaaaaaa1"), Manifest: repo.Manifest{Time: at, Space: "s1", Host: "h1", Tags: []string{"daily", "bad/tag"}}},
		{ID: id("aaaaaaaa2"), Manifest: repo.Manifest{Time: at.Add(time.Hour), Space: "s1", Host: "h1"}},
		{ID: id("bbbbbbbb"), Manifest: repo.Manifest{Time: at.Add(2 * time.Hour), Host: "h/2"}},
	}
	c := newCatalog(snaps, time.Now())
	for i, want := range []string{"aaaaaaaa1", "aaaaaaaa2", "bbbbbbbb"} {
		if got := c.name[snaps[i].ID]; got != want {
			t.Errorf("name of %s = %q, want %q", snaps[i].ID, got, want)
		}
	}
	if len(c.spaces["s1"]) != 2 || latest(c.spaces["s1"]) != snaps[1] {
		t.Errorf("spaces = %v", c.spaces)
	}
	if len(c.hosts) != 1 || len(c.hosts["h1"]) != 2 {
		t.Errorf("hosts = %v (a host with '/' cannot be a directory name)", c.hosts)
	}
	if len(c.tags) != 1 || len(c.tags["daily"]) != 1 {
		t.Errorf("tags = %v", c.tags)
	}
	if got := timeName(snaps[0]); got != "2026-01-02T03:04:05.000000006Z" {
		t.Errorf("timeName = %q", got)
	}
}

func TestModeAndInode(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		want uint32
	}{
		{0o644, 0o644},
		{0o755 | fs.ModeSetuid, 0o4755},
		{0o2750&^0o2000 | fs.ModeSetgid, 0o2750},
		{0o1777&^0o1000 | fs.ModeSticky, 0o1777},
	}
	for _, tt := range tests {
		if got := permBits(uint32(tt.mode)); got != tt.want {
			t.Errorf("permBits(%v) = %o, want %o", tt.mode, got, tt.want)
		}
	}
	if typeBits(&repo.Node{Type: repo.NodeSymlink}) != syscall.S_IFLNK {
		t.Error("symlink type bits")
	}
	// Inode numbers are part of what users see across remounts: keep them fixed.
	if got := inoFor("v", "/snapshots"); got != 0x41bd88d2e6ddcb21 {
		t.Errorf("inoFor(v, /snapshots) = %#x, want 0x41bd88d2e6ddcb21", got)
	}
	if inoFor("a", "/x") == inoFor("a", "/y") || inoFor("a", "/x") == inoFor("b", "/x") {
		t.Error("inode numbers collide")
	}
	if first, again := inoFor("a", "/x"), inoFor("a", "/x"); first != again {
		t.Error("inode numbers not deterministic")
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", `/plain`: "/plain", `/t\011ab\134`: "/t\tab\\", `/end\04`: `/end\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
