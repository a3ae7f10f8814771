package walreplay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// goldenCase is a hand-built WAL: its segment files byte for byte, the
// entries that count (the torn tail excluded) and the targets whose digests
// testdata/golden/expected.txt records.
type goldenCase struct {
	name    string
	files   map[string][]byte
	entries []*Entry // complete entries in log order
	targets []Target
}

func goldenCases() []goldenCase {
	a := rec("a", 0.9, "alpha", 1, 2)
	b := rec("b", 0.5, "bravo", 3, 4)
	c := rec("c", 0.25, "charlie", 5, 6)
	b2 := rec("b", 0.75, "bravo v2", 3.5, 4.5)
	d := rec("d", 1, "delta \"quoted\"\n", -1, 0.125)
	c2 := rec("c", 0.1, "charlie v2 ✓", 5.5)

	basic1 := []*Entry{store(1, 1000, a), store(2, 1000, b), store(3, 2000, c)}
	basic2 := []*Entry{upd(4, 2000, b2), del(5, 3000, "a"), marker(6, 4000), store(7, 5000, d)}
	torn := AppendEntry(nil, store(8, 6000, rec("e", 0, "echo")))[:20]

	var times []Target
	for _, ts := range []int64{999, 1000, 1001, 1999, 2000, 2001, 2999, 3000, 4000, 5000, 6000} {
		times = append(times, Target{AtTime: ptr(ts)})
	}
	var seqs []Target
	for s := uint64(0); s <= 9; s++ {
		seqs = append(seqs, Target{ToSeq: ptr(s)})
	}

	// compacted: the run 1..5 of basic compacted (live at 5: c written at 3,
	// b at 4), then ordinary entries 6..8 in a second segment.
	comp1 := []*Entry{
		{Seq: 3, TimestampNS: 2000, Type: EpisodeStore, Flags: FlagCompacted, Payload: AppendRecord(nil, c)},
		{Seq: 4, TimestampNS: 2000, Type: EpisodeStore, Flags: FlagCompacted, Payload: AppendRecord(nil, b2)},
		{Seq: 5, TimestampNS: 3000, Type: Marker, Flags: FlagCompacted},
	}
	comp2 := []*Entry{marker(6, 4000), store(7, 5000, d), upd(8, 5000, c2)}
	var compTargets []Target
	for _, ts := range []int64{3000, 4000, 4999, 5000, 5001} {
		compTargets = append(compTargets, Target{AtTime: ptr(ts)})
	}
	for _, s := range []uint64{5, 6, 7, 8} {
		compTargets = append(compTargets, Target{ToSeq: ptr(s)})
	}
	compTargets = append(compTargets, Target{})

	return []goldenCase{
		{
			name: "basic",
			files: map[string][]byte{
				SegmentName(1): encode(basic1...),
				SegmentName(4): append(encode(basic2...), torn...),
			},
			entries: append(slices.Clone(basic1), basic2...),
			targets: append(append(times, seqs...), Target{}, Target{AtTime: ptr(int64(2000)), ToSeq: ptr(uint64(3))}),
		},
		{
			name: "compacted",
			files: map[string][]byte{
				SegmentName(1): encode(comp1...),
				SegmentName(6): encode(comp2...),
			},
			entries: append(slices.Clone(comp1), comp2...),
			targets: compTargets,
		},
	}
}

func targetKey(t Target) string {
	var parts []string
	if t.AtTime != nil {
		parts = append(parts, fmt.Sprintf("at=%d", *t.AtTime))
	}
	if t.ToSeq != nil {
		parts = append(parts, fmt.Sprintf("seq=%d", *t.ToSeq))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ",")
}

// expectedFor computes count and digest of a target with the independent
// model. Compacted entries are applied as plain stores.
func expectedFor(t *testing.T, gc goldenCase, tg Target) (int, string) {
	m := modelAt(t, gc, tg)
	return len(m), m.digest()
}

// modelAt is the model of gc's entries up to tg.
func modelAt(t *testing.T, gc goldenCase, tg Target) model {
	m := model{}
	for _, e := range gc.entries {
		if tg.beyond(e) {
			break
		}
		m.apply(t, e)
	}
	return m
}

const goldenExpected = "testdata/golden/expected.txt"

func TestGolden(t *testing.T) {
	cases := goldenCases()
	if *update {
		var out bytes.Buffer
		out.WriteString("# Golden WAL vectors: case, replay target, live record count, state digest (BLAKE3-256).\n")
		out.WriteString("# Regenerate with: go test ./walreplay -run TestGolden -update\n")
		for _, gc := range cases {
			dir := filepath.Join("testdata/golden", gc.name)
			os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range gc.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, tg := range gc.targets {
				n, d := expectedFor(t, gc, tg)
				fmt.Fprintf(&out, "%s %s %d %s\n", gc.name, targetKey(tg), n, d)
			}
		}
		if err := os.WriteFile(goldenExpected, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	want := readExpected(t)
	for _, gc := range cases {
		t.Run(gc.name, func(t *testing.T) {
			dir := filepath.Join("testdata/golden", gc.name)
			// The encoder still produces the checked-in bytes.
			for name, b := range gc.files {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, b) {
					t.Fatalf("%s: checked-in bytes differ from the encoder's (run with -update only if the format change is intended)", name)
				}
			}
			l, err := OpenLog(dir)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if int(sum.Entries) != len(gc.entries) {
				t.Fatalf("Verify: %d entries, want %d", sum.Entries, len(gc.entries))
			}
			for _, tg := range gc.targets {
				key := gc.name + " " + targetKey(tg)
				exp, ok := want[key]
				if !ok {
					t.Fatalf("%s missing from %s", key, goldenExpected)
				}
				s := NewState()
				if _, err := l.Replay(context.Background(), tg, s); err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				got := fmt.Sprintf("%d %s", s.Len(), hexDigest(s.Digest()))
				if got != exp {
					t.Errorf("%s: got %s, golden %s", key, got, exp)
				}
				if n, d := expectedFor(t, gc, tg); fmt.Sprintf("%d %s", n, d) != exp {
					t.Errorf("%s: model gives %d %s, golden %s", key, n, d, exp)
				}
			}
		})
	}
}

func readExpected(t *testing.T) map[string]string { return readExpectedFile(t, goldenExpected) }

func readExpectedFile(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("bad golden line %q", line)
		}
		m[f[0]+" "+f[1]] = f[2] + " " + f[3]
	}
	return m
}

// TestGoldenEmptyDigest pins the digest of the empty state: BLAKE3 of nothing.
func TestGoldenEmptyDigest(t *testing.T) {
	const want = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	if got := hexDigest(NewState().Digest()); got != want {
		t.Fatalf("empty digest %s, want %s", got, want)
	}
}

// TestCompactMatchesGolden checks that Compact, run on the first five
// entries of the basic case, writes exactly the hand-built compacted segment.
func TestCompactMatchesGolden(t *testing.T) {
	gc := goldenCases()
	basic, comp := gc[0], gc[1]
	dir := t.TempDir()
	writeLog(t, dir, 1<<20, basic.entries[:3])
	// Force a second segment holding 4..5 and a third, newest, holding 6..
	w, err := OpenWriter(dir, WriterOptions{MaxSegmentSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range basic.entries[3:5] {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Append(marker(6, 4000)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	l, _ := OpenLog(dir)
	var names []string
	for _, s := range l.Segments()[:len(l.Segments())-1] {
		names = append(names, s.Name)
	}
	if len(names) != 3 {
		t.Fatalf("want 3 sealed segments, got %v", names)
	}
	res, err := Compact(context.Background(), dir, names...)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstSeq != 1 || res.LastSeq != 5 || res.Records != 2 {
		t.Fatalf("result %+v", res)
	}
	got, err := os.ReadFile(filepath.Join(dir, SegmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, comp.files[SegmentName(1)]) {
		t.Fatalf("compacted segment differs from the golden one")
	}
}

const goldenExpectedV2 = "testdata/golden/expected-v2.txt"

// TestGoldenV2 pins the version-2 state digest (DigestKindLtHash) of the
// same logs and targets as TestGolden: tracked during the replay, computed
// from scratch over the state, and by the model straight from the spec.
func TestGoldenV2(t *testing.T) {
	cases := goldenCases()
	if *update {
		var out bytes.Buffer
		out.WriteString("# Golden WAL vectors, state digest version 2 (lthash16): case, replay target, live record count, digest.\n")
		out.WriteString("# Regenerate with: go test ./walreplay -run TestGoldenV2 -update\n")
		for _, gc := range cases {
			for _, tg := range gc.targets {
				m := modelAt(t, gc, tg)
				fmt.Fprintf(&out, "%s %s %d %s\n", gc.name, targetKey(tg), len(m), m.digestV2())
			}
		}
		if err := os.WriteFile(goldenExpectedV2, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readExpectedFile(t, goldenExpectedV2)
	v1 := readExpected(t)
	for _, gc := range cases {
		l, err := OpenLog(filepath.Join("testdata/golden", gc.name))
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range gc.targets {
			key := gc.name + " " + targetKey(tg)
			exp, ok := want[key]
			if !ok {
				t.Fatalf("%s missing from %s", key, goldenExpectedV2)
			}
			if exp == v1[key] {
				t.Fatalf("%s: the v2 golden equals v1's", key)
			}
			tracked, plain := NewZeroCopyState(), NewState()
			if err := tracked.TrackLtHash(); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*State{tracked, plain} {
				if _, err := l.Replay(context.Background(), tg, s); err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				d, err := s.DigestOf(DigestKindLtHash)
				if err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprintf("%d %s", s.Len(), hexDigest(d)); got != exp {
					t.Errorf("%s: got %s, golden %s", key, got, exp)
				}
			}
			tracked.Close()
		}
	}
}
