package walreplay

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// rss is the resident size in bytes of the mapping that starts at b
// (/proc/self/smaps).
func rss(t *testing.T, b []byte) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(&b[0])))
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Count(f[0], "-") == 1 && !strings.HasSuffix(f[0], ":") {
			in = strings.HasPrefix(line, start)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			var kb int
			if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "Rss:")), "%d kB", &kb); err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping starts at %s", start)
	return 0
}

// TestDropWalked: a walk drops what it has read of a mapped segment in
// walkDropStep pieces, never the piece holding the entry it is at, and the
// dropped bytes read back unchanged from the page cache.
func TestDropWalked(t *testing.T) {
	const size = 4 * walkDropStep
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i * 7 >> 3)
	}
	path := filepath.Join(t.TempDir(), "seg")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mmap(f, size)
	if err != nil {
		t.Fatal(err)
	}
	defer munmap(m)
	pg := os.Getpagesize()
	if !bytes.Equal(m, want) { // and every page is faulted in
		t.Fatal("the mapping reads other bytes than the file holds")
	}
	if got := rss(t, m); got != size {
		t.Fatalf("%d bytes of the map resident after reading it all, want %d", got, size)
	}
	if d := dropWalked(m, 0, walkDropStep-1); d != 0 {
		t.Fatalf("dropped up to %d before a whole step was walked", d)
	}
	d := dropWalked(m, 0, 2*walkDropStep+100)
	if d != 2*walkDropStep {
		t.Fatalf("dropped up to %d at offset %d, want %d", d, 2*walkDropStep+100, 2*walkDropStep)
	}
	if got := rss(t, m); got > size-d || got < size-d-64*pg {
		t.Fatalf("%d bytes of the map resident after dropping %d of %d, want %d", got, d, size, size-d)
	}
	if d2 := dropWalked(m, d, 3*walkDropStep-1); d2 != d {
		t.Fatalf("dropped again up to %d within one step of %d", d2, d)
	}
	if !bytes.Equal(m, want) {
		t.Fatal("the mapping reads other bytes after its pages were dropped")
	}
}

// TestZeroCopyReplayOfLargeSegments: a zero-copy replay whose walks drop
// pages along the way (segments of several walkDropSteps) ends in the
// state a copying replay gets, digest included.
func TestZeroCopyReplayOfLargeSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40 MiB log")
	}
	es := genEntries(9, 12000, 768) // ~3.1 KiB a record: ~37 MiB of log
	dir := t.TempDir()
	writeLog(t, dir, 3*walkDropStep, es)
	l, m := mustOpenLog(t, dir), modelOf(t, es)
	if len(l.Segments()) < 2 || l.Segments()[0].Size < 2*walkDropStep {
		t.Fatalf("segments %+v: want at least two, the first over two drop steps", l.Segments())
	}
	s := NewZeroCopyState()
	defer s.Close()
	if _, err := l.Replay(context.Background(), Target{}, s); err != nil {
		t.Fatal(err)
	}
	if got, want := hexDigest(s.Digest()), m.digest(); got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
	if s.Len() != len(m) {
		t.Fatalf("%d records, want %d", s.Len(), len(m))
	}
	for id := range m {
		if _, ok := s.Get(id); !ok { // Get decodes through the map
			t.Fatalf("record %s missing", id)
		}
	}
}
