package walreplay

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []*Record{
		rec("a", 0.5, ""),
		rec("é✓", float32(math.Inf(1)), "multi\nline \"text\"", 1, -2, 3.25),
		rec(strings.Repeat("x", MaxIDLen), -1, strings.Repeat("y", 1000), make([]float32, 768)...),
	} {
		got, err := DecodeRecord(AppendRecord(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if r.Embedding == nil {
			r.Embedding = []float32{}
		}
		if !reflect.DeepEqual(&got, r) {
			t.Fatalf("round trip: %+v != %+v", got, r)
		}
	}
	// Encoding is exactly the spec's layout.
	want := []byte{1, 0, 'a', 0, 0, 0x80, 0x3f, 1, 0, 0, 0, 0, 0x40, 2, 0, 0, 0, 'h', 'i'}
	if got := AppendRecord(nil, rec("a", 1, "hi", 2)); !bytes.Equal(got, want) {
		t.Fatalf("encoding %x, want %x", got, want)
	}
	if got := AppendDelete(nil, "ab"); !bytes.Equal(got, []byte{2, 0, 'a', 'b'}) {
		t.Fatalf("delete encoding %x", got)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good := AppendRecord(nil, rec("id", 0.5, "text", 1, 2))
	for name, p := range map[string][]byte{
		"empty":            nil,
		"one byte":         {1},
		"empty id":         AppendRecord(nil, rec("", 0.5, "t")),
		"long id":          AppendRecord(nil, rec(strings.Repeat("x", MaxIDLen+1), 0.5, "t")),
		"bad utf8 id":      AppendRecord(nil, rec("\xff", 0.5, "t")),
		"bad utf8 content": AppendRecord(nil, rec("a", 0.5, "\xc3")),
		"truncated":        good[:len(good)-1],
		"trailing":         append(append([]byte{}, good...), 0),
		"short embedding":  good[:9],
	} {
		if _, err := DecodeRecord(p); !errors.Is(err, errPayload) {
			t.Errorf("%s: got %v, want a payload error", name, err)
		}
	}
}

func TestStateApplyGetHistogram(t *testing.T) {
	s := NewState()
	for _, e := range []*Entry{
		store(1, 1, rec("a", 0, "a", 1)), store(2, 1, rec("b", 0.5, "b")), store(3, 1, rec("c", 1, "c")),
		store(4, 1, rec("d", 0.99, "d")), store(5, 1, rec("e", -3, "e")), upd(6, 2, rec("e", 0.3, "e2")),
		del(7, 3, "d"), del(8, 3, "nope"), marker(9, 4),
	} {
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 4 || s.LastSeq() != 9 || s.Applied() != 9 {
		t.Fatalf("len %d last %d applied %d", s.Len(), s.LastSeq(), s.Applied())
	}
	if h := s.ConfidenceHistogram(2); !reflect.DeepEqual(h, []int{2, 2}) {
		t.Fatalf("histogram/2 %v", h)
	}
	if h := s.ConfidenceHistogram(4); !reflect.DeepEqual(h, []int{1, 1, 1, 1}) {
		t.Fatalf("histogram %v", h)
	}
	if r, ok := s.Get("e"); !ok || r.Content != "e2" || r.Confidence != 0.3 {
		t.Fatalf("get e: %+v %v", r, ok)
	}
	if seq, ts, ok := s.Written("e"); !ok || seq != 6 || ts != 2 {
		t.Fatalf("written e: %d %d", seq, ts)
	}
	if _, ok := s.Get("d"); ok {
		t.Fatal("d is deleted")
	}
	if err := s.Apply(&Entry{Seq: 10, Type: EpisodeStore, Payload: []byte{0, 0}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("malformed payload: %v", err)
	}
	if s.Len() != 4 {
		t.Fatal("a failed Apply changed the state")
	}
}

func TestExportJSONL(t *testing.T) {
	s := NewState()
	s.Apply(store(1, 1, rec("b", 0.1, "tab\there \"q\" \x01", 1.5, float32(math.NaN()))))
	s.Apply(store(2, 1, rec("a", 1, "ünï", -0.25)))
	var buf bytes.Buffer
	if err := s.ExportJSONL(&buf); err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"a","confidence":1,"content":"ünï","embedding":[-0.25]}
{"id":"b","confidence":0.1,"content":"tab\there \"q\" \u0001","embedding":[1.5,null]}
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestStateChurnMemory overwrites and deletes many records and checks the
// arena is repacked (memory stays bounded) without changing the digest.
func TestStateChurnMemory(t *testing.T) {
	s, m := NewState(), model{}
	emb := make([]float32, 768)
	seq := uint64(0)
	for round := 0; round < 40; round++ {
		for i := 0; i < 1000; i++ {
			seq++
			id := string(rune('a'+i%26)) + strings.Repeat("x", i%7) + string(rune('0'+i%10)) + string(rune('A'+i/26%26))
			var e *Entry
			switch {
			case round%5 == 4 && i%2 == 0:
				e = del(seq, int64(seq), id)
			default:
				// Sizes vary so that updates cannot always overwrite in place.
				e = store(seq, int64(seq), rec(id, 0.5, strings.Repeat("c", (round*7+i)%300), emb[:700+(round+i)%68]...))
			}
			if err := s.Apply(e); err != nil {
				t.Fatal(err)
			}
			m.apply(t, e)
		}
	}
	if s.Len() != len(m) || hexDigest(s.Digest()) != m.digest() {
		t.Fatal("state differs from model after churn")
	}
	var arena int64
	for _, b := range s.blocks {
		arena += int64(cap(b.b))
	}
	if limit := 2*s.Bytes() + 16*arenaBlock; arena > limit {
		t.Fatalf("arena %d bytes for %d live bytes (limit %d)", arena, s.Bytes(), limit)
	}
	// A big record gets its own block, freed on delete.
	big := rec("big", 1, strings.Repeat("z", 2*bigPayload))
	s.Apply(store(seq+1, 1<<40, big))
	if r, ok := s.Get("big"); !ok || r.Content != big.Content {
		t.Fatal("big record lost")
	}
	s.Apply(del(seq+2, 1<<40, "big"))
	if _, ok := s.Get("big"); ok || hexDigest(s.Digest()) != m.digest() {
		t.Fatal("big record not deleted")
	}
}

func TestParseFormatTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ns   int64
		fail bool
	}{
		{"0", 0, false},
		{"1700000000123456789", 1700000000123456789, false},
		{"-5", -5, false},
		{"2023-11-14T22:13:20Z", 1700000000000000000, false},
		{"2023-11-14T22:13:20.123456789Z", 1700000000123456789, false},
		{"2023-11-14T23:13:20.5+01:00", 1700000000500000000, false},
		{"2023-11-14T22:13:20.1234567891Z", 0, true},
		{"2023-11-14T22:13:20.Z", 0, true},
		{"2023-11-14 22:13:20Z", 0, true},
		{"2300-01-01T00:00:00Z", 0, true},
		{"", 0, true},
		{"12a", 0, true},
		{"99999999999999999999", 0, true},
	} {
		ns, err := ParseTime(tc.in)
		if (err != nil) != tc.fail || ns != tc.ns {
			t.Errorf("ParseTime(%q) = %d, %v", tc.in, ns, err)
		}
	}
	if got := FormatTime(1700000000000000001); got != "2023-11-14T22:13:20.000000001Z" {
		t.Errorf("FormatTime = %s", got)
	}
	for _, ns := range []int64{0, 1, -1, 1700000000123456789, math.MaxInt64, math.MinInt64} {
		if back, err := ParseTime(FormatTime(ns)); err != nil || back != ns {
			t.Errorf("round trip %d: %d %v", ns, back, err)
		}
	}
}

// TestZeroCopyReplayReservesSlots: a zero-copy replay from the start makes
// room for the whole WAL's records once it has walked its first MiB (walk,
// State.reserve), so the slots are not grown again and again by append
// (each growth a copy into fresh memory): replaying three segments grows
// them at most once more than replaying the first alone, and the state is
// the one a copying replay builds.
func TestZeroCopyReplayReservesSlots(t *testing.T) {
	es := genEntries(22, 12000, 128)
	dir := t.TempDir()
	writeLog(t, dir, 2<<20, es)
	l := mustOpenLog(t, dir)
	segs := l.Segments()
	if len(segs) < 3 || segs[0].Size < reserveAfter {
		t.Fatalf("%d segments, the first %d bytes: want 3 or more, the first at least %d", len(segs), segs[0].Size, reserveAfter)
	}
	first := t.TempDir()
	b, err := os.ReadFile(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(first, filepath.Base(segs[0].Path)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	replay := func(dir string) *State {
		zc := NewZeroCopyState()
		t.Cleanup(func() { zc.Close() })
		if _, err := mustOpenLog(t, dir).Replay(t.Context(), Target{}, zc); err != nil {
			t.Fatal(err)
		}
		return zc
	}
	one, all := replay(first), replay(dir)
	if all.slotGrowths > one.slotGrowths+1 {
		t.Fatalf("slots grown %d times for %d records (%d for the first segment's %d)", all.slotGrowths, len(all.slots), one.slotGrowths, len(one.slots))
	}
	if len(all.slots) < 2*len(one.slots) {
		t.Fatalf("%d slots for the whole WAL, %d for its first segment", len(all.slots), len(one.slots))
	}
	cp := NewState()
	if _, err := l.Replay(t.Context(), Target{}, cp); err != nil {
		t.Fatal(err)
	}
	want, got := cp.Digest(), all.Digest()
	if got != want || all.Len() != cp.Len() || all.Len() != len(modelOf(t, es)) {
		t.Fatalf("zero-copy state %x (%d records), copying %x (%d)", got, all.Len(), want, cp.Len())
	}
}

// TestStateReserve: reserve keeps every record and makes room for n more
// slots without another growth.
func TestStateReserve(t *testing.T) {
	s := NewState()
	es := genEntries(23, 200, 4)
	for _, e := range es[:100] {
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Len()
	d0 := s.Digest()
	s.reserve(1000)
	if d := s.Digest(); d != d0 || s.Len() != before || cap(s.slots)-len(s.slots) < 1000 {
		t.Fatalf("after reserve: digest %x (was %x), %d records (was %d), room for %d slots", d, d0, s.Len(), before, cap(s.slots)-len(s.slots))
	}
	g := s.slotGrowths
	for _, e := range es[100:] {
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if s.slotGrowths != g {
		t.Fatalf("slots grown %d times after reserving room", s.slotGrowths-g)
	}
}

// TestZeroCopyReplayReserveIsBounded: a WAL whose first segment stores
// every id and whose rest only updates them (an import, then updates) has
// many more records per byte at its start than later: the replay's
// reserve, estimated from the start, must not make room for every record
// of the WAL (100,000 here, for 5,000 live
// records), only for a few times the slots it has.
func TestZeroCopyReplayReserveIsBounded(t *testing.T) {
	const ids, n = 5000, 100000
	emb := make([]float32, 128)
	ts := int64(1_700_000_000_000_000_000)
	es := make([]*Entry, 0, n)
	for i := range n {
		id := fmt.Sprintf("mem-%06d", i%ids)
		if i < ids {
			es = append(es, store(uint64(i+1), ts+int64(i), rec(id, 0.5, "content", emb...)))
		} else {
			es = append(es, upd(uint64(i+1), ts+int64(i), rec(id, 0.5, "content", emb...)))
		}
	}
	dir := t.TempDir()
	writeLog(t, dir, 4<<20, es)
	l := mustOpenLog(t, dir)
	if segs := l.Segments(); len(segs) < 10 || segs[0].Size < reserveAfter {
		t.Fatalf("%d segments, the first %d bytes: want 10 or more, the first at least %d", len(segs), segs[0].Size, reserveAfter)
	}
	zc := NewZeroCopyState()
	defer zc.Close()
	if _, err := l.Replay(t.Context(), Target{}, zc); err != nil {
		t.Fatal(err)
	}
	if zc.Len() != ids || len(zc.slots) != ids {
		t.Fatalf("%d records in %d slots, want %d", zc.Len(), len(zc.slots), ids)
	}
	if c := cap(zc.slots); c > 5*ids { // reserveGrowth+1 times, and the allocator's rounding up
		t.Fatalf("room for %d slots for %d records: the reserve took the start's records per byte for the whole WAL's", c, ids)
	}
	cp := NewState()
	if _, err := l.Replay(t.Context(), Target{}, cp); err != nil {
		t.Fatal(err)
	}
	if got, want := zc.Digest(), cp.Digest(); got != want {
		t.Fatalf("zero-copy state %x, copying %x", got, want)
	}
}
