package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"memento/engram"
	"memento/walreplay"
)

// Validation of a space's tier files for serve. The simulator writes the
// tiers from its own formats (hot.go, warm.go, cold.go); their content is
// not derived from the WAL (generate fills them with synthetic records), so
// what can be checked is their structure and checksums, which is what a
// real database checks when it opens them:
//
//   - hot: memtable.bin parses exactly ("EHOT", count, entries, each record a
//     valid WAL v1 memory record); recent_ids.json and stats.json are the
//     JSON objects hot.go writes. Missing hot files are fine (a space that
//     has not checkpointed yet).
//   - warm: warm_tier.dat is a whole number of 4 KiB pages; in full mode
//     every page is free (all zero) or has the magic, its own page number,
//     kind 1, a payload length that fits, a matching CRC32C and a payload
//     that decodes as a memory record. A missing page file is fine.
//   - cold: every seg-<n>.col has the magic at both ends, version 1, six
//     columns laid end to end between header and footer, the sizes the row
//     count implies; in full mode every column's CRC32C matches and the
//     variable-length columns (ids, contents) parse to their exact length.
//     Temporary files (*.tmp) a crashed writer left are ignored.

// Tier check modes (--tier-check).
const (
	tierCheckFull  = "full"  // structure and every checksum
	tierCheckQuick = "quick" // structure only: headers, footers, sizes; hot files in full
	tierCheckOff   = "off"   // tiers not looked at
)

// tierError locates a damaged tier file: the path relative to the data dir
// and, when known, the byte offset of the damage.
type tierError struct {
	File   string // relative to the data dir, with slashes
	Offset int64  // -1 when not applicable
	Reason string
}

func (e *tierError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("%s offset %d: %s", e.File, e.Offset, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// checkTiers validates the hot, warm and cold files of space id.
func checkTiers(dataDir, id, mode string) error {
	if mode == tierCheckOff {
		return nil
	}
	full := mode == tierCheckFull
	if err := checkHot(dataDir, id); err != nil {
		return err
	}
	if err := checkWarm(dataDir, id, full); err != nil {
		return err
	}
	return checkColdDir(dataDir, id, full)
}

// relPath names a file of space id relative to the data dir.
func relPath(id string, parts ...string) string {
	return engram.SpaceRel(id) + "/" + filepath.ToSlash(filepath.Join(parts...))
}

func tierErr(file string, off int64, format string, a ...any) error {
	return &tierError{File: file, Offset: off, Reason: fmt.Sprintf(format, a...)}
}

// readOptional reads a file that may be missing (nil, nil).
func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func checkHot(dataDir, id string) error {
	hd := engram.HotDir(dataDir, id)
	rel := func(n string) string { return relPath(id, engram.HotName, n) }

	b, err := readOptional(filepath.Join(hd, engram.HotMemtable))
	if err != nil {
		return err
	}
	if b != nil {
		if err := checkMemtable(b, rel(engram.HotMemtable)); err != nil {
			return err
		}
	}

	b, err = readOptional(filepath.Join(hd, engram.HotRecent))
	if err != nil {
		return err
	}
	if b != nil {
		var doc struct {
			UpdatedNS *int64    `json:"updated_ns"`
			IDs       *[]string `json:"ids"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return tierErr(rel(engram.HotRecent), -1, "%v", err)
		}
		if doc.UpdatedNS == nil || doc.IDs == nil {
			return tierErr(rel(engram.HotRecent), -1, `not {"updated_ns": T, "ids": [...]}`)
		}
	}

	b, err = readOptional(filepath.Join(hd, engram.HotStats))
	if err != nil {
		return err
	}
	if b != nil {
		var doc struct {
			Sequence    *uint64 `json:"sequence"`
			TimestampNS *int64  `json:"timestamp_ns"`
			LiveRecords *int    `json:"live_records"`
			Entries     *uint64 `json:"entries"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return tierErr(rel(engram.HotStats), -1, "%v", err)
		}
		if doc.Sequence == nil || doc.TimestampNS == nil || doc.LiveRecords == nil || doc.Entries == nil {
			return tierErr(rel(engram.HotStats), -1, `not {"sequence": C, "timestamp_ns": T, "live_records": n, "entries": n}`)
		}
	}
	return nil
}

// checkMemtable parses memtable.bin: "EHOT" | u32 count | count x (u64 seq |
// i64 ts | u32 len | record), nothing after.
func checkMemtable(b []byte, name string) error {
	le := binary.LittleEndian
	if len(b) < 8 || string(b[:4]) != "EHOT" {
		return tierErr(name, 0, "bad magic (want \"EHOT\" and a count)")
	}
	n := le.Uint32(b[4:])
	off := 8
	for i := range n {
		if len(b)-off < 20 {
			return tierErr(name, int64(off), "entry %d of %d: truncated header", i, n)
		}
		l := int(le.Uint32(b[off+16:]))
		if len(b)-off-20 < l {
			return tierErr(name, int64(off), "entry %d of %d: record of %d bytes runs past the end of the file", i, n, l)
		}
		if _, err := walreplay.DecodeRecord(b[off+20 : off+20+l]); err != nil {
			return tierErr(name, int64(off), "entry %d of %d: %v", i, n, err)
		}
		off += 20 + l
	}
	if off != len(b) {
		return tierErr(name, int64(off), "%d bytes after the last of %d entries", len(b)-off, n)
	}
	return nil
}

func checkWarm(dataDir, id string, full bool) error {
	path := engram.WarmPath(dataDir, id)
	name := relPath(id, engram.WarmName, engram.WarmFileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return tierErr(name, -1, "not a regular file")
	}
	if rem := fi.Size() % pageSize; rem != 0 {
		return tierErr(name, fi.Size()-rem, "size %d is not a whole number of %d-byte pages", fi.Size(), pageSize)
	}
	if !full {
		return nil
	}
	r := bufio.NewReaderSize(f, 1<<20)
	page := make([]byte, pageSize)
	for n := int64(0); n < fi.Size()/pageSize; n++ {
		if _, err := io.ReadFull(r, page); err != nil {
			return fmt.Errorf("%s: read page %d: %w", name, n, err)
		}
		if err := checkWarmPageBytes(page, uint32(n)); err != "" {
			return tierErr(name, n*pageSize, "page %d: %s", n, err)
		}
	}
	return nil
}

var zeroPage = make([]byte, pageSize)

// checkWarmPageBytes validates page n; it returns the problem, or "".
func checkWarmPageBytes(page []byte, n uint32) string {
	if bytes.Equal(page, zeroPage) {
		return ""
	}
	le := binary.LittleEndian
	switch {
	case string(page[:4]) != warmMagic:
		return fmt.Sprintf("bad magic % x (want %q or a free all-zero page)", page[:4], warmMagic)
	case le.Uint32(page[4:]) != n:
		return fmt.Sprintf("header says page %d", le.Uint32(page[4:]))
	case le.Uint16(page[16:]) != 1:
		return fmt.Sprintf("kind %d (want 1)", le.Uint16(page[16:]))
	case int(le.Uint16(page[18:])) > warmMaxRecord:
		return fmt.Sprintf("payload length %d over %d", le.Uint16(page[18:]), warmMaxRecord)
	}
	c := crc32.Update(0, castagnoli, page[:20])
	if got, want := crc32.Update(c, castagnoli, page[24:]), le.Uint32(page[20:]); got != want {
		return fmt.Sprintf("crc mismatch (stored 0x%08x, computed 0x%08x)", want, got)
	}
	if _, err := walreplay.DecodeRecord(page[warmHeader : warmHeader+int(le.Uint16(page[18:]))]); err != nil {
		return "record: " + err.Error()
	}
	return ""
}

func checkColdDir(dataDir, id string, full bool) error {
	dir := engram.ColdDir(dataDir, id)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if _, ok := engram.ParseColdSegmentName(e.Name()); !ok {
			continue
		}
		if err := checkColdFile(filepath.Join(dir, e.Name()), relPath(id, engram.ColdName, e.Name()), full); err != nil {
			return err
		}
	}
	return nil
}

// checkColdFile validates one cold segment (layout in cold.go).
func checkColdFile(path, name string, full bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return tierErr(name, -1, "not a regular file")
	}
	size := fi.Size()
	le := binary.LittleEndian
	footLen := int64(coldColumns*20 + 8)
	if size < coldHeader+footLen {
		return tierErr(name, -1, "%d bytes, too short for a cold segment", size)
	}
	var hdr [coldHeader]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	foot := make([]byte, footLen)
	if _, err := f.ReadAt(foot, size-footLen); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case string(hdr[:4]) != coldMagic:
		return tierErr(name, 0, "bad magic % x (want %q)", hdr[:4], coldMagic)
	case le.Uint16(hdr[4:]) != 1:
		return tierErr(name, 4, "version %d (want 1)", le.Uint16(hdr[4:]))
	case le.Uint32(hdr[12:]) != coldColumns:
		return tierErr(name, 12, "%d columns (want %d)", le.Uint32(hdr[12:]), coldColumns)
	case string(foot[footLen-4:]) != coldMagic:
		return tierErr(name, size-4, "bad trailing magic % x (want %q)", foot[footLen-4:], coldMagic)
	case int64(le.Uint32(foot[footLen-8:])) != footLen:
		return tierErr(name, size-8, "footer length %d (want %d)", le.Uint32(foot[footLen-8:]), footLen)
	}
	dim, rows := int64(le.Uint16(hdr[6:])), int64(le.Uint32(hdr[8:]))
	type col struct {
		off, n int64
		crc    uint32
	}
	var cols [coldColumns]col
	end := int64(coldHeader)
	for k := range cols {
		c := col{int64(le.Uint64(foot[20*k:])), int64(le.Uint64(foot[20*k+8:])), le.Uint32(foot[20*k+16:])}
		if c.off != end || c.n < 0 || c.n > size-footLen-c.off {
			return tierErr(name, size-footLen+int64(20*k), "footer: column %d at offset %d length %d (want offset %d, within the file)", k, c.off, c.n, end)
		}
		cols[k] = c
		end = c.off + c.n
	}
	if end != size-footLen {
		return tierErr(name, end, "columns end at %d, the footer starts at %d", end, size-footLen)
	}
	for k, want := range map[int]int64{1: rows * 8, 2: rows * 8, 3: rows * 4, 5: rows * dim * 4} {
		if cols[k].n != want {
			return tierErr(name, cols[k].off, "column %d is %d bytes, %d rows need %d", k, cols[k].n, rows, want)
		}
	}
	if !full {
		return nil
	}
	for k, c := range cols {
		var b []byte
		if k == 0 || k == 4 {
			// Variable-length columns are parsed too; they are the small ones.
			b = make([]byte, c.n)
			if _, err := f.ReadAt(b, c.off); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if got := crc32.Checksum(b, castagnoli); got != c.crc {
				return tierErr(name, c.off, "column %d: crc mismatch (stored 0x%08x, computed 0x%08x)", k, c.crc, got)
			}
			lenSize := 2
			if k == 4 {
				lenSize = 4
			}
			if at, ok := parseLengthPrefixed(b, rows, lenSize); !ok {
				return tierErr(name, c.off+at, "column %d: %d length-prefixed rows do not fill the column exactly", k, rows)
			}
			continue
		}
		h := crc32.New(castagnoli)
		if _, err := io.Copy(h, io.NewSectionReader(f, c.off, c.n)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if got := h.Sum32(); got != c.crc {
			return tierErr(name, c.off, "column %d: crc mismatch (stored 0x%08x, computed 0x%08x)", k, c.crc, got)
		}
	}
	return nil
}

// parseLengthPrefixed checks that b is exactly rows values, each a
// little-endian length of lenSize bytes and that many bytes. On failure it
// returns the offset of the row that does not fit (or of the excess).
func parseLengthPrefixed(b []byte, rows int64, lenSize int) (int64, bool) {
	off := 0
	for range rows {
		if len(b)-off < lenSize {
			return int64(off), false
		}
		var l int
		if lenSize == 2 {
			l = int(binary.LittleEndian.Uint16(b[off:]))
		} else {
			l = int(binary.LittleEndian.Uint32(b[off:]))
		}
		if len(b)-off-lenSize < l {
			return int64(off), false
		}
		off += lenSize + l
	}
	return int64(off), off == len(b)
}
