package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/walreplay"
)

// engramEpoch is where the test WALs' timestamps start.
const engramEpoch = int64(1_790_000_000_000_000_000)

// writeEngramSpace writes an Engram data dir holding one space: n WAL
// entries (stores and updates of n/2 ids, a delete every 11th) in segments
// of about segSize bytes, the three tiers, and checkpoint.json at cp.
func writeEngramSpace(t testing.TB, dataDir, space string, n int, segSize int64, cp uint64) {
	t.Helper()
	sd := filepath.Join(dataDir, "spaces", space)
	w, err := walreplay.OpenWriter(filepath.Join(sd, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("mem-%05d", i%(n/2+1))
		e := &walreplay.Entry{Seq: uint64(i), TimestampNS: engramEpoch + int64(i)*1000, Type: walreplay.EpisodeStore}
		switch {
		case i%11 == 0 && i > 11:
			e.Type, e.Payload = walreplay.MemoryDelete, walreplay.AppendDelete(nil, fmt.Sprintf("mem-%05d", (i-5)%(n/2+1)))
		default:
			if i > n/2 {
				e.Type = walreplay.MemoryUpdate
			}
			emb := make([]float32, 16)
			for k := range emb {
				emb[k] = float32(i*k%97) / 97
			}
			e.Payload = walreplay.AppendRecord(nil, &walreplay.Record{ID: id, Confidence: float32(i%100) / 100, Embedding: emb,
				Content: strings.Repeat(fmt.Sprintf("memory %d ", i), 1+i%5)})
		}
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sd, "hot", "stats.json"), []byte(`{"entries":`+fmt.Sprint(n)+`}`), 0o644)
	writeFile(t, filepath.Join(sd, "warm", "warm_tier.dat"), randomBytes(uint64(len(space)), 96<<10), 0o644)
	writeFile(t, filepath.Join(sd, "cold", "seg-000001.col"), randomBytes(7, 160<<10), 0o644)
	writeFile(t, filepath.Join(sd, "checkpoint.json"), fmt.Appendf(nil, `{"sequence":%d,"timestamp_ns":%d}`, cp, engramEpoch+int64(cp)*1000), 0o644)
	writeFile(t, filepath.Join(dataDir, "metadata.json"), []byte(`{"format":"engram-data-dir","version":1,"spaces":[{"id":"`+space+`"}]}`), 0o644)
}

// backupSpace backs up a space as the CLI does, recording its WAL range and
// state digest in the manifest.
func (tr *testRepo) backupSpace(t testing.TB, dataDir, space string) *repo.Snapshot {
	t.Helper()
	rec := repo.NewEngramRecorder(context.Background(), dataDir, space)
	defer rec.Close()
	opts := repo.BackupOptions{Space: space, DataDir: dataDir}
	rec.Attach(&opts)
	sn, err := tr.Backup(context.Background(), opts)
	if err != nil {
		t.Fatalf("backup space %s: %v", space, err)
	}
	return sn
}

// verifyIDs verifies snapshots and fails the test if verification itself fails.
func verifyIDs(t testing.TB, r *repo.Repository, level Level, ids ...chunk.ID) []*Verdict {
	t.Helper()
	vds, err := VerifySnapshots(context.Background(), r, ids, VerifyOptions{Level: level, TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("verify %s: %v", level, err)
	}
	return vds
}

// wantPass requires every verdict to have passed.
func wantPass(t testing.TB, vds ...*Verdict) {
	t.Helper()
	for _, vd := range vds {
		if !vd.Passed {
			t.Fatalf("snapshot %s %s: want pass, got findings:\n%s", vd.Short(), vd.Level, findingsText(vd))
		}
	}
}

// wantFinding requires a failed verdict with a finding at level whose text
// contains every one of want.
func wantFinding(t testing.TB, vd *Verdict, level Level, want ...string) {
	t.Helper()
	if vd.Passed {
		t.Fatalf("snapshot %s %s passed, want a finding at %s containing %q", vd.Short(), vd.Level, level, want)
	}
	for _, f := range vd.Findings {
		if f.Level != level {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(f.String(), w)
		}
		if ok {
			return
		}
	}
	t.Fatalf("snapshot %s: no %s finding containing %q in:\n%s", vd.Short(), level, want, findingsText(vd))
}

func findingsText(vd *Verdict) string {
	var b strings.Builder
	for _, f := range vd.Findings {
		b.WriteString("\t" + f.String() + "\n")
	}
	return b.String()
}

// alterEntry changes one byte of the payload of the entry with sequence
// seq in a WAL directory and fixes its CRC32C, so the WAL still verifies
// entry by entry: only replaying it to the recorded digest can tell.
func alterEntry(t testing.TB, walDir string, seq uint64) {
	t.Helper()
	segs, err := walreplay.ListSegments(walDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+walreplay.HeaderSize <= len(b); {
			h, reason := walreplay.DecodeHeader(b[off : off+walreplay.HeaderSize])
			if reason != "" {
				t.Fatalf("%s offset %d: %s", s.Name, off, reason)
			}
			end := off + walreplay.HeaderSize + int(h.PayloadLen)
			if h.Seq == seq {
				p := b[off+walreplay.HeaderSize : end]
				p[len(p)-1] ^= 0x01 // last byte of the content text
				fixCRC(t, b[off:end])
				if err := os.WriteFile(s.Path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			off = end
		}
	}
	t.Fatalf("no entry with seq %d in %s", seq, walDir)
}

// fixCRC recomputes the CRC of one encoded entry by re-encoding it.
func fixCRC(t testing.TB, entry []byte) {
	t.Helper()
	h, _ := walreplay.DecodeHeader(entry[:walreplay.HeaderSize])
	e := &walreplay.Entry{Seq: h.Seq, TimestampNS: h.TimestampNS, Type: h.Type, Flags: h.Flags, Payload: entry[walreplay.HeaderSize:]}
	enc := walreplay.AppendEntry(nil, e)
	if len(enc) != len(entry) {
		t.Fatalf("re-encoded entry is %d bytes, was %d", len(enc), len(entry))
	}
	copy(entry, enc)
}
