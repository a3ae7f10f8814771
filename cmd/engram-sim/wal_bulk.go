package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"memento/walreplay"
)

// bulkSegments writes WAL segments for generate, which builds a data dir
// from scratch and needs no durability: unlike walreplay.Writer it never
// fsyncs. On ext4 an fsync commits the journal and writes back every dirty
// page of the transaction, so a Writer's per-rotation fsync made generate
// as slow as the disk (~130 MB/s here, less when the machine is busy)
// instead of as fast as the page cache. Entries are encoded by
// walreplay.AppendEntry and segments named by walreplay.SegmentName, with
// the Writer's rotation rule (start a new segment before an entry that
// would make the current one exceed max), so the output is what a Writer
// would have written; tests verify it with walreplay.Log.Verify.
type bulkSegments struct {
	dir  string
	max  int64
	f    *os.File
	bw   *bufio.Writer
	size int64
	buf  []byte
}

func newBulkSegments(dir string, max int64) *bulkSegments {
	return &bulkSegments{dir: dir, max: max}
}

func (s *bulkSegments) append(e *walreplay.Entry) error {
	n := e.Size()
	if s.f == nil || (s.size > 0 && s.size+n > s.max) {
		if err := s.close(); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(s.dir, walreplay.SegmentName(e.Seq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		s.f, s.size = f, 0
		if s.bw == nil {
			s.bw = bufio.NewWriterSize(f, 4<<20)
		} else {
			s.bw.Reset(f)
		}
	}
	s.buf = walreplay.AppendEntry(s.buf[:0], e)
	if _, err := s.bw.Write(s.buf); err != nil {
		return fmt.Errorf("segment %s: %w", s.f.Name(), err)
	}
	s.size += n
	return nil
}

// close flushes and closes the current segment, if any.
func (s *bulkSegments) close() error {
	if s.f == nil {
		return nil
	}
	err := s.bw.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("segment %s: %w", s.f.Name(), err)
	}
	s.f = nil
	return err
}
