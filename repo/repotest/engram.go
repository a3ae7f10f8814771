package repotest

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"memento/engram"
	"memento/walreplay"
)

// EngramEpoch is where the test WALs' timestamps start.
const EngramEpoch = int64(1_790_000_000_000_000_000)

// WriteEngramSpace writes an Engram data dir holding one space: n WAL
// entries (stores and updates of n/2 ids, a delete every 11th) in segments
// of about segSize bytes, the three tiers, and checkpoint.json at cp.
func WriteEngramSpace(t testing.TB, dataDir, space string, n int, segSize int64, cp uint64) {
	t.Helper()
	sd := filepath.Join(dataDir, "spaces", space)
	w, err := walreplay.OpenWriter(filepath.Join(sd, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("mem-%05d", i%(n/2+1))
		e := &walreplay.Entry{Seq: uint64(i), TimestampNS: EngramEpoch + int64(i)*1000, Type: walreplay.EpisodeStore}
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
	WriteFile(t, filepath.Join(sd, "hot", "stats.json"), []byte(`{"entries":`+fmt.Sprint(n)+`}`), 0o644)
	WriteFile(t, filepath.Join(sd, "warm", "warm_tier.dat"), WarmPages(uint64(len(space)), 96<<10), 0o644)
	WriteFile(t, filepath.Join(sd, "cold", "seg-000001.col"), ColdSegment(7, 160<<10), 0o644)
	WriteFile(t, filepath.Join(sd, "checkpoint.json"), fmt.Appendf(nil, `{"sequence":%d,"timestamp_ns":%d}`, cp, EngramEpoch+int64(cp)*1000), 0o644)
	WriteFile(t, filepath.Join(dataDir, "metadata.json"), []byte(`{"format":"engram-data-dir","version":1,"spaces":[{"id":"`+space+`"}]}`), 0o644)
}

// WarmPages is a warm page file of size bytes (a multiple of 4 KiB) whose
// pages carry the page magic and their number (what engram.CheckTiers
// looks at) and pseudo-random bytes after them.
func WarmPages(seed uint64, size int) []byte {
	b := RandomBytes(seed, size)
	for i := 0; i+engram.PageSize <= len(b); i += engram.PageSize {
		copy(b[i:], engram.WarmPageMagic)
		binary.LittleEndian.PutUint32(b[i+4:], uint32(i/engram.PageSize))
	}
	return b
}

// ColdSegment is a cold segment of size bytes: the magic and version 1, then
// pseudo-random bytes, then the magic again.
func ColdSegment(seed uint64, size int) []byte {
	b := RandomBytes(seed, size)
	copy(b, engram.ColdMagic)
	binary.LittleEndian.PutUint16(b[4:], 1)
	copy(b[len(b)-len(engram.ColdMagic):], engram.ColdMagic)
	return b
}
