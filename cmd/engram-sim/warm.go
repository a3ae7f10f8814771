package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strings"
	"unicode/utf8"

	"memento/walreplay"
)

// The warm tier is a page file of 4 KiB pages rewritten in place: the file
// kind that defeats whole-file deduplication and that content-defined
// chunking must handle well. A page holds one memory record:
//
//	0   4  magic "EWP1"
//	4   4  page number (u32)
//	8   8  LSN: WAL sequence of the write the page reflects (u64)
//	16  2  kind: 0 free, 1 record
//	18  2  payload length
//	20  4  CRC32C of bytes 0..20 and 24..4096
//	24  .. payload: a WAL v1 memory record (embedding truncated to fit), zero padded
//
// A free page is 4096 zero bytes.
const (
	warmMagic     = "EWP1"
	warmHeader    = 24
	warmMaxRecord = pageSize - warmHeader
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeWarmPage fills page (len pageSize) with rec. The embedding and, if
// needed, the content are truncated so that the record fits one page.
func encodeWarmPage(page []byte, pageNo uint32, lsn uint64, rec *walreplay.Record) {
	clear(page)
	r := *rec
	fixed := 2 + len(r.ID) + 4 + 2 + 4
	if fixed+len(r.Content) > warmMaxRecord {
		r.Content = truncateUTF8(r.Content, warmMaxRecord-fixed)
	}
	if maxDim := (warmMaxRecord - fixed - len(r.Content)) / 4; len(r.Embedding) > maxDim {
		r.Embedding = r.Embedding[:maxDim]
	}
	p := walreplay.AppendRecord(page[warmHeader:warmHeader], &r)
	copy(page[0:4], warmMagic)
	binary.LittleEndian.PutUint32(page[4:], pageNo)
	binary.LittleEndian.PutUint64(page[8:], lsn)
	binary.LittleEndian.PutUint16(page[16:], 1)
	binary.LittleEndian.PutUint16(page[18:], uint16(len(p)))
	c := crc32.Update(0, castagnoli, page[:20])
	binary.LittleEndian.PutUint32(page[20:], crc32.Update(c, castagnoli, page[24:]))
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	// s[n] is the first byte cut off; if it continues a rune, cut that
	// rune off too.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// warmFreeShare is the share of free (all-zero) pages in a generated page
// file; real page files have some after deletes.
const warmFreeShare = 0.03

// randomRecord draws a synthetic memory record for the tiers, reusing emb,
// with content from text.
func randomRecord(r *rand.Rand, dim int, emb []float32, sb *strings.Builder, text func(*rand.Rand, *strings.Builder) string) walreplay.Record {
	emb = emb[:dim]
	fillNormal(r, emb)
	return walreplay.Record{ID: newMemoryID(r), Confidence: confidence(r), Embedding: emb, Content: text(r, sb)}
}

// generateWarm writes a page file of pages pages drawn from r, streaming
// through a large buffer; the profile sets the share of free pages and the
// records' text.
func generateWarm(path string, pages int, dim int, maxLSN uint64, r *rand.Rand, pr *profile) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 4<<20)
	page := make([]byte, pageSize)
	emb := make([]float32, dim)
	var sb strings.Builder
	for i := range pages {
		if r.Float64() < pr.warmFree {
			clear(page)
		} else {
			rec := randomRecord(r, dim, emb, &sb, pr.text)
			encodeWarmPage(page, uint32(i), 1+r.Uint64N(max(maxLSN, 1)), &rec)
		}
		if _, err := bw.Write(page); err != nil {
			f.Close()
			return fmt.Errorf("write %s page %d: %w", path, i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// warmTier is an open page file that run and mutate update in place with
// pwrite, the way a buffer pool flushes dirty pages at a checkpoint.
type warmTier struct {
	f     *os.File
	path  string
	pages uint32
	slot  map[string]uint32 // pages this process assigned to ids
	free  []uint32
	page  []byte
	// written counts page writes, for reporting.
	written int
}

func openWarm(path string) (*warmTier, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &warmTier{f: f, path: path, pages: uint32(fi.Size() / pageSize),
		slot: map[string]uint32{}, page: make([]byte, pageSize)}, nil
}

func (w *warmTier) Close() error { return w.f.Close() }

func (w *warmTier) Sync() error { return w.f.Sync() }

// writePage writes rec (or a free page when rec is nil) at page n.
func (w *warmTier) writePage(n uint32, lsn uint64, rec *walreplay.Record) error {
	if rec == nil {
		clear(w.page)
	} else {
		encodeWarmPage(w.page, n, lsn, rec)
	}
	if _, err := w.f.WriteAt(w.page, int64(n)*pageSize); err != nil {
		return fmt.Errorf("warm %s page %d: %w", w.path, n, err)
	}
	if n >= w.pages {
		w.pages = n + 1
	}
	w.written++
	return nil
}

// put writes the latest version of a record. A record this process placed
// before is rewritten in its page; an update of a record placed by someone
// else (a generated dir) goes to the page its id hashes to, so it too is an
// in-place rewrite; a new record takes a free page or grows the file.
func (w *warmTier) put(rec *walreplay.Record, lsn uint64, isNew bool) error {
	n, ok := w.slot[rec.ID]
	switch {
	case ok:
	case !isNew && w.pages > 0:
		// Not recorded in slot: other ids may hash to the same page.
		return w.writePage(hashPage(rec.ID, w.pages), lsn, rec)
	case len(w.free) > 0:
		n = w.free[len(w.free)-1]
		w.free = w.free[:len(w.free)-1]
	default:
		n = w.pages
	}
	w.slot[rec.ID] = n
	return w.writePage(n, lsn, rec)
}

// del frees the page of a deleted record, when this process knows it.
func (w *warmTier) del(id string) error {
	n, ok := w.slot[id]
	if !ok {
		return nil
	}
	delete(w.slot, id)
	w.free = append(w.free, n)
	return w.writePage(n, 0, nil)
}

func hashPage(id string, pages uint32) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32() % pages
}
