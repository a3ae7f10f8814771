package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"memento/engram"
	"memento/walreplay"
)

func genProfile(t testing.TB, dir string, size int64, ids []string, seed uint64, pr *profile, truth string, truthEvery uint64) {
	t.Helper()
	err := generate(context.Background(), generateOpts{dir: dir, profile: pr, size: size, ids: ids, seed: seed, dim: 768,
		segSize: 1 << 20, mix: testMix(t), sameTS: 0.05, tsStep: 5 * time.Millisecond, truth: truth,
		truthEvery: truthEvery, workers: 2, out: io.Discard})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
}

func mustProfile(t testing.TB, name string) *profile {
	t.Helper()
	p, err := lookupProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProfileFlag: an unknown profile is a usage error naming the valid
// ones, on every command that takes --profile.
func TestProfileFlag(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"generate", "--dir", filepath.Join(dir, "g"), "--size", "1M", "--profile", "nope"},
		{"mutate", "--dir", dir, "--profile", "nope"},
		{"run", "--dir", filepath.Join(dir, "r"), "--entries", "1", "--profile", "nope"},
	} {
		root := newRootCmd()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		err := root.Execute()
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `--profile "nope": unknown profile (valid: default, wal-heavy)`) {
			t.Errorf("%s: err = %v", args[0], err)
		}
		if got := execute(args); got != exitUsage {
			t.Errorf("%s: exit %d, want %d", args[0], got, exitUsage)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "g")); err == nil {
		t.Error("generate wrote a dir despite the bad profile")
	}
}

// TestProfileDefaultFlagIsGolden: --profile default through the CLI writes
// exactly the golden bytes.
func TestProfileDefaultFlagIsGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"generate", "--dir", dir, "--size", "4MiB", "--space-names", "space-a,tenant_01", "--seed", "1",
		"--segment-size", "1MiB", "--profile", "default", "--workers", "2"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
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
	want, err := os.ReadFile(filepath.Join("testdata", "generate-4MiB-seed1.blake3"))
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("--profile default differs from the golden output:\n%s", b.String())
	}
}

// TestProfileWALHeavy generates a small wal-heavy dir, checks its shape and
// its truth lines against replays, applies a day with mutate and checks
// again; no embedding may appear twice anywhere in the dir.
func TestProfileWALHeavy(t *testing.T) {
	tmp := t.TempDir()
	dir, truth := filepath.Join(tmp, "data"), filepath.Join(tmp, "truth.jsonl")
	pr := mustProfile(t, "wal-heavy")
	ids := []string{"space-a", "space-b"}
	const size = 12 << 20
	genProfile(t, dir, size, ids, 1, pr, truth, 200)
	checkTruth(t, dir, readTruth(t, truth))

	for _, id := range ids {
		sum := verifyWAL(t, dir, id)
		if sum.Segments < 3 || sum.TornTail {
			t.Errorf("%s: WAL %+v", id, sum)
		}
		wal := walBytes(t, dir, id)
		warm, _ := os.Stat(engram.WarmPath(dir, id))
		var cold, hot int64
		cs, _ := filepath.Glob(filepath.Join(engram.ColdDir(dir, id), "seg-*.col"))
		for _, c := range cs {
			checkColdSegment(t, c, 768)
			fi, _ := os.Stat(c)
			cold += fi.Size()
		}
		for _, h := range engram.HotFiles {
			fi, err := os.Stat(filepath.Join(engram.HotDir(dir, id), h))
			if err != nil {
				t.Fatal(err)
			}
			hot += fi.Size()
		}
		space := float64(wal + warm.Size() + cold + hot)
		if s := float64(wal) / space; s < 0.47 || s > 0.53 {
			t.Errorf("%s: WAL share %.3f, want 0.50", id, s)
		}
		if s := float64(warm.Size()) / space; s < 0.28 || s > 0.32 {
			t.Errorf("%s: warm share %.3f, want 0.30", id, s)
		}
		if s := float64(cold) / space; s < 0.15 || s > 0.22 {
			t.Errorf("%s: cold share %.3f, want about 0.20 minus hot", id, s)
		}
		if hot < 150<<10 || hot > 260<<10 {
			t.Errorf("%s: hot files %d bytes, want about 200 KiB", id, hot)
		}
		// One record a page, none free.
		wb, err := os.ReadFile(engram.WarmPath(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(wb)/pageSize; n++ {
			if checkWarmPage(t, wb[n*pageSize:(n+1)*pageSize], uint32(n)) {
				t.Fatalf("%s: warm page %d is free", id, n)
			}
		}
	}
	// ~200 bytes of text per record.
	var n, total int
	forEachEmbedding(t, dir, func(where string, rec *walreplay.Record, _ []byte) {
		if rec != nil && strings.Contains(where, "/wal/") {
			n++
			total += len(rec.Content)
			if len(rec.Content) < 150 || len(rec.Content) > 220 {
				t.Fatalf("%s: text of %d bytes", where, len(rec.Content))
			}
		}
	})
	if avg := total / max(n, 1); avg < 185 || avg > 215 {
		t.Errorf("mean WAL record text %d bytes over %d records, want about 200", avg, n)
	}
	before := checkUniqueEmbeddings(t, dir)

	// The day: 2 % WAL, 1 % of warm pages in place, one cold segment.
	warmBefore, _ := os.ReadFile(engram.WarmPath(dir, "space-a"))
	walBefore := walBytes(t, dir, "space-a")
	o := mutateTestOpts(t, dir)
	o.profile = pr
	o.truth = filepath.Join(tmp, "truth-day.jsonl")
	if err := mutate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	checkTruth(t, dir, readTruth(t, o.truth))
	added := walBytes(t, dir, "space-a") - walBefore
	if added < walBefore*2/100 || added > walBefore*2/100+8<<10 {
		t.Errorf("WAL grew by %d of %d bytes, want 2 %%", added, walBefore)
	}
	warmAfter, _ := os.ReadFile(engram.WarmPath(dir, "space-a"))
	changed := 0
	for p := 0; p < len(warmBefore)/pageSize; p++ {
		if !bytes.Equal(warmBefore[p*pageSize:(p+1)*pageSize], warmAfter[p*pageSize:(p+1)*pageSize]) {
			changed++
		}
	}
	if pages := len(warmBefore) / pageSize; len(warmAfter) != len(warmBefore) || changed != (pages+99)/100 {
		t.Errorf("warm: %d of %d pages changed (size %d -> %d), want 1 %% in place", changed, pages, len(warmBefore), len(warmAfter))
	}
	cs, _ := filepath.Glob(filepath.Join(engram.ColdDir(dir, "space-a"), "seg-*.col"))
	checkColdSegment(t, cs[len(cs)-1], 768)
	after := checkUniqueEmbeddings(t, dir)
	t.Logf("%d distinct embeddings before the day, %d after (the hot memtable shrinks to the day's last 32 records)", before, after)
}

// TestProfileWALHeavyDeterministic: same seed, same bytes; and not the
// default profile's bytes.
func TestProfileWALHeavyDeterministic(t *testing.T) {
	tmp := t.TempDir()
	pr := mustProfile(t, "wal-heavy")
	ids := []string{"space-a"}
	genProfile(t, filepath.Join(tmp, "a"), 4<<20, ids, 1, pr, "", 0)
	genProfile(t, filepath.Join(tmp, "b"), 4<<20, ids, 1, pr, "", 0)
	genSmall(t, filepath.Join(tmp, "c"), 4<<20, ids, 1, "", 0)
	a, b, c := fileHashes(t, filepath.Join(tmp, "a")), fileHashes(t, filepath.Join(tmp, "b")), fileHashes(t, filepath.Join(tmp, "c"))
	if len(a) != len(b) {
		t.Errorf("%d vs %d files", len(a), len(b))
	}
	for p, h := range a {
		if b[p] != h {
			t.Errorf("%s differs between two wal-heavy runs with seed 1", p)
		}
	}
	if a["spaces/space-a/warm/warm_tier.dat"] == c["spaces/space-a/warm/warm_tier.dat"] {
		t.Error("wal-heavy and default wrote the same warm file")
	}
}

// checkUniqueEmbeddings fails when two embeddings anywhere in dir are equal
// and returns how many there are.
func checkUniqueEmbeddings(t *testing.T, dir string) int {
	t.Helper()
	seen := map[string]string{}
	forEachEmbedding(t, dir, func(where string, _ *walreplay.Record, emb []byte) {
		k := string(emb)
		if prev, ok := seen[k]; ok {
			t.Fatalf("the embedding of %s repeats that of %s", where, prev)
		}
		seen[k] = where
	})
	if len(seen) < 100 {
		t.Fatalf("only %d embeddings", len(seen))
	}
	return len(seen)
}

// forEachEmbedding calls fn for every embedding in dir (as little-endian
// bytes): WAL records (with the record), warm pages, cold rows, the hot
// memtable.
func forEachEmbedding(t *testing.T, dir string, fn func(where string, rec *walreplay.Record, emb []byte)) {
	t.Helper()
	le := binary.LittleEndian
	embBytes := func(r *walreplay.Record) []byte {
		b := make([]byte, 0, 4*len(r.Embedding))
		for _, f := range r.Embedding {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
		return b
	}
	md, err := engram.ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range md.IDs() {
		segs, err := walreplay.ListSegments(engram.WALDir(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			f, err := os.Open(s.Path)
			if err != nil {
				t.Fatal(err)
			}
			r := walreplay.NewSegmentReader(f, s.Name)
			for {
				e, err := r.Next()
				if err == io.EOF || errors.Is(err, walreplay.ErrTornTail) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if e.Type == walreplay.EpisodeStore || e.Type == walreplay.MemoryUpdate {
					rec, err := walreplay.DecodeRecord(e.Payload)
					if err != nil {
						t.Fatal(err)
					}
					fn(fmt.Sprintf("spaces/%s/wal/%s seq %d", id, s.Name, e.Seq), &rec, embBytes(&rec))
				}
			}
			f.Close()
		}
		wb, err := os.ReadFile(engram.WarmPath(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(wb)/pageSize; n++ {
			p := wb[n*pageSize : (n+1)*pageSize]
			if isZero(p) {
				continue
			}
			rec, err := walreplay.DecodeRecord(p[warmHeader : warmHeader+int(le.Uint16(p[18:]))])
			if err != nil {
				t.Fatal(err)
			}
			fn(fmt.Sprintf("spaces/%s/warm page %d", id, n), nil, embBytes(&rec))
		}
		cs, _ := filepath.Glob(filepath.Join(engram.ColdDir(dir, id), "seg-*.col"))
		for _, c := range cs {
			b, err := os.ReadFile(c)
			if err != nil {
				t.Fatal(err)
			}
			dim, rows := int(le.Uint16(b[6:])), int(le.Uint32(b[8:]))
			foot := b[len(b)-int(le.Uint32(b[len(b)-8:])):]
			off := int(le.Uint64(foot[20*5:]))
			for i := range rows {
				fn(fmt.Sprintf("%s row %d", c, i), nil, b[off+i*dim*4:off+(i+1)*dim*4])
			}
		}
		mt, err := os.ReadFile(filepath.Join(engram.HotDir(dir, id), engram.HotMemtable))
		if err != nil {
			t.Fatal(err)
		}
		count, p := int(le.Uint32(mt[4:])), 8
		for i := range count {
			n := int(le.Uint32(mt[p+16:]))
			rec, err := walreplay.DecodeRecord(mt[p+20 : p+20+n])
			if err != nil {
				t.Fatal(err)
			}
			fn(fmt.Sprintf("spaces/%s/hot memtable record %d", id, i), nil, embBytes(&rec))
			p += 20 + n
		}
	}
}

// TestRunProfileWALHeavy: run --profile wal-heavy writes records with ~200
// bytes of text, and its truth still matches a replay.
func TestRunProfileWALHeavy(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	o := runTestOpts(t, dir)
	o.profile = mustProfile(t, "wal-heavy")
	o.entries, o.truth, o.truthEvery = 200, filepath.Join(tmp, "truth"), 50
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	checkTruth(t, dir, readTruth(t, o.truth))
	n := 0
	forEachEmbedding(t, dir, func(where string, rec *walreplay.Record, _ []byte) {
		if rec != nil {
			n++
			if len(rec.Content) < 150 || len(rec.Content) > 220 {
				t.Fatalf("%s: text of %d bytes", where, len(rec.Content))
			}
		}
	})
	if n < 100 {
		t.Errorf("only %d records in the WAL", n)
	}
}
