package engram

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestValidSpaceID(t *testing.T) {
	for _, id := range []string{"a", "space-a", "x_1", strings.Repeat("z", 64)} {
		if err := ValidSpaceID(id); err != nil {
			t.Errorf("ValidSpaceID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "A", "a/b", "..", ".hidden", "a b", "é", strings.Repeat("z", 65), "/paths"} {
		err := ValidSpaceID(id)
		if err == nil || err.Error() != `invalid space id "`+id+`": must match [a-z0-9_-]{1,64}` {
			t.Errorf("ValidSpaceID(%q) = %v", id, err)
		}
	}
}

func TestListSpaces(t *testing.T) {
	dir := t.TempDir()
	var nse *NoSpacesError
	if _, err := ListSpaces(dir); !errors.As(err, &nse) || !errors.Is(err, ErrNoSpaces) ||
		err.Error() != "data dir "+dir+": no spaces/ directory (is this an Engram data dir?)" {
		t.Fatalf("no spaces/: %v", err)
	}
	sp := SpacesDir(dir)
	os.MkdirAll(sp, 0o755)
	if _, err := ListSpaces(dir); !errors.Is(err, ErrNoSpaces) || err.Error() != "data dir "+dir+": no spaces" {
		t.Fatalf("empty spaces/: %v", err)
	}
	other := t.TempDir()
	for _, d := range []string{"b", "a", ".hidden", "Bad", "a.pre-restore-20260101T000000Z"} {
		os.Mkdir(filepath.Join(sp, d), 0o755)
	}
	os.WriteFile(filepath.Join(sp, "file"), nil, 0o644)
	os.Symlink(other, filepath.Join(sp, "elsewhere"))
	os.Symlink(filepath.Join(other, "nothing"), filepath.Join(sp, "dangling"))
	l, err := ListSpaces(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Spaces, []string{"a", "b", "elsewhere"}) {
		t.Errorf("Spaces = %v", l.Spaces)
	}
	var bad []string
	for _, e := range l.Bad {
		bad = append(bad, e.Error())
	}
	want := []string{`data dir ` + dir + `: invalid space id "Bad": must match [a-z0-9_-]{1,64}`,
		"space dangling: " + filepath.Join(sp, "dangling") + " is a symlink to " + filepath.Join(other, "nothing") + ", which is not a directory"}
	if !slices.Equal(bad, want) {
		t.Errorf("Bad = %q, want %q", bad, want)
	}
	wantSkipped := []Skipped{{filepath.Join(sp, "a.pre-restore-20260101T000000Z"), "a restore's safety copy"}, {filepath.Join(sp, "file"), "not a directory"}}
	if !slices.Equal(l.Skipped, wantSkipped) {
		t.Errorf("Skipped = %v, want %v", l.Skipped, wantSkipped)
	}
	// Only bad entries: no error, the caller reports them.
	for _, d := range []string{"a", "b", "elsewhere"} {
		os.Remove(filepath.Join(sp, d))
	}
	if l, err := ListSpaces(dir); err != nil || len(l.Spaces) != 0 || len(l.Bad) != 2 {
		t.Errorf("only bad entries: %+v, %v", l, err)
	}
}

func TestLayoutLists(t *testing.T) {
	if !slices.Equal(StagedEntries, []string{"checkpoint.json", "hot", "warm"}) {
		t.Errorf("StagedEntries = %v", StagedEntries)
	}
	if !slices.Equal(SpaceSubdirs, []string{"cold", "hot", "wal", "warm"}) {
		t.Errorf("SpaceSubdirs = %v", SpaceSubdirs)
	}
	if !slices.Equal(HotFiles, []string{"memtable.bin", "recent_ids.json", "stats.json"}) {
		t.Errorf("HotFiles = %v", HotFiles)
	}
}
