package backup

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// TestPrefetchWALRequests: the read-ahead asks for the segments oldest
// first, in requests of at most walPrefetchChunk, up to the budget (the
// last segment asked for only in part), skips a segment that is gone, and
// stops at the first refused request or when ctx is done.
func TestPrefetchWALRequests(t *testing.T) {
	dir := t.TempDir()
	var segs []walreplay.SegmentInfo
	for i, size := range []int64{walPrefetchChunk + 100, 10, 3 * walPrefetchChunk} {
		p := filepath.Join(dir, "seg"+string(rune('a'+i)))
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, walreplay.SegmentInfo{Path: p, Size: size})
	}
	gone := walreplay.SegmentInfo{Path: filepath.Join(dir, "gone"), Size: 5}
	type req struct {
		name   string
		off, n int64
	}
	run := func(ctx context.Context, segs []walreplay.SegmentInfo, budget int64, refuseAfter int) []req {
		var got []req
		<-prefetchWAL(ctx, segs, budget, func(f *os.File, off, n int64) bool {
			got = append(got, req{filepath.Base(f.Name()), off, n})
			return len(got) != refuseAfter
		})
		return got
	}
	const C = walPrefetchChunk
	all := []req{{"sega", 0, C}, {"sega", C, 100}, {"segb", 0, 10}, {"segc", 0, C}, {"segc", C, C}, {"segc", 2 * C, C}}
	if got := run(context.Background(), segs, 1<<40, -1); !reflect.DeepEqual(got, all) {
		t.Errorf("whole WAL: requests %v, want %v", got, all)
	}
	if got, want := run(context.Background(), segs, C+100+10+C/2, -1), []req{{"sega", 0, C}, {"sega", C, 100}, {"segb", 0, 10}, {"segc", 0, C / 2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("budget ending in the third segment: requests %v, want %v", got, want)
	}
	if got, want := run(context.Background(), []walreplay.SegmentInfo{gone, segs[1]}, 1<<40, -1), []req{{"segb", 0, 10}}; !reflect.DeepEqual(got, want) {
		t.Errorf("a vanished segment first: requests %v, want %v", got, want)
	}
	if got := run(context.Background(), segs, 1<<40, 1); !reflect.DeepEqual(got, all[:1]) {
		t.Errorf("first request refused: requests %v, want %v", got, all[:1])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := run(ctx, segs, 1<<40, -1); len(got) != 0 {
		t.Errorf("cancelled: requests %v, want none", got)
	}
}

// TestWALPrefetchedOnlyWhenChanged: a space backup reads the WAL ahead for
// the replay when the WAL changed since the parent (here: no parent), and
// not when the parent's WAL end is reused, which reads no WAL at all; the
// snapshot records the same WAL end and digest either way.
func TestWALPrefetchedOnlyWhenChanged(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	const space = "s1"
	repotest.WriteEngramSpace(t, dd, space, 300, 16<<10, 100)
	backup := func(parent *repo.Snapshot) (*repo.Snapshot, *EngramRecorder) {
		rec := NewEngramRecorder(context.Background(), dd, space)
		opts := BackupOptions{DataDir: dd, Space: space, Parent: parent, NoParent: parent == nil}
		if parent != nil {
			rec.Parent = parent.Engram
		}
		rec.Attach(&opts)
		sn := mustBackup(t, tr.Repository, opts)
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		return sn, rec
	}
	first, rec := backup(nil)
	if rec.prefetched == nil || rec.Reused || first.Engram.StateDigest == "" {
		t.Fatalf("WAL not seen before: prefetched %v, reused %v, %+v", rec.prefetched != nil, rec.Reused, first.Engram)
	}
	second, rec := backup(first)
	if rec.prefetched != nil || !rec.Reused || !reflect.DeepEqual(second.Engram, first.Engram) {
		t.Fatalf("WAL unchanged: prefetched %v, reused %v, %+v, parent %+v", rec.prefetched != nil, rec.Reused, second.Engram, first.Engram)
	}
}
