package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"memento/engram"
	"memento/walreplay"
)

// A cold segment is a columnar file written once and never modified:
//
//	header, 64 bytes: magic "ECOL" | u16 version 1 | u16 dim | u32 rows |
//	  u32 columns (6) | u64 min_seq | u64 max_seq | i64 min_ts | i64 max_ts | 16 zero bytes
//	columns, in order: ids (u16 len | bytes), seqs (u64), timestamps (i64),
//	  confidences (f32), contents (u32 len | bytes), embeddings (rows x dim x f32)
//	footer: per column u64 offset | u64 length | u32 CRC32C, then u32 footer
//	  length and the magic "ECOL" again
//
// Segments are named seg-<n>.col with n zero-padded to 6 digits, counting
// from 1, so that lexical order is creation order (engram.ColdSegmentName).
const (
	coldMagic   = "ECOL"
	coldHeader  = 64
	coldColumns = 6
)

// nextColdNumber returns one more than the highest seg-<n>.col in dir.
func nextColdNumber(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	next := 1
	for _, e := range ents {
		if n, ok := engram.ParseColdSegmentName(e.Name()); ok && n >= next {
			next = n + 1
		}
	}
	return next, nil
}

// coldRows is what a cold segment is written from. The small columns are
// held in memory; embeddings are produced row by row as they are written, so
// a segment streams to disk whatever its size.
type coldRows struct {
	ids      []string
	seqs     []uint64
	ts       []int64
	conf     []float32
	contents []string
	dim      int
	// embedding appends row i's embedding (dim float32s) to dst.
	embedding func(dst []byte, i int) []byte
}

// syntheticColdRows draws rows random rows with increasing sequences from
// firstSeq and timestamps from firstTS, contents from text; embeddings come
// from r as written.
func syntheticColdRows(r *rand.Rand, rows, dim int, firstSeq uint64, firstTS int64, text func(*rand.Rand, *strings.Builder) string) *coldRows {
	c := &coldRows{dim: dim}
	var sb strings.Builder
	seq, ts := firstSeq, firstTS
	for range rows {
		c.ids = append(c.ids, newMemoryID(r))
		c.seqs = append(c.seqs, seq)
		c.ts = append(c.ts, ts)
		c.conf = append(c.conf, confidence(r))
		c.contents = append(c.contents, text(r, &sb))
		seq += 1 + r.Uint64N(3)
		ts += 1 + r.Int64N(20_000_000)
	}
	c.embedding = func(dst []byte, _ int) []byte { return appendNormalBytes(dst, r, dim) }
	return c
}

// coldRowsFromRecords builds rows from real records (run's recent writes).
func coldRowsFromRecords(recs []coldRecord, dim int) *coldRows {
	c := &coldRows{dim: dim}
	for _, cr := range recs {
		c.ids = append(c.ids, cr.rec.ID)
		c.seqs = append(c.seqs, cr.seq)
		c.ts = append(c.ts, cr.ts)
		c.conf = append(c.conf, cr.rec.Confidence)
		c.contents = append(c.contents, cr.rec.Content)
	}
	c.embedding = func(dst []byte, i int) []byte {
		e := recs[i].rec.Embedding
		for j := range dim {
			var f float32
			if j < len(e) {
				f = e[j]
			}
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
		}
		return dst
	}
	return c
}

// coldRecord is a record with the WAL position of the write it came from.
type coldRecord struct {
	rec walreplay.Record
	seq uint64
	ts  int64
}

// coldRowSize estimates the bytes one row takes, to size segments.
func coldRowSize(dim int) int { return 2 + 20 + 8 + 8 + 4 + 4 + 110 + 4*dim }

// writeCold writes a cold segment to path via a temporary file renamed into
// place, so the segment appears whole or not at all.
func writeCold(path string, c *coldRows, sync bool) (size int64, err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	cw := &countingWriter{w: bufio.NewWriterSize(f, 4<<20), crc: crc32.New(castagnoli)}
	rows := len(c.ids)
	var hdr [coldHeader]byte
	copy(hdr[:], coldMagic)
	le := binary.LittleEndian
	le.PutUint16(hdr[4:], 1)
	le.PutUint16(hdr[6:], uint16(c.dim))
	le.PutUint32(hdr[8:], uint32(rows))
	le.PutUint32(hdr[12:], coldColumns)
	if rows > 0 {
		le.PutUint64(hdr[16:], c.seqs[0])
		le.PutUint64(hdr[24:], c.seqs[rows-1])
		le.PutUint64(hdr[32:], uint64(c.ts[0]))
		le.PutUint64(hdr[40:], uint64(c.ts[rows-1]))
	}
	cw.write(hdr[:])
	var dir [coldColumns]struct {
		off, n int64
		crc    uint32
	}
	buf := make([]byte, 0, 1<<20)
	column := func(k int, row func(dst []byte, i int) []byte) {
		dir[k].off = cw.n
		cw.crc.Reset()
		for i := range rows {
			buf = row(buf, i)
			if len(buf) >= 1<<20-8192 {
				cw.write(buf)
				buf = buf[:0]
			}
		}
		cw.write(buf)
		buf = buf[:0]
		dir[k].n = cw.n - dir[k].off
		dir[k].crc = cw.crc.Sum32()
	}
	column(0, func(d []byte, i int) []byte { return append(le.AppendUint16(d, uint16(len(c.ids[i]))), c.ids[i]...) })
	column(1, func(d []byte, i int) []byte { return le.AppendUint64(d, c.seqs[i]) })
	column(2, func(d []byte, i int) []byte { return le.AppendUint64(d, uint64(c.ts[i])) })
	column(3, func(d []byte, i int) []byte { return le.AppendUint32(d, math.Float32bits(c.conf[i])) })
	column(4, func(d []byte, i int) []byte {
		return append(le.AppendUint32(d, uint32(len(c.contents[i]))), c.contents[i]...)
	})
	column(5, c.embedding)
	var foot []byte
	for _, d := range dir {
		foot = le.AppendUint64(foot, uint64(d.off))
		foot = le.AppendUint64(foot, uint64(d.n))
		foot = le.AppendUint32(foot, d.crc)
	}
	foot = le.AppendUint32(foot, uint32(len(foot)+8))
	foot = append(foot, coldMagic...)
	cw.write(foot)
	if cw.err == nil {
		cw.err = cw.w.Flush()
	}
	if cw.err != nil {
		return 0, fmt.Errorf("write %s: %w", tmp, cw.err)
	}
	if sync {
		if err = f.Sync(); err != nil {
			return 0, fmt.Errorf("fsync %s: %w", tmp, err)
		}
	}
	if err = f.Close(); err != nil {
		return 0, err
	}
	if err = os.Rename(tmp, path); err != nil {
		return 0, err
	}
	if sync {
		if err = syncDir(filepath.Dir(path)); err != nil {
			return 0, err
		}
	}
	return cw.n, nil
}

// countingWriter counts bytes, feeds a running CRC and keeps the first error,
// so the column loop stays free of error plumbing.
type countingWriter struct {
	w   *bufio.Writer
	crc hash.Hash32
	n   int64
	err error
}

func (c *countingWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	_, c.err = c.w.Write(p)
	c.crc.Write(p)
	c.n += int64(len(p))
}
