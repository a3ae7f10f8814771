package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"memento/engram"
	"memento/walreplay"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"1G", 1 << 30, ""},
		{"1GiB", 1 << 30, ""},
		{"1GB", 1e9, ""},
		{"20MB", 20e6, ""},
		{"64MiB", 64 << 20, ""},
		{"4096", 4096, ""},
		{"1.5K", 1536, ""},
		{" 2m ", 2 << 20, ""},
		{"", 0, `size "": no number`},
		{"G", 0, `size "G": no number`},
		{"10X", 0, `size "10X": unknown unit "X" (use K, M, G, KiB, MiB, GiB, KB, MB, GB)`},
		{"1.2.3M", 0, `size "1.2.3M": strconv.ParseFloat: parsing "1.2.3": invalid syntax`},
		{"9999999T", 0, `size "9999999T": out of range`},
	} {
		got, err := parseSize(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("parseSize(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestParseMix(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"store=60,update=30,delete=10", "store=60,update=30,delete=10", ""},
		{"store=1,update=1", "store=50,update=50", ""},
		{"store=3, marker=1", "store=75,marker=25", ""},
		{"update=1", "", `mix "update=1": store weight must be positive`},
		{"store=1,store=2", "", `mix "store=1,store=2": store given twice`},
		{"store=1,compact=2", "", `mix "store=1,compact=2": unknown operation "compact" (want store, update, delete, marker)`},
		{"store", "", `mix "store": "store" is not name=weight`},
		{"store=-1", "", `mix "store=-1": bad weight "-1" for store`},
	} {
		m, err := parseMix(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("parseMix(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || m.String() != c.want {
			t.Errorf("parseMix(%q) = %s, %v; want %s", c.in, m, err, c.want)
		}
	}
	m, _ := parseMix("store=60,update=30,delete=10")
	for _, c := range []struct {
		u    float64
		want opKind
	}{{0, opStore}, {0.59, opStore}, {0.61, opUpdate}, {0.89, opUpdate}, {0.91, opDelete}, {0.9999, opDelete}} {
		if got := m.pick(c.u); got != c.want {
			t.Errorf("pick(%g) = %s, want %s", c.u, opNames[got], opNames[c.want])
		}
	}
}

func TestSpaceIDs(t *testing.T) {
	if got := strings.Join(defaultSpaceIDs(28), ","); !strings.HasPrefix(got, "space-a,space-b,") ||
		!strings.HasSuffix(got, ",space-z,space-aa,space-ab") {
		t.Errorf("defaultSpaceIDs(28) = %s", got)
	}
	for _, id := range defaultSpaceIDs(800) {
		if err := validateSpaceID(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ names, err string }{
		{"space-a,tenant_01", ""},
		{"Space", `usage: space id "Space": must match [a-z0-9_-]{1,64}`},
		{"a,a", `usage: space id "a" given twice`},
		{"../x", `usage: space id "../x": must match [a-z0-9_-]{1,64}`},
		{strings.Repeat("a", 65), `usage: space id "` + strings.Repeat("a", 65) + `": must match [a-z0-9_-]{1,64}`},
	} {
		_, err := spaceIDsFromFlags(c.names, 0)
		if c.err == "" && err != nil || c.err != "" && (err == nil || err.Error() != c.err || !errors.Is(err, errUsage)) {
			t.Errorf("spaceIDsFromFlags(%q) = %v, want %q", c.names, err, c.err)
		}
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{{"hello", 10, "hello"}, {"hello", 3, "hel"}, {"héllo", 2, "h"}, {"héllo", 3, "hé"}, {"日本", 4, "日"}, {"x", 0, ""}} {
		if got := truncateUTF8(c.s, c.n); got != c.want || !utf8.ValidString(got) {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

// TestWarmPageTruncatesBigRecords: a record larger than a page (big dim or
// long content) is cut to fit and stays decodable.
func TestWarmPageTruncatesBigRecords(t *testing.T) {
	page := make([]byte, pageSize)
	rec := walreplay.Record{ID: "mem-x", Confidence: 0.5, Embedding: make([]float32, 2000), Content: strings.Repeat("é", 3000)}
	encodeWarmPage(page, 7, 9, &rec)
	checkWarmPage(t, page, 7)
	rec.Content = "short"
	encodeWarmPage(page, 7, 9, &rec)
	checkWarmPage(t, page, 7)
	r, _ := walreplay.DecodeRecord(page[warmHeader : warmHeader+int(page[18])|int(page[19])<<8])
	if len(r.Embedding) != (warmMaxRecord-(2+5+4+2+4)-5)/4 || r.Content != "short" {
		t.Errorf("dim %d content %q", len(r.Embedding), r.Content)
	}
}

func TestSamplePages(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ n, k int }{{100, 1}, {100, 100}, {10, 20}, {100000, 1000}, {0, 5}} {
		got := samplePages(r, c.n, c.k)
		if len(got) != min(c.n, c.k) {
			t.Errorf("samplePages(%d, %d) gave %d", c.n, c.k, len(got))
		}
		for i, p := range got {
			if p < 0 || p >= c.n || i > 0 && p <= got[i-1] {
				t.Fatalf("samplePages(%d, %d) = %v: not distinct, sorted, in range", c.n, c.k, got)
			}
		}
	}
}

func TestTruthCommand(t *testing.T) {
	tmp := t.TempDir()
	dir, truth := filepath.Join(tmp, "data"), filepath.Join(tmp, "truth")
	genSmall(t, dir, 2<<20, []string{"space-a"}, 5, truth, 0)
	lines := readTruth(t, truth)
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	lines[0].Timeline = 1 // generate does not tag its lines; truth does
	want, _ := jsonLine(lines[0])
	if got, err := run("truth", "--dir", dir, "--space", "space-a"); err != nil || got != string(want) {
		t.Errorf("truth = %q, %v; want %q", got, err, want)
	}
	at := walreplay.FormatTime(lines[0].TimestampNS)
	if got, err := run("truth", "--dir", dir, "--space", "space-a", "--at", at); err != nil || got != string(want) {
		t.Errorf("truth --at %s = %q, %v; want %q", at, got, err, want)
	}
	got, err := run("truth", "--dir", dir, "--space", "space-a", "--at", "2026-11-01T00:00:00Z")
	if err != nil || got != `{"space":"space-a","sequence":0,"timestamp_ns":0,"digest":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","digest_v2":"d41c436411896a3cdb2c9f596e8a0e31c28905b3d2aa2176b8aaa24500181eb6","timeline":1}`+"\n" {
		t.Errorf("truth before the first entry = %q, %v", got, err)
	}
	if got, err := run("truth", "--dir", dir, "--space", "space-a", "--to-seq", "1", "--human"); err != nil ||
		!strings.Contains(got, "sequence   1\n") || !strings.Contains(got, "records    1\n") {
		t.Errorf("truth --human = %q, %v", got, err)
	}
	if _, err := run("truth", "--dir", dir, "--space", "space-a", "--at", "1", "--to-seq", "1"); !errors.Is(err, errUsage) {
		t.Errorf("both targets: %v", err)
	}
	if _, err := run("truth", "--dir", dir, "--space", "Bad"); !errors.Is(err, errUsage) {
		t.Errorf("bad space id: %v", err)
	}
	if _, err := run("truth", "--dir", dir, "--space", "nope"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing space: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"generate", "--size", "1G"}, exitUsage},
		{[]string{"generate", "--dir", "x", "--size", "lots"}, exitUsage},
		{[]string{"run", "--nope"}, exitUsage},
		{[]string{"truth", "--dir", "/nonexistent", "--space", "a"}, exitError},
	} {
		if got := execute(c.args); got != c.code {
			t.Errorf("execute(%q) = %d, want %d", c.args, got, c.code)
		}
	}
}

// FuzzParseMetadata: metadata.json is read from disk and must never crash
// the simulator, and whatever it accepts has valid space ids.
func FuzzParseMetadata(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("testdata", "metadata.json"))
	f.Add(b)
	f.Add([]byte(`{"format":"engram-data-dir","version":1,"spaces":[{"id":"../x"}]}`))
	f.Add([]byte(`{"format":"engram-data-dir","version":1,"dim":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := engram.ParseMetadata(data)
		if err != nil {
			return
		}
		for _, s := range m.Spaces {
			if validateSpaceID(s.ID) != nil {
				t.Fatalf("accepted space id %q", s.ID)
			}
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1G", "20MB", "4096", "1.5KiB", "-1", "1e400G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && (n < 0 || n > 1<<50) {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}
