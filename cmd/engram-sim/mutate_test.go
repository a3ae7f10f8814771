package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"memento/engram"
	"memento/walreplay"
)

func mutateTestOpts(t *testing.T, dir string) mutateOpts {
	return mutateOpts{dir: dir, seed: 2, mix: testMix(t), sameTS: 0.05, tsStep: 5 * time.Millisecond,
		walShare: 0.02, warmShare: 0.01, out: io.Discard}
}

func TestMutateDayOfActivity(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	genSmall(t, dir, 16<<20, []string{"space-a", "space-b"}, 1, "", 0)
	before := fileHashes(t, dir)
	warmBefore, err := os.ReadFile(engram.WarmPath(dir, "space-a"))
	if err != nil {
		t.Fatal(err)
	}
	walBefore := walBytes(t, dir, "space-a")
	ckBefore, _ := readCheckpoint(dir, "space-a")
	sumBefore := verifyWAL(t, dir, "space-a")

	o := mutateTestOpts(t, dir)
	o.truth = filepath.Join(tmp, "truth")
	var out strings.Builder
	o.out = &out
	if err := mutate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "space-a: wal +") || !strings.Contains(out.String(), "pages rewritten in place; cold seg-000003.col") {
		t.Errorf("report:\n%s", out.String())
	}

	// WAL: about 2 % more bytes, valid continuing entries.
	sum := verifyWAL(t, dir, "space-a")
	added := walBytes(t, dir, "space-a") - walBefore
	if added < walBefore*2/100 || added > walBefore*2/100+4<<10 {
		t.Errorf("WAL grew by %d of %d bytes, want 2 %%", added, walBefore)
	}
	if sum.FirstSeq != 1 || sum.LastSeq <= sumBefore.LastSeq || sum.FirstTS != sumBefore.FirstTS {
		t.Errorf("WAL after mutate %+v, before %+v", sum, sumBefore)
	}
	checkTruth(t, dir, readTruth(t, o.truth))

	// Warm: exactly ceil(1 %) of the pages changed, in place, still valid.
	warmAfter, err := os.ReadFile(engram.WarmPath(dir, "space-a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warmAfter) != len(warmBefore) {
		t.Fatalf("warm file size %d -> %d", len(warmBefore), len(warmAfter))
	}
	pages := len(warmBefore) / pageSize
	changed := 0
	for n := range pages {
		p := warmAfter[n*pageSize : (n+1)*pageSize]
		if string(p) != string(warmBefore[n*pageSize:(n+1)*pageSize]) {
			changed++
			checkWarmPage(t, p, uint32(n))
		}
	}
	if want := (pages + 99) / 100; changed != want {
		t.Errorf("%d of %d warm pages changed, want %d", changed, pages, want)
	}

	// One new cold segment, hot rewritten, checkpoint advanced.
	after := fileHashes(t, dir)
	var newFiles []string
	for p := range after {
		if _, ok := before[p]; !ok {
			newFiles = append(newFiles, p)
		}
	}
	if len(newFiles) != 2 || after["spaces/space-a/cold/seg-000003.col"] == "" {
		t.Errorf("new files %v, want one cold segment per space", newFiles)
	}
	checkColdSegment(t, filepath.Join(engram.ColdDir(dir, "space-a"), "seg-000003.col"), 768)
	for _, h := range engram.HotFiles {
		p := "spaces/space-a/hot/" + h
		if after[p] == before[p] {
			t.Errorf("%s not rewritten", p)
		}
	}
	for p, h := range before {
		if strings.Contains(p, "/cold/") && after[p] != h {
			t.Errorf("%s modified: cold segments are write-once", p)
		}
	}
	ck, _ := readCheckpoint(dir, "space-a")
	if ck.Sequence <= ckBefore.Sequence || ck.Sequence > sum.LastSeq {
		t.Errorf("checkpoint %d -> %d, WAL ends at %d", ckBefore.Sequence, ck.Sequence, sum.LastSeq)
	}
}

func TestMutateDeterministic(t *testing.T) {
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	genSmall(t, a, 8<<20, []string{"space-a"}, 1, "", 0)
	if out, err := exec.Command("cp", "-a", a, b).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	for _, d := range []string{a, b} {
		if err := mutate(context.Background(), mutateTestOpts(t, d)); err != nil {
			t.Fatal(err)
		}
	}
	ha, hb := fileHashes(t, a), fileHashes(t, b)
	for p, h := range ha {
		if hb[p] != h {
			t.Errorf("%s differs after the same mutation", p)
		}
	}
	if len(ha) != len(hb) {
		t.Errorf("%d vs %d files", len(ha), len(hb))
	}
}

func walBytes(t *testing.T, dir, id string) int64 {
	segs, err := walreplay.ListSegments(engram.WALDir(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range segs {
		n += s.Size
	}
	return n
}

func verifyWAL(t *testing.T, dir, id string) walreplay.Summary {
	t.Helper()
	l, err := walreplay.OpenLog(engram.WALDir(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
