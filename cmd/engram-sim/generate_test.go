package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"memento/engram"
	"memento/walreplay"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const smallSize = 20 << 20

func TestGenerateLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ids := []string{"space-a", "tenant_01"}
	start := time.Now()
	genSmall(t, dir, smallSize, ids, 1, "", 0)
	el := time.Since(start)
	total, files, err := dirSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A log line, not an assertion: BenchmarkGenerate is the measurement.
	t.Logf("generate: %d bytes in %d files in %s = %.0f MB/s", total, files, el, float64(total)/1e6/el.Seconds())
	if total < smallSize*9/10 || total > smallSize*11/10 {
		t.Errorf("data dir is %d bytes, want about %d", total, smallSize)
	}

	md, err := engram.ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(md.IDs(), ids) || md.Dim != 768 || md.WALSegmentSize != 1<<20 || md.Spaces[0].CreatedNS != epochNS ||
		md.Spaces[0].Created != "2026-11-01T00:00:00Z" {
		t.Errorf("metadata = %+v", md)
	}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			// WAL: several rotated segments, verified, no torn tail.
			l, err := walreplay.OpenLog(engram.WALDir(dir, id))
			if err != nil {
				t.Fatal(err)
			}
			sum, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if sum.Segments < 3 || sum.TornTail || sum.FirstSeq != 1 || sum.LastSeq != uint64(sum.Entries) {
				t.Errorf("WAL summary %+v", sum)
			}
			for _, s := range l.Segments()[:len(l.Segments())-1] {
				if s.Size > 1<<20 || s.Size < 1<<20-8<<10 {
					t.Errorf("sealed segment %s is %d bytes, want just under 1 MiB", s.Name, s.Size)
				}
			}
			if sum.FirstTS <= epochNS || sum.FirstTS > epochNS+int64(10*time.Millisecond) {
				t.Errorf("first timestamp %s, want just after the epoch", walreplay.FormatTime(sum.FirstTS))
			}
			walBytes := sum.Bytes

			// Checkpoint before the WAL end, at an entry whose timestamp it names.
			ck, err := readCheckpoint(dir, id)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Sequence == 0 || ck.Sequence >= sum.LastSeq || ck.Sequence < sum.LastSeq*8/10 {
				t.Errorf("checkpoint %+v, WAL ends at %d", ck, sum.LastSeq)
			}
			pos, _ := replayDigest(t, dir, id, walreplay.Target{ToSeq: &ck.Sequence})
			if pos.TimestampNS != ck.TimestampNS {
				t.Errorf("checkpoint timestamp %d, entry %d has %d", ck.TimestampNS, ck.Sequence, pos.TimestampNS)
			}

			// Warm: whole 4 KiB pages, each free or a valid record page.
			wb, err := os.ReadFile(engram.WarmPath(dir, id))
			if err != nil {
				t.Fatal(err)
			}
			if len(wb)%pageSize != 0 || len(wb) == 0 {
				t.Fatalf("warm file is %d bytes", len(wb))
			}
			free := 0
			for n := 0; n < len(wb)/pageSize; n++ {
				if checkWarmPage(t, wb[n*pageSize:(n+1)*pageSize], uint32(n)) {
					free++
				}
			}
			if free > len(wb)/pageSize/10 {
				t.Errorf("%d of %d warm pages free", free, len(wb)/pageSize)
			}

			// Cold: at least two valid segments.
			cold, _ := filepath.Glob(filepath.Join(engram.ColdDir(dir, id), "seg-*.col"))
			if len(cold) < 2 {
				t.Fatalf("cold segments %v", cold)
			}
			var coldBytes int64
			for _, c := range cold {
				if rows := checkColdSegment(t, c, 768); rows == 0 {
					t.Errorf("%s has no rows", c)
				}
				fi, _ := os.Stat(c)
				coldBytes += fi.Size()
			}

			// Hot: the three small files.
			var hotBytes int64
			for _, h := range engram.HotFiles {
				fi, err := os.Stat(filepath.Join(engram.HotDir(dir, id), h))
				if err != nil {
					t.Fatal(err)
				}
				hotBytes += fi.Size()
			}
			space := walBytes + int64(len(wb)) + coldBytes + hotBytes
			share := func(n int64) float64 { return float64(n) / float64(space) }
			if share(walBytes) < 0.40 || share(int64(len(wb))) < 0.25 || share(coldBytes) < 0.15 || share(hotBytes) > 0.02 {
				t.Errorf("proportions: wal %.2f warm %.2f cold %.2f hot %.3f", share(walBytes), share(int64(len(wb))),
					share(coldBytes), share(hotBytes))
			}
		})
	}
}

// TestGenerateWALContent checks the entry mix and shared timestamps.
func TestGenerateWALContent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	genSmall(t, dir, 8<<20, []string{"space-a"}, 7, "", 0)
	es := walEntries(t, dir, "space-a")
	var count [5]int
	same := 0
	for i, e := range es {
		count[e.typ]++
		if e.seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.seq)
		}
		if i > 0 && e.ts == es[i-1].ts {
			same++
		}
		if i > 0 && e.ts < es[i-1].ts {
			t.Fatalf("timestamp goes backwards at seq %d", e.seq)
		}
	}
	n := float64(len(es))
	for _, c := range []struct {
		typ  walreplay.EntryType
		want float64
	}{{walreplay.EpisodeStore, 0.6}, {walreplay.MemoryUpdate, 0.3}, {walreplay.MemoryDelete, 0.1}} {
		if got := float64(count[c.typ]) / n; got < c.want-0.05 || got > c.want+0.05 {
			t.Errorf("%s share %.3f, want about %.2f", c.typ, got, c.want)
		}
	}
	if got := float64(same) / n; got < 0.02 || got > 0.09 {
		t.Errorf("share of entries sharing the previous timestamp %.3f, want about 0.05", got)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	tmp := t.TempDir()
	ids := []string{"space-a", "tenant_01"}
	genSmall(t, filepath.Join(tmp, "a"), smallSize, ids, 1, "", 0)
	genSmall(t, filepath.Join(tmp, "b"), smallSize, ids, 1, "", 0)
	genSmall(t, filepath.Join(tmp, "c"), smallSize, ids, 2, "", 0)
	a, b, c := fileHashes(t, filepath.Join(tmp, "a")), fileHashes(t, filepath.Join(tmp, "b")), fileHashes(t, filepath.Join(tmp, "c"))
	if len(a) < 10 {
		t.Fatalf("only %d files", len(a))
	}
	for p, h := range a {
		if b[p] != h {
			t.Errorf("%s differs between two runs with seed 1", p)
		}
	}
	if len(a) != len(b) {
		t.Errorf("%d files vs %d", len(a), len(b))
	}
	differ := 0
	for p, h := range a {
		if c[p] != h {
			differ++
		}
	}
	// Everything but metadata.json must change with the seed.
	if differ != len(a)-1 || c["metadata.json"] != a["metadata.json"] {
		t.Errorf("seed 2 changed %d of %d files, want all but metadata.json", differ, len(a))
	}
}

// TestGenerateGolden pins generate's output for seed 1: benchmark figures
// are only comparable across commits while the data stays the same. Run
// with -update after an intended change of the format or the generator.
func TestGenerateGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	genSmall(t, dir, 4<<20, []string{"space-a", "tenant_01"}, 1, filepath.Join(t.TempDir(), "truth.jsonl"), 0)
	h := fileHashes(t, dir)
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s  %s\n", h[k], k)
	}
	golden := filepath.Join("testdata", "generate-4MiB-seed1.blake3")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("generate output changed; got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestGenerateTruthMatchesReplay(t *testing.T) {
	tmp := t.TempDir()
	dir, truth := filepath.Join(tmp, "data"), filepath.Join(tmp, "truth.jsonl")
	genSmall(t, dir, 6<<20, []string{"space-a", "space-b"}, 3, truth, 100)
	lines := readTruth(t, truth)
	perSpace := map[string]int{}
	for _, l := range lines {
		perSpace[l.Space]++
	}
	// ~470 entries a space: a line near every 100th entry plus the last.
	if perSpace["space-a"] < 4 || perSpace["space-b"] < 4 {
		t.Errorf("truth lines per space: %v", perSpace)
	}
	checkTruth(t, dir, lines)
	// The last line of each space is the end of its WAL.
	for _, id := range []string{"space-a", "space-b"} {
		pos, d := replayDigest(t, dir, id, walreplay.Target{})
		var last truthLine
		for _, l := range lines {
			if l.Space == id {
				last = l
			}
		}
		if last.Sequence != pos.Seq || last.Digest != d {
			t.Errorf("%s: last truth line %+v, WAL ends at %d with %s", id, last, pos.Seq, d)
		}
	}
}

func TestGenerateRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := generate(context.Background(), generateOpts{dir: dir, size: 1 << 20, ids: []string{"a"}, seed: 1, dim: 8,
		segSize: 1 << 20, mix: testMix(t), tsStep: time.Millisecond, workers: 1, out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestMetadataJSON(t *testing.T) {
	md := engram.NewMetadata([]string{"space-a"}, epochNS, 1<<20, 768)
	b, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"format":"engram-data-dir","version":1,"wal_segment_size":1048576,"page_size":4096,"dim":768,` +
		`"spaces":[{"id":"space-a","created_ns":1793491200000000000,"created":"2026-11-01T00:00:00Z"}]}`
	if string(b) != want {
		t.Errorf("metadata JSON\n got %s\nwant %s", b, want)
	}
}
