package walreplay

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// dayEntries is a log of n entries over ids of every shape the sorted
// checkpoint must order bytewise: random lengths from 1 byte to 40, ids
// shorter than 8 bytes (the radix sort's prefix, zero padded) beside ids
// that extend them with a zero byte or more, and many ids sharing their
// first 8 bytes. Deleted ids are stored again later.
func dayEntries(seed uint64, n int) []*Entry {
	rng := rand.New(rand.NewPCG(seed, 0xda7))
	pool := []string{"a", "ab", "ab\x00", "ab\x00\x00", "abcdefg", "abcdefgh", "abcdefgh\x00", "\x00", "\x00\x00\x00\x00\x00\x00\x00\x00\x01", "zzzzzzzz"}
	for i := 0; i < 40; i++ {
		pool = append(pool, fmt.Sprintf("shared-p%d", i)) // one prefix, "shared-p"
	}
	const hex = "0123456789abcdef"
	for len(pool) < 900 {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = hex[rng.IntN(16)]
		}
		pool = append(pool, string(b))
	}
	pool = slices.Compact(slices.Sorted(slices.Values(pool)))
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	var live, dead []string
	free := pool
	es := make([]*Entry, 0, n)
	ts := int64(1_700_000_000_000_000_000)
	for i := 0; i < n; i++ {
		seq := uint64(i + 1)
		ts += int64(rng.IntN(1000))
		content := fmt.Sprintf("memory %d %x", i, rng.Uint64())
		switch k := rng.IntN(10); {
		case len(live) < 20 || k < 3 && len(free) > 0:
			if len(free) == 0 {
				free, dead = dead, nil
			}
			id := free[0]
			free = free[1:]
			live = append(live, id)
			es = append(es, store(seq, ts, rec(id, rng.Float32(), content, 1, 2)))
		case k < 5 && len(dead) > 0: // stored again after a delete
			j := rng.IntN(len(dead))
			id := dead[j]
			dead = slices.Delete(dead, j, j+1)
			live = append(live, id)
			es = append(es, store(seq, ts, rec(id, rng.Float32(), content, 3)))
		case k < 8:
			id := live[rng.IntN(len(live))]
			es = append(es, upd(seq, ts, rec(id, rng.Float32(), content, 4, 5, 6)))
		default:
			j := rng.IntN(len(live))
			es = append(es, del(seq, ts, live[j]))
			dead = append(dead, live[j])
			live = slices.Delete(live, j, j+1)
		}
	}
	return es
}

// ckRecords splits a checkpoint's encoded records.
func ckRecords(c *Checkpoint) [][]byte {
	var out [][]byte
	for i, b := 0, c.recs; i < c.nrecs; i++ {
		n := 2 + int(le.Uint16(b)) + ckRecFixed
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// resumeLt resumes a replay of dir from cp tracking the version-2 digest.
func resumeLt(t *testing.T, dir string, cp *Checkpoint) (*State, *Checkpoint, bool) {
	t.Helper()
	s := NewZeroCopyState()
	if err := s.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	_, next, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), cp, s)
	if err != nil || next == nil {
		t.Fatalf("replay: next %v, err %v", next != nil, err)
	}
	return s, next, resumed
}

// A resumed replay moves into its id map only the records the day's
// entries touch; the rest stay in the checkpoint's encoding (the base) and
// are merged into the next checkpoint, which holds the same records, byte
// for byte, as a replay from the start makes, in ascending id order. The
// digests (version 2 tracked, version 1 over the whole state) and every
// read of the State are a full replay's, day after day.
func TestResumeFromSortedCheckpoint(t *testing.T) {
	es := dayEntries(3, 20000)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es[:2500])
	s, cp, _ := resumeLt(t, dir, nil)
	s.Close()
	for _, end := range []int{2501, 2600, 3400, 3401, 6000, 20000} {
		day := es[cpEnd(cp):end]
		writeLog(t, dir, 64<<10, day)
		back := roundTrip(t, cp)
		if !back.sorted {
			t.Fatalf("at %d: the checkpoint's records are not in id order", cpEnd(cp))
		}
		s, next, resumed := resumeLt(t, dir, back)
		if !resumed || s.base == nil {
			t.Fatalf("at %d: resumed %v, base %v", end, resumed, s.base != nil)
		}
		if len(s.ids) > len(day) {
			t.Fatalf("after a day of %d entries, %d records in the id map (of %d): the untouched ones left the base", len(day), len(s.ids), s.Len())
		}
		// A replay from the start of the same log.
		f, fromStart, _ := resumeLt(t, dir, nil)
		wantLt, err := f.DigestOf(DigestKindLtHash)
		if err != nil {
			t.Fatal(err)
		}
		want := f.Digest()
		if got, gotR := ckRecords(next), ckRecords(fromStart); !slices.EqualFunc(got, gotR, bytes.Equal) {
			t.Fatalf("after %d entries: the next checkpoint's %d records differ from a replay from the start's %d", end, len(got), len(gotR))
		}
		if d, err := s.DigestOf(DigestKindLtHash); err != nil || d != wantLt {
			t.Fatalf("after %d entries: version-2 digest %x, %v; want %x", end, d, err, wantLt)
		}
		if s.Len() != f.Len() || s.Bytes() != f.Bytes() {
			t.Fatalf("after %d entries: %d records of %d bytes, want %d of %d", end, s.Len(), s.Bytes(), f.Len(), f.Bytes())
		}
		// Reads of single records, then of the whole state.
		for _, id := range []string{"a", "ab\x00", "abcdefgh", "shared-p7", "zzzzzzzz", "absent"} {
			p1, ok1 := s.Payload(id)
			p2, ok2 := f.Payload(id)
			seq1, _, _ := s.Written(id)
			seq2, _, _ := f.Written(id)
			if ok1 != ok2 || !bytes.Equal(p1, p2) || seq1 != seq2 {
				t.Fatalf("after %d entries: record %q: %v %d, want %v %d", end, id, ok1, seq1, ok2, seq2)
			}
		}
		var e1, e2 strings.Builder
		if err := s.ExportJSONL(&e1); err != nil {
			t.Fatal(err)
		}
		if err := f.ExportJSONL(&e2); err != nil || e1.String() != e2.String() {
			t.Fatalf("after %d entries: exports differ (%v)", end, err)
		}
		if d, err := s.DigestVerified(); err != nil || d != want {
			t.Fatalf("after %d entries: digest %x, %v; want %x", end, d, err, want)
		}
		s.Close()
		f.Close()
		cp = next
	}
}

// A checkpoint whose records are not in id order (written by a binary
// before the sorted ones) is still resumed from, loaded into the id map
// whole, and the next checkpoint is sorted.
func TestResumeFromUnsortedCheckpoint(t *testing.T) {
	es := dayEntries(5, 3000)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es[:2000])
	s, cp, _ := resumeLt(t, dir, nil)
	s.Close()
	recs := ckRecords(cp)
	slices.Reverse(recs)
	old := *cp
	old.recs, old.enc = bytes.Join(recs, nil), nil
	back := roundTrip(t, &old)
	if back.sorted || back.Records() != cp.Records() {
		t.Fatalf("sorted %v, %d records, want unsorted, %d", back.sorted, back.Records(), cp.Records())
	}
	writeLog(t, dir, 64<<10, es[2000:])
	s, next, resumed := resumeLt(t, dir, back)
	defer s.Close()
	if !resumed || s.base != nil {
		t.Fatalf("resumed %v, base %v", resumed, s.base != nil)
	}
	f, fromStart, _ := resumeLt(t, dir, nil)
	defer f.Close()
	if !roundTrip(t, next).sorted || !slices.EqualFunc(ckRecords(next), ckRecords(fromStart), bytes.Equal) {
		t.Fatal("the next checkpoint is not a replay from the start's")
	}
	wantLt, err := f.DigestOf(DigestKindLtHash)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.DigestOf(DigestKindLtHash); err != nil || d != wantLt {
		t.Fatalf("version-2 digest %x, %v; want %x", d, err, wantLt)
	}
}

// A checkpoint's records that repeat an id, or whose order holds a
// duplicate, are refused or loaded the slow way, never merged wrongly.
func TestParseCheckpointSortedDuplicate(t *testing.T) {
	es := dayEntries(7, 500)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es)
	s, cp, _ := resumeLt(t, dir, nil)
	s.Close()
	recs := ckRecords(cp)
	recs = slices.Insert(recs, 1, recs[1]) // the second record twice, in order
	dup := *cp
	dup.recs, dup.nrecs, dup.enc = bytes.Join(recs, nil), len(recs), nil
	back := roundTrip(t, &dup)
	if back.sorted {
		t.Fatal("records with a repeated id parsed as sorted")
	}
	s = NewZeroCopyState()
	defer s.Close()
	if err := s.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	if _, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), back, s); err != nil || resumed {
		t.Fatalf("resumed %v from a checkpoint with a repeated id, err %v", resumed, err)
	}
}

// sortKeys orders ids bytewise, as slices.Sort does, through the radix
// sort of their prefixes (256 keys and more) and the comparisons of ids
// sharing one.
func TestSortKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 255, 256, 3000, radixMax + 1} {
		ids := make([]string, 0, n)
		seen := map[string]bool{}
		for len(ids) < n {
			b := make([]byte, 1+rng.IntN(12))
			for i := range b {
				b[i] = "\x00\x01ab\xff"[rng.IntN(5)]
			}
			if !seen[string(b)] {
				seen[string(b)] = true
				ids = append(ids, string(b))
			}
		}
		keys := make([]ckKey, len(ids))
		for i, id := range ids {
			keys[i] = ckKey{idPrefix(id), id, uint32(i)}
		}
		keys = sortKeys(keys)
		want := slices.Sorted(slices.Values(ids))
		for i, k := range keys {
			if k.id != want[i] || ids[k.slot] != k.id {
				t.Fatalf("%d ids: key %d is %q (slot %d), want %q", n, i, k.id, k.slot, want[i])
			}
		}
	}
}

// A resumed replay reads the old payloads it subtracts through the
// State's BatchReader; when the reader says it failed (false: its Bufs
// may still be written into), the payloads are read through the segments'
// maps instead, and the digest is right either way.
func TestResumeBatchReader(t *testing.T) {
	es := dayEntries(7, 6000)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es[:2500])
	s, cp, _ := resumeLt(t, dir, nil)
	s.Close()
	writeLog(t, dir, 64<<10, es[2500:])
	f, _, _ := resumeLt(t, dir, nil)
	want, err := f.DigestOf(DigestKindLtHash)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, failing := range []bool{false, true} {
		reads := 0
		s := NewZeroCopyState()
		if err := s.TrackLtHash(); err != nil {
			t.Fatal(err)
		}
		s.SetBatchReader(func(rs []ReadAt) bool {
			reads += len(rs)
			if failing {
				for _, q := range rs {
					for i := range q.Buf {
						q.Buf[i] = 0xee // what a late read could leave
					}
				}
				return false
			}
			return preadAll(rs)
		})
		if _, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), roundTrip(t, cp), s); err != nil || !resumed {
			t.Fatalf("failing %v: resumed %v, %v", failing, resumed, err)
		}
		if reads == 0 {
			t.Fatalf("failing %v: the BatchReader read nothing", failing)
		}
		if d, err := s.DigestOf(DigestKindLtHash); err != nil || d != want {
			t.Fatalf("failing %v: version-2 digest %x, %v; want %x", failing, d, err, want)
		}
		s.Close()
	}
}
