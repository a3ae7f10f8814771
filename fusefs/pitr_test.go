package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/walreplay"
)

// dirRecoverer is a PointInTimeFunc that "recovers" by copying a fixture
// data dir into a fresh directory per call, as cmd/memento's restore does,
// and counts recoveries and closes per instant.
type dirRecoverer struct {
	t       testing.TB
	src     string // the fixture, copied for every recovery
	first   int64  // instants before it cannot be recovered
	workdir string

	mu         sync.Mutex
	loads      map[int64]int
	closes     map[int64]int
	writes     map[int64]int // Lazy memories.jsonl written
	failWrites map[int64]int // fail the first n writes
	dirs       []string
}

func newDirRecoverer(t testing.TB, first int64) *dirRecoverer {
	src := filepath.Join(t.TempDir(), "fixture")
	makeTree(t, src, spaceTree())
	return &dirRecoverer{t: t, src: src, first: first, workdir: t.TempDir(), loads: map[int64]int{}, closes: map[int64]int{},
		writes: map[int64]int{}, failWrites: map[int64]int{}}
}

func (d *dirRecoverer) recover(ctx context.Context, space string, _ uint32, at int64) (*PointInTime, error) {
	if at < d.first {
		return nil, fmt.Errorf("space %s: cannot recover to %d: it is before the first backup; recoverable ranges: seq 1..9", space, at)
	}
	dir, err := os.MkdirTemp(d.workdir, "view-")
	if err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", d.src+"/.", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cp: %v: %s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.loads[at]++
	d.dirs = append(d.dirs, dir)
	d.mu.Unlock()
	write := func(ctx context.Context) error {
		d.mu.Lock()
		d.writes[at]++
		fail := d.writes[at] <= d.failWrites[at]
		d.mu.Unlock()
		if fail {
			return errors.New("replay failed")
		}
		time.Sleep(50 * time.Millisecond) // long enough for concurrent opens to overlap
		return os.WriteFile(filepath.Join(dir, "memories.jsonl"), memoriesAt(at), 0o444)
	}
	return &PointInTime{Dir: dir, Lazy: []LazyFile{{Name: "memories.jsonl", Write: write}}, Close: func() error {
		d.mu.Lock()
		d.closes[at]++
		d.mu.Unlock()
		return os.RemoveAll(dir)
	}}, nil
}

// memoriesAt is the fake memories.jsonl of an instant: large enough that a
// reader needs several reads, different per instant.
func memoriesAt(at int64) []byte {
	var b []byte
	for i := range 3000 {
		b = fmt.Appendf(b, "{\"at\":%d,\"i\":%d}\n", at, i)
	}
	return b
}

func (d *dirRecoverer) counts(at int64) (loads, closes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loads[at], d.closes[at]
}

// TestPointInTimeDirView serves recoveries into directories: the view is
// the directory as it is, read-only; names of one instant share a recovery,
// concurrent lookups recover once, at most PointInTimeViews stay on disk
// (never one with an open file), a dropped view is recovered again when
// used, and the unmount removes them all.
func TestPointInTimeDirView(t *testing.T) {
	tr, _, _ := spaceFixture(t)
	base := time.Date(2026, 11, 21, 14, 29, 0, 0, time.UTC)
	rec := newDirRecoverer(t, base.UnixNano())
	srv, mp, logs := mount(t, tr.Repository, Options{PointInTime: rec.recover, ParseInstant: walreplay.ParseTime, PointInTimeViews: 2})
	at := filepath.Join(mp, "spaces", testSpace, "at")
	name := func(d time.Duration) string { return base.Add(d).Format(time.RFC3339Nano) }
	ns := func(d time.Duration) int64 { return base.Add(d).UnixNano() }

	// The view is the recovered directory, plus nothing.
	t1 := name(time.Minute)
	compareTrees(t, filepath.Join(rec.src, "spaces"), filepath.Join(at, t1, "spaces"))
	if !sameContent(t, filepath.Join(rec.src, "metadata.json"), filepath.Join(at, t1, "metadata.json")) {
		t.Error("metadata.json differs")
	}
	// memories.jsonl is listed (readdirplus looks it up) but not written...
	es, err := os.ReadDir(filepath.Join(at, t1))
	if err != nil || len(es) != 3 || es[0].Name() != "memories.jsonl" {
		t.Errorf("at/%s lists %v (%v), want memories.jsonl, metadata.json, spaces", t1, es, err)
	}
	if n := rec.writeCount(ns(time.Minute)); n != 0 {
		t.Errorf("memories.jsonl written %d times by a listing", n)
	}
	// ... until it is opened: concurrent readers that never stat it (the
	// listing gave the kernel no attributes for it) get the whole file,
	// written once.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := readNoStat(filepath.Join(at, t1, "memories.jsonl"))
			if err != nil || !bytes.Equal(got, memoriesAt(ns(time.Minute))) {
				t.Errorf("reader %d: memories.jsonl %d bytes, %v; want %d", i, len(got), err, len(memoriesAt(ns(time.Minute))))
			}
		}()
	}
	wg.Wait()
	if n := rec.writeCount(ns(time.Minute)); n != 1 {
		t.Errorf("memories.jsonl written %d times by 4 readers, want 1", n)
	}
	if fi, err := os.Stat(filepath.Join(at, t1, "memories.jsonl")); err != nil || fi.Size() != int64(len(memoriesAt(ns(time.Minute)))) || fi.Mode() != 0o444 {
		t.Errorf("memories.jsonl: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(at, t1)); err != nil || fi.Mode() != os.ModeDir|0o755 {
		t.Errorf("at/%s: %v %v, want drwxr-xr-x", t1, fi.Mode(), err)
	}
	// Inode numbers are stable across lookups.
	var st1, st2 syscall.Stat_t
	p := filepath.Join(at, t1, "spaces", testSpace, "hot", "notes.txt")
	if syscall.Stat(p, &st1) != nil || syscall.Stat(p, &st2) != nil || st1.Ino != st2.Ino || st1.Ino < 2 {
		t.Errorf("inode numbers %d, %d", st1.Ino, st2.Ino)
	}

	// Every write is refused.
	for _, w := range []func() error{
		func() error { return os.WriteFile(filepath.Join(at, t1, "new"), nil, 0o644) },
		func() error { return os.Mkdir(filepath.Join(at, t1, "d"), 0o755) },
		func() error { return os.Remove(filepath.Join(at, t1, "metadata.json")) },
		func() error {
			f, err := os.OpenFile(filepath.Join(at, t1, "metadata.json"), os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		},
		func() error { return os.Chmod(filepath.Join(at, t1, "metadata.json"), 0o600) },
		func() error { return os.Mkdir(filepath.Join(at, "x"), 0o755) },
	} {
		if err := w(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("write into a view: %v, want EROFS", err)
		}
	}

	// Concurrent lookups of one instant, under three names, recover once.
	t2 := ns(2 * time.Minute)
	names := []string{name(2 * time.Minute), fmt.Sprint(t2), base.Add(2 * time.Minute).Format("2006-01-02T15:04:05.000Z07:00")}
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := os.ReadFile(filepath.Join(at, names[i%3], "spaces", testSpace, "deep/a/b/c/d.txt"))
			if err != nil || len(b) != 17 {
				t.Errorf("reader %d: %d bytes, %v", i, len(b), err)
			}
		}()
	}
	wg.Wait()
	if loads, _ := rec.counts(t2); loads != 1 {
		t.Errorf("12 concurrent readers under 3 names recovered %d times, want 1", loads)
	}

	if _, closes := rec.counts(ns(time.Minute)); closes != 0 {
		t.Errorf("t1 dropped with only 2 views materialized")
	}

	// A third view drops the least recently used one that nothing uses; an
	// open file keeps its view: t3 is open while t4 and t5 arrive.
	t3 := name(3 * time.Minute)
	f, err := os.Open(filepath.Join(at, t3, "spaces", testSpace, "cold", "seg-000001.col"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if loads, closes := rec.counts(ns(time.Minute)); loads != 1 || closes != 1 {
		t.Errorf("t1: %d recoveries, %d closes; want 1 and 1 (dropped as the third view arrived)", loads, closes)
	}
	for _, d := range []time.Duration{4 * time.Minute, 5 * time.Minute} {
		if _, err := os.Stat(filepath.Join(at, name(d), "metadata.json")); err != nil {
			t.Fatal(err)
		}
	}
	if _, closes := rec.counts(ns(3 * time.Minute)); closes != 0 {
		t.Errorf("the view of an open file was dropped")
	}
	if _, closes := rec.counts(ns(4 * time.Minute)); closes != 1 {
		t.Errorf("t4 not dropped as t5 arrived (t3 in use)")
	}
	if !sameContent(t, filepath.Join(rec.src, "spaces", testSpace, "cold", "seg-000001.col"), f.Name()) {
		t.Error("open file of a view differs")
	}
	buf := make([]byte, 4096)
	if n, err := f.ReadAt(buf, 6<<20); err != nil || n != 4096 {
		t.Errorf("read of the open file: %d, %v", n, err)
	}
	f.Close()

	// A Lazy file that cannot be written is EIO with a log line, and is
	// tried again on the next use; a stat writes it too.
	t6 := 6 * time.Minute
	rec.mu.Lock()
	rec.failWrites[ns(t6)] = 1
	rec.mu.Unlock()
	if _, err := os.Stat(filepath.Join(at, name(t6), "memories.jsonl")); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat of a memories.jsonl that cannot be written: %v, want EIO", err)
	}
	if !contains(logs.String(), "cannot write a point-in-time file", "file=memories.jsonl", "replay failed") {
		t.Errorf("no log line for the failed write:\n%s", logs)
	}
	if fi, err := os.Stat(filepath.Join(at, name(t6), "memories.jsonl")); err != nil || fi.Size() != int64(len(memoriesAt(ns(t6)))) {
		t.Errorf("stat after a failed write: %v, %v", fi, err)
	}

	// A dropped view is recovered again when used through the inodes the
	// kernel kept (a directory listing always reaches the mount).
	if es, err := os.ReadDir(filepath.Join(at, t1, "spaces", testSpace)); err != nil || len(es) != 10 {
		t.Errorf("listing of dropped view t1: %d entries, %v", len(es), err)
	}
	if loads, _ := rec.counts(ns(time.Minute)); loads != 2 {
		t.Errorf("t1 used again: %d recoveries, want 2", loads)
	}
	// Its memories.jsonl, through the inode the kernel kept, is written again.
	if got, err := readNoStat(filepath.Join(at, t1, "memories.jsonl")); err != nil || !bytes.Equal(got, memoriesAt(ns(time.Minute))) {
		t.Errorf("memories.jsonl of a recovered-again view: %d bytes, %v", len(got), err)
	}
	compareTrees(t, filepath.Join(rec.src, "spaces"), filepath.Join(at, t1, "spaces"))

	// Unrecoverable: ENOENT, and one log line saying why, however often it is looked up.
	early := base.Add(-time.Hour).Format(time.RFC3339)
	for range 3 {
		if _, err := os.Stat(filepath.Join(at, early)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("unrecoverable instant: %v, want ENOENT", err)
		}
	}
	if n := strings.Count(logs.String(), "point in time cannot be recovered"); n != 1 || !contains(logs.String(), "before the first backup; recoverable ranges: seq 1..9") {
		t.Errorf("want one log line saying why %s is unrecoverable, got %d:\n%s", early, n, logs)
	}
	for _, bad := range []string{"yesterday", "2026-11-21T14:29:00.1234567891Z", "README2"} {
		if _, err := os.Stat(filepath.Join(at, bad)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("at/%s: %v, want ENOENT", bad, err)
		}
	}
	// at/ lists only the README: a recursive walk must recover nothing.
	if es, err := os.ReadDir(at); err != nil || len(es) != 1 || es[0].Name() != "README" {
		t.Errorf("at/ lists %v, %v", es, err)
	}
	readme, err := os.ReadFile(filepath.Join(at, "README"))
	if err != nil || !contains(string(readme), "Recoverable ranges", "memento restore --at", "memories.jsonl") {
		t.Errorf("README:\n%s (%v)", readme, err)
	}

	// At most 2 views are on disk now, and none after the unmount.
	if n := srv.FS.pits.len(); n != 2 {
		t.Errorf("%d views materialized, limit 2", n)
	}
	if _, err := srv.Unmount(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, d := range rec.dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("view %s left after the unmount (%v)", d, err)
		}
	}
	for at, n := range rec.loads {
		if rec.closes[at] != n {
			t.Errorf("instant %d: %d recoveries, %d closes", at, n, rec.closes[at])
		}
	}
}

func (d *dirRecoverer) writeCount(at int64) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes[at]
}

// readNoStat reads a file with open and read only, as a reader that does
// not ask for its size first.
func readNoStat(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var out []byte
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// TestPointInTimeLazyFileStatAfterListing (issue 19 item 11): right after
// a listing (readdirplus) that did not write memories.jsonl, a stat shows
// its real size and mode, never a placeholder of size 0: the listing gives
// no attributes for a file not written yet, so the stat looks it up, which
// writes it.
func TestPointInTimeLazyFileStatAfterListing(t *testing.T) {
	tr, _, _ := spaceFixture(t)
	base := time.Date(2026, 11, 21, 14, 29, 0, 0, time.UTC)
	rec := newDirRecoverer(t, base.UnixNano())
	_, mp, _ := mount(t, tr.Repository, Options{PointInTime: rec.recover, ParseInstant: walreplay.ParseTime})
	for i := range 3 {
		at := base.Add(time.Duration(i+1) * time.Minute)
		view := filepath.Join(mp, "spaces", testSpace, "at", at.Format(time.RFC3339Nano))
		if es, err := os.ReadDir(view); err != nil || len(es) != 3 {
			t.Fatalf("at/%s: %v %v", at, es, err)
		}
		if n := rec.writeCount(at.UnixNano()); n != 0 {
			t.Fatalf("memories.jsonl written %d times by a listing", n)
		}
		fi, err := os.Stat(filepath.Join(view, "memories.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(len(memoriesAt(at.UnixNano()))) || fi.Mode() != 0o444 {
			t.Errorf("stat of memories.jsonl right after a listing: %d bytes %v; want %d bytes -r--r--r--", fi.Size(), fi.Mode(), len(memoriesAt(at.UnixNano())))
		}
	}
}
