package walarchive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"memento/engram"
	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

func goldenHistory() *HistoryRecord {
	return &HistoryRecord{Version: 1, Identity: "0123456789abcdef0123456789abcdef", Space: "tenant_01", Timeline: 3, Parent: 1,
		ForkSeq: 4096, ForkTS: 1793491200123456789, Snapshot: "5e1f0c2ab7d94e8a9c3f1b2d4e6a8c0b5e1f0c2ab7d94e8a9c3f1b2d4e6a8c0b",
		Target: "at 2026-11-01T00:00:00.123456789Z", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Host: "db1", DataDir: "/var/lib/engram"}
}

// TestHistoryRecordGolden pins the JSON of a history record.
func TestHistoryRecordGolden(t *testing.T) {
	g, err := os.ReadFile("testdata/history-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	h := goldenHistory()
	if got := EncodeHistoryRecord(h); !bytes.Equal(append(got, '\n'), g) {
		t.Errorf("EncodeHistoryRecord = %s\nwant %s", got, g)
	}
	back, err := ParseHistoryRecord(g)
	if err != nil || *back != *h {
		t.Errorf("ParseHistoryRecord(golden) = %+v, %v", back, err)
	}
}

func TestParseHistoryRecordRejects(t *testing.T) {
	base := string(EncodeHistoryRecord(goldenHistory()))
	bad := []string{``, `{}`, `[]`,
		`{"version":2,"identity":"0123456789abcdef0123456789abcdef","space":"a","timeline":1}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef","space":"a","timeline":0}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef","space":"a","timeline":1,"parent":1}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef","space":"a","timeline":2,"parent":2}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef","space":"a","timeline":2,"parent":0}`,
		`{"version":1,"identity":"XYZ","space":"a","timeline":1}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef","space":"../a","timeline":1}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef","space":"a","timeline":1,"new_field":1}`,
		base + ` {}`}
	for _, in := range bad {
		if h, err := ParseHistoryRecord([]byte(in)); err == nil {
			t.Errorf("ParseHistoryRecord(%q) = %+v, want an error", in, h)
		}
	}
	if _, err := ParseHistoryRecord([]byte(`{"version":2}`)); !errors.Is(err, repo.ErrFormat) {
		t.Errorf("unknown version: %v, want ErrFormat", err)
	}
}

// FuzzParseHistoryRecord: never panics; whatever it accepts encodes to JSON
// it accepts again with the same value.
func FuzzParseHistoryRecord(f *testing.F) {
	g, _ := os.ReadFile("testdata/history-v1.json")
	f.Add(g)
	f.Add([]byte(`{"version":1,"identity":"","space":"a","timeline":1}`))
	f.Add([]byte(`{"version":1,"identity":"0123456789abcdef0123456789abcdef","space":"a","timeline":5,"parent":2,"fork_seq":9}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHistoryRecord(b)
		if err != nil {
			return
		}
		back, err := ParseHistoryRecord(EncodeHistoryRecord(h))
		if err != nil || back.Line() != h.Line() || back.Parent != h.Parent || back.ForkSeq != h.ForkSeq || back.ForkTS != h.ForkTS || !back.Time.Equal(h.Time) {
			t.Fatalf("round trip of %+v: %+v, %v", h, back, err)
		}
	})
}

// TestArchiveFollowsTimeline: a data dir with an identity archives into
// its own directory (timeline 1, registered by a history record); after a
// fork (history record + timelines.json) it archives into timeline 2,
// whose history is timeline 1 through the fork, then its own entries.
func TestArchiveFollowsTimeline(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	r := tr.Repository
	fx := repotest.NewWALFixture(t, 1<<20)
	id, _, err := engram.EnsureIdentity(fx.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	fx.Write(t, 3<<20)
	ar := NewWALArchiver(r, nil)
	defer ar.Close()
	res, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity != id.Identity || res.Timeline != 1 {
		t.Fatalf("archived into %q timeline %d", res.Identity, res.Timeline)
	}
	legacy, err := LoadWALArchive(ctx, r, fx.Space)
	if err != nil || len(legacy.Segments()) != 0 {
		t.Fatalf("the legacy line got records: %v", err)
	}
	l1 := Line{Identity: id.Identity, Space: fx.Space, Timeline: 1}
	a1, err := LoadLine(ctx, r, l1)
	if err != nil {
		t.Fatal(err)
	}
	end1, _ := a1.End()
	if end1 != fx.Seq() {
		t.Fatalf("timeline 1 ends at %d, wrote %d", end1, fx.Seq())
	}
	h, err := LoadHistory(ctx, r, id.Identity, fx.Space)
	if err != nil || h.Records[1] == nil || h.Records[1].DataDir == "" {
		t.Fatalf("timeline 1 not registered: %+v, %v", h, err)
	}
	dbs, err := Databases(ctx, r, fx.Space)
	if err != nil || len(dbs) != 1 || dbs[0].Identity != id.Identity {
		t.Fatalf("Databases = %+v, %v", dbs, err)
	}

	// The space moves to timeline 2 without its record: refused.
	tl := &engram.Timelines{}
	tl.Set(fx.Space, 2)
	if err := engram.WriteTimelines(fx.DataDir, tl); err != nil {
		t.Fatal(err)
	}
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("archive onto an unrecorded timeline: %v", err)
	}
	// Record the fork at entry 10 of timeline 1; the data dir's WAL (the
	// same entries here) is archived again into timeline 2, and more
	// entries follow.
	var forkTS int64
	for _, s := range a1.Chain() {
		if s.FirstSeq <= 10 && 10 <= s.LastSeq {
			forkTS = s.FirstTS // only compared below, not replayed
		}
	}
	rec := &HistoryRecord{Identity: id.Identity, Space: fx.Space, Timeline: 2, Parent: 1, ForkSeq: 10, ForkTS: forkTS, Target: "to-seq 10", Time: time.Now().UTC(), Host: "h"}
	if err := SaveHistory(ctx, r, rec); err != nil {
		t.Fatal(err)
	}
	fx.Write(t, 1<<20)
	if res, err = ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil || res.Timeline != 2 {
		t.Fatalf("archive onto timeline 2: %+v, %v", res, err)
	}
	if a1b, _ := LoadLine(ctx, r, l1); func() uint64 { e, _ := a1b.End(); return e }() != end1 {
		t.Fatal("timeline 1 changed after the fork")
	}
	h, _ = LoadHistory(ctx, r, id.Identity, fx.Space)
	if h.Newest() != 2 {
		t.Fatalf("newest timeline %d", h.Newest())
	}
	a2, err := LoadTimeline(ctx, r, h, 2)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := a2.End(); e != fx.Seq() {
		t.Fatalf("timeline 2 ends at %d, wrote %d", e, fx.Seq())
	}
	// Timeline 2 without its own archive: timeline 1 cut at the fork.
	rec3 := &HistoryRecord{Identity: id.Identity, Space: fx.Space, Timeline: 3, Parent: 1, ForkSeq: 10, ForkTS: forkTS, Target: "to-seq 10", Time: time.Now().UTC(), Host: "h"}
	if err := SaveHistory(ctx, r, rec3); err != nil {
		t.Fatal(err)
	}
	h, _ = LoadHistory(ctx, r, id.Identity, fx.Space)
	a3, err := LoadTimeline(ctx, r, h, 3)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := a3.End(); e != 10 {
		t.Fatalf("timeline 3 ends at %d, want the fork 10", e)
	}
	if runs := a3.Runs(); len(runs) != 1 || runs[0].FirstSeq != 1 || runs[0].LastSeq != 10 {
		t.Fatalf("timeline 3 runs %+v", runs)
	}
	_ = walreplay.DefaultMaxSegmentSize
}

// TestPendingForkOfUnchangedDir: a pending fork left by a restore that
// never swapped its result in (the data dir still holds the whole archive)
// records no timeline; the space stays on its timeline.
func TestPendingForkOfUnchangedDir(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	r := tr.Repository
	fx := repotest.NewWALFixture(t, 1<<20)
	if _, _, err := engram.EnsureIdentity(fx.DataDir); err != nil {
		t.Fatal(err)
	}
	fx.Write(t, 2<<20)
	ar := NewWALArchiver(r, nil)
	defer ar.Close()
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
		t.Fatal(err)
	}
	tl := &engram.Timelines{}
	tl.SetFork(fx.Space, 1, &engram.PendingFork{Seq: 5, TS: 1})
	if err := engram.WriteTimelines(fx.DataDir, tl); err != nil {
		t.Fatal(err)
	}
	res, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
	if err != nil || res.Timeline != 1 {
		t.Fatalf("archive: %+v, %v", res, err)
	}
	if tl, _ = engram.ReadTimelines(fx.DataDir); tl.Fork(fx.Space) != nil || tl.Of(fx.Space) != 1 {
		t.Fatalf("timelines.json: %+v", tl)
	}
	id, _ := engram.ReadIdentity(fx.DataDir)
	if h, _ := LoadHistory(ctx, r, id.Identity, fx.Space); h.Newest() != 1 {
		t.Fatalf("a timeline was recorded: %+v", h.Records)
	}
}

// TestResolveDatabase: one database with an identity beside the legacy
// one resolves to it; two with identities are ambiguous, listing both.
func TestResolveDatabase(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	r := tr.Repository
	ar := NewWALArchiver(r, nil)
	defer ar.Close()
	var ids []string
	for i := 0; i < 3; i++ {
		fx := repotest.NewWALFixture(t, 1<<20)
		if i > 0 {
			id, _, err := engram.EnsureIdentity(fx.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id.Identity)
		}
		fx.Write(t, 1<<20)
		if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
			t.Fatal(err)
		}
		ar = NewWALArchiver(r, nil) // a new process per data dir
		defer ar.Close()
		got, err := ResolveDatabase(ctx, r, fx.Space, "", "")
		switch i {
		case 0:
			if err != nil || got != "" {
				t.Fatalf("legacy only: %q, %v", got, err)
			}
		case 1:
			if err != nil || got != ids[0] {
				t.Fatalf("legacy and one identity: %q, %v", got, err)
			}
		case 2:
			if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), ids[0]) || !strings.Contains(err.Error(), ids[1]) {
				t.Fatalf("two identities: %q, %v", got, err)
			}
			if got, err := ResolveDatabase(ctx, r, fx.Space, "legacy", ""); err != nil || got != "" {
				t.Fatalf("--identity legacy: %q, %v", got, err)
			}
		}
	}
}
