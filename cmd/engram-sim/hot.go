package main

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"

	"memento/engram"
	"memento/walreplay"
)

// The hot tier is a few small files rewritten wholesale (temporary file,
// then rename) on every checkpoint:
//
//	hot/memtable.bin     "EHOT" | u32 count | count x (u64 seq | i64 ts | u32 len | record)
//	hot/recent_ids.json  {"updated_ns": T, "ids": [...]} most recent first
//	hot/stats.json       {"sequence": C, "timestamp_ns": T, "live_records": n, "entries": n}
//
// Their names are package engram's: HotMemtable, HotRecent, HotStats, HotFiles.

type hotStatsDoc struct {
	Sequence    uint64 `json:"sequence"`
	TimestampNS int64  `json:"timestamp_ns"`
	LiveRecords int    `json:"live_records"`
	Entries     uint64 `json:"entries"`
}

// writeHot rewrites every hot file from the most recent records (oldest
// first) and the stats.
func writeHot(dir, id string, recent []coldRecord, st hotStatsDoc, sync bool) error {
	hd := engram.HotDir(dir, id)
	mt := []byte("EHOT")
	mt = binary.LittleEndian.AppendUint32(mt, uint32(len(recent)))
	var recBuf []byte
	for _, r := range recent {
		recBuf = walreplay.AppendRecord(recBuf[:0], &r.rec)
		mt = binary.LittleEndian.AppendUint64(mt, r.seq)
		mt = binary.LittleEndian.AppendUint64(mt, uint64(r.ts))
		mt = binary.LittleEndian.AppendUint32(mt, uint32(len(recBuf)))
		mt = append(mt, recBuf...)
	}
	if err := writeFileAtomic(filepath.Join(hd, engram.HotMemtable), mt, sync); err != nil {
		return err
	}
	ids := make([]string, 0, len(recent))
	for i := len(recent) - 1; i >= 0; i-- {
		ids = append(ids, recent[i].rec.ID)
	}
	rb, err := json.Marshal(struct {
		UpdatedNS int64    `json:"updated_ns"`
		IDs       []string `json:"ids"`
	}{st.TimestampNS, ids})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(hd, engram.HotRecent), append(rb, '\n'), sync); err != nil {
		return err
	}
	sb, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(hd, engram.HotStats), append(sb, '\n'), sync)
}

// recentRing keeps the last n records written, the content of the memtable.
type recentRing struct {
	buf  []coldRecord
	next int
	full bool
}

func newRecentRing(n int) *recentRing { return &recentRing{buf: make([]coldRecord, n)} }

// add stores a copy of rec (its embedding is copied: callers reuse theirs).
func (r *recentRing) add(rec *walreplay.Record, seq uint64, ts int64) {
	if len(r.buf) == 0 {
		return
	}
	slot := &r.buf[r.next]
	emb := append(slot.rec.Embedding[:0], rec.Embedding...)
	slot.rec = walreplay.Record{ID: rec.ID, Confidence: rec.Confidence, Embedding: emb, Content: rec.Content}
	slot.seq, slot.ts = seq, ts
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// items returns the records oldest first (aliasing the ring).
func (r *recentRing) items() []coldRecord {
	if !r.full {
		return r.buf[:r.next]
	}
	return append(append([]coldRecord(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}
