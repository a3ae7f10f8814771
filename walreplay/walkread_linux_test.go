package walreplay

import (
	"bytes"
	"context"
	"fmt"
	"os"
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

// TestZeroCopyWalkReadsNotMaps: a zero-copy replay maps each segment for its
// records to refer to, but walks it with read(): no page of the map becomes
// resident, neither while the walk is deep inside a large segment nor once
// it is done (the records still refer into the map), and reading the
// records back through the map then gives the bytes the walk checked.
func TestZeroCopyWalkReadsNotMaps(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 25 MiB log")
	}
	es := genEntries(13, 8000, 768) // ~3.1 KiB a record: ~25 MiB in one segment
	dir := t.TempDir()
	writeLog(t, dir, 64<<20, es)
	l, m := mustOpenLog(t, dir), modelOf(t, es)
	if len(l.Segments()) != 1 || l.Segments()[0].Size < 20<<20 {
		t.Fatalf("segments %+v: want one of over 20 MiB", l.Segments())
	}
	s := NewZeroCopyState()
	defer s.Close()
	var mapped []byte
	checked := false
	v := &validator{}
	_, err := l.walk(context.Background(), 0, 0, v, s, nil, func(seg int, off int64, e *Entry, mblk int) error {
		if mblk < 0 {
			t.Fatalf("segment %d offset %d: not mapped", seg, off)
		}
		if err := l.checkApply(v, s, seg, off, e, mblk); err != nil {
			return err
		}
		if mapped = s.blocks[mblk].b; off >= 16<<20 && !checked {
			checked = true
			if got := rss(t, mapped); got != 0 {
				t.Errorf("%d bytes of the map resident at offset %d of the walk, want 0", got, off)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the walk never passed 16 MiB")
	}
	if got := rss(t, mapped); got != 0 {
		t.Errorf("%d bytes of the map resident after the walk, want 0", got)
	}
	if got, want := hexDigest(s.Digest()), m.digest(); got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
	for id := range m {
		got, ok := s.Payload(id) // through the map
		if !ok {
			t.Fatalf("record %s missing", id)
		}
		i := s.ids[id]
		want := make([]byte, len(got))
		if !s.readPayload(i, want) || !bytes.Equal(got, want) {
			t.Fatalf("record %s: the map and pread disagree", id)
		}
	}
}

// TestZeroCopyReplayOfLargeSegments: a zero-copy replay of segments many
// times the walk's read buffer ends in the state a copying replay gets,
// digest included.
func TestZeroCopyReplayOfLargeSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40 MiB log")
	}
	es := genEntries(9, 12000, 768) // ~3.1 KiB a record: ~37 MiB of log
	dir := t.TempDir()
	writeLog(t, dir, 24<<20, es)
	l, m := mustOpenLog(t, dir), modelOf(t, es)
	if len(l.Segments()) < 2 || l.Segments()[0].Size < 16<<20 {
		t.Fatalf("segments %+v: want at least two, the first over 16 MiB", l.Segments())
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
