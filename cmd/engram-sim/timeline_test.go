package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/engram"
)

// TestTruthTimelineTag: run and truth tag their lines with the space's
// timeline from DIR/.memento/timelines.json: 1 without the file, the
// recorded number, or pending with the fork point after a restore; a run
// continuing a restored dir writes its lines with that tag; old lines
// without the fields still decode (timeline 0).
func TestTruthTimelineTag(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	o := runTestOpts(t, dir)
	o.entries, o.truth, o.truthEvery = 100, filepath.Join(tmp, "t1"), 0
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, l := range readTruth(t, o.truth) {
		if l.timelineTag != (timelineTag{Timeline: 1}) {
			t.Errorf("fresh dir: %+v", l)
		}
	}
	truth := func(space string, args ...string) string {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"truth", "--dir", dir, "--space", space}, args...))
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got := truth("space-a", "--to-seq", "0"); got != `{"space":"space-a","sequence":0,"timestamp_ns":0,"digest":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","digest_v2":"d41c436411896a3cdb2c9f596e8a0e31c28905b3d2aa2176b8aaa24500181eb6","timeline":1}`+"\n" {
		t.Errorf("truth without timelines.json = %q", got)
	}

	// As a restore leaves it: space-a forked from timeline 2 after entry
	// 30 (pending), tenant_01 on timeline 3.
	var tl engram.Timelines
	tl.SetFork("space-a", 2, &engram.PendingFork{Seq: 30, TS: 1, Target: "to-seq 30"})
	tl.Set("tenant_01", 3)
	if err := os.MkdirAll(filepath.Join(dir, ".memento"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := engram.WriteTimelines(dir, &tl); err != nil {
		t.Fatal(err)
	}
	if got := truth("space-a", "--to-seq", "0"); got != `{"space":"space-a","sequence":0,"timestamp_ns":0,"digest":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","digest_v2":"d41c436411896a3cdb2c9f596e8a0e31c28905b3d2aa2176b8aaa24500181eb6","timeline_pending":true,"fork_timeline":2,"fork_seq":30}`+"\n" {
		t.Errorf("truth on a pending fork = %q", got)
	}
	if got := truth("tenant_01", "--to-seq", "0"); !strings.HasSuffix(got, `,"timeline":3}`+"\n") {
		t.Errorf("truth on timeline 3 = %q", got)
	}

	o.truth = filepath.Join(tmp, "t2")
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	lines := readTruth(t, o.truth)
	if len(lines) != 2 {
		t.Fatalf("truth lines after the restore: %+v", lines)
	}
	for _, l := range lines {
		want := timelineTag{Timeline: 3}
		if l.Space == "space-a" {
			want = timelineTag{TimelinePending: true, ForkTimeline: 2, ForkSeq: 30}
		}
		if l.timelineTag != want || l.Sequence != 100 {
			t.Errorf("continued run: %+v, want %+v at sequence 100", l, want)
		}
	}
	checkTruth(t, dir, lines)

	// A line written before the tag existed decodes with timeline 0.
	var old truthLine
	if err := json.Unmarshal([]byte(`{"space":"space-a","sequence":1,"timestamp_ns":2,"digest":"ab"}`), &old); err != nil || old.timelineTag != (timelineTag{}) {
		t.Errorf("old line: %+v, %v", old, err)
	}

	// A damaged timelines.json fails the run and truth, naming the file.
	if err := os.WriteFile(engram.TimelinesPath(dir), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	root.SetOut(&bytes.Buffer{})
	root.SetArgs([]string{"truth", "--dir", dir, "--space", "space-a"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "timelines.json") {
		t.Errorf("truth with a damaged timelines.json: %v", err)
	}
	if err := run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "timelines.json") {
		t.Errorf("run with a damaged timelines.json: %v", err)
	}
}
