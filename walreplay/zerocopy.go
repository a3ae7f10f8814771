package walreplay

import (
	"os"
	"runtime"
	"sync"
)

// Zero-copy replay. Copying every payload into the state costs one write of
// each payload byte to fresh memory, which on the reference machine (memory
// copy ~3 GB/s) caps replay of 3.3 KiB records near 500-800k entries/s. A
// zero-copy State instead maps each segment read-only and keeps records as
// references into the mapping, so the payloads live in the page cache
// (which the kernel can reclaim), not on the Go heap. A mapping is released
// as soon as no live record points into it, on Close, or when the State is
// garbage collected.
//
// The map is where records refer to, not how the replay reads: the walk
// reads each segment with pread into one reused buffer (checksumming it
// there) and only refers its records into the segment's map by offset, and
// the passes over the live records (Digest, the version-2 digest, ltRemove)
// read them back with pread from a descriptor kept per mapped segment. No
// page of a map is touched on those paths: checksumming through a fresh
// map cost a page fault per page (CRC32C at 2.9 GB/s on the reference VM,
// against 9.7 GB/s reading into a reused buffer; docs/benchmarks.md, issue
// 18 session 16), and the faulted pages had to be dropped again to bound
// the resident set. The map still holds the bytes of the records whose
// segment has no descriptor kept (at most maxPassFiles are, so a state over
// thousands of segments does not run out of descriptors) and serves
// Payload, Get, Each and ConfidenceHistogram.
//
// The price: the mapped segment files must not be truncated or rewritten
// in place while the State lives (reading a page cut off by a truncation
// raises SIGBUS). Appending, renaming and unlinking are safe, which is all
// Engram and this package's Writer and Compact do to sealed segments: the
// walk reads the descriptor it mapped, limited to the map's length, so the
// bytes it checked are the bytes its records refer to, whatever happens to
// the segment's name meanwhile.

// NewZeroCopyState returns an empty State that Log.Replay fills with
// references into memory-mapped segments instead of copies. Entries given
// to Apply directly are still copied. Call Close when done.
func NewZeroCopyState() *State {
	s := NewState()
	s.zeroCopy = true
	s.maps = &mappings{}
	runtime.AddCleanup(s, func(m *mappings) { m.unmapAll() }, s.maps)
	return s
}

// Close releases the State's memory maps; the State is empty afterwards.
// It is a no-op for a copying State's storage beyond clearing it. A State
// that tracked the version-2 digest (TrackLtHash) still does, from empty.
func (s *State) Close() error {
	if s.maps != nil {
		s.maps.unmapAll()
	}
	zc, maps, track := s.zeroCopy, s.maps, s.lt != nil
	*s = *NewState()
	s.zeroCopy, s.maps = zc, maps
	if track {
		s.lt = &ltState{}
	}
	return nil
}

// mappings tracks a State's memory maps so that they can be released
// individually, all at once, or by a GC cleanup that must not touch the
// State itself.
type mappings struct {
	mu      sync.Mutex
	regions [][]byte
	// files[i] is a duplicate of the descriptor regions[i] maps (or nil):
	// a pass over the whole state reads payloads with pread instead of
	// through the map (see Digest). Duplicated when the segment is mapped,
	// so it is the mapped file even if the segment is renamed or replaced
	// later, and at most maxPassFiles at a time, so that a state over
	// thousands of segments does not hold thousands of descriptors.
	files []*os.File
	open  int // non-nil entries of files
}

// maxPassFiles bounds the descriptors a State keeps for pread passes.
const maxPassFiles = 256

func (m *mappings) add(b []byte, f *os.File) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var dup *os.File
	if m.open < maxPassFiles {
		if dup = dupFile(f); dup != nil {
			m.open++
		}
	}
	m.regions = append(m.regions, b)
	m.files = append(m.files, dup)
	return len(m.regions) - 1
}

// file returns the descriptor of region i, or nil.
func (m *mappings) file(i int) *os.File {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.files[i]
}

func (m *mappings) unmap(i int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.release(i)
}

func (m *mappings) unmapAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.regions {
		m.release(i)
	}
}

// release unmaps region i and closes its descriptor; m.mu is held.
func (m *mappings) release(i int) {
	if b := m.regions[i]; b != nil {
		munmap(b)
		m.regions[i] = nil
	}
	if f := m.files[i]; f != nil {
		_ = f.Close()
		m.files[i] = nil
		m.open--
	}
}

// mapSegment maps up to size bytes of f read-only and registers the map as
// a block of s. It returns the block index, or -1 when the segment cannot
// (or need not) be mapped and replay should read and copy instead.
func (s *State) mapSegment(f *os.File, size int64, seg int) (int, []byte) {
	if !s.zeroCopy || size <= 0 || size > 1<<32-1 {
		return -1, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return -1, nil
	}
	size = min(size, fi.Size())
	if size <= 0 {
		return -1, nil
	}
	b, err := mmap(f, int(size))
	if err != nil {
		return -1, nil
	}
	mi := s.maps.add(b, f)
	// The walk over the segment holds one reference until doneWithMap: an
	// update or delete of a record stored earlier in the same segment must
	// not unmap the block the walk goes on referring records into.
	s.blocks = append(s.blocks, block{b: b, mapped: int32(mi + 1), seg: int32(seg + 1), refs: 1})
	return len(s.blocks) - 1, b
}

// doneWithMap drops the walk's reference to a mapped block and releases
// the block if no record references it either.
func (s *State) doneWithMap(blk int) {
	b := &s.blocks[blk]
	if b.mapped == 0 {
		return
	}
	b.refs--
	if b.refs == 0 {
		s.ltFlush() // pending old payloads may lie in it
		s.maps.unmap(int(b.mapped - 1))
		b.b, b.mapped = nil, 0
		return
	}
	// Records still point here. The walk touched no page, but a read
	// through the map (a record whose segment has no descriptor kept) may
	// have; those pages come back on use.
	dropPages(b.b)
}

// residentBudget bounds how many bytes of mapped payloads a pass over the
// whole state (Digest, Each, ConfidenceHistogram) keeps resident before it
// drops them again: the pass touches every live record once, so the resident
// set stays near this budget instead of growing to the size of the WAL.
const residentBudget = 64 << 20

// touch accounts for reading slot i's payload during a pass and drops the
// mapped pages once the budget is spent; copying States do nothing.
func (s *State) touch(i uint32) {
	if s.maps == nil || s.blocks[s.slots[i].block].mapped == 0 {
		return
	}
	// A fault on a file mapping maps more than the page it needs: 64 KiB of
	// fault-around, or a whole large folio (up to 2 MiB) on recent kernels.
	// Charge 1 MiB per access, measured to keep the resident set bounded.
	s.touched += int64(max(s.slots[i].n, 1<<20))
	if s.touched >= residentBudget {
		s.maps.dropAll()
		s.touched = 0
	}
}

// readPayload copies slot i's payload into dst (len(dst) == its length) with
// pread when its segment's descriptor is kept, and reports whether it did.
// A pass over every live record (Digest) visits them in id order, i.e. at
// random places in the segments: through the map each visit is a page fault
// plus the fault-around, and the pages must be dropped again to bound the
// resident set (touch), which made the digest of a 1 GiB data dir cost 0.3
// CPU seconds more than reading the same payloads with pread.
func (s *State) readPayload(i uint32, dst []byte) bool {
	if s.maps == nil {
		return false
	}
	sl := &s.slots[i]
	mapped := s.blocks[sl.block].mapped
	if mapped == 0 {
		return false
	}
	f := s.maps.file(int(mapped - 1))
	if f == nil {
		return false
	}
	_, err := f.ReadAt(dst, int64(sl.off))
	return err == nil
}

func (m *mappings) dropAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.regions {
		dropPages(b)
	}
}

// applyMapped is apply for an entry whose payload lies in mapped block blk
// at offset off: records are referenced, not copied.
func (s *State) applyMapped(e *Entry, blk int, off int64) error {
	id, err := checkPayload(e.Type, e.Payload)
	if err != nil {
		return err
	}
	switch e.Type {
	case EpisodeStore, MemoryUpdate:
		s.set(id, e, blk, uint32(off))
	case MemoryDelete:
		s.del(id)
	}
	s.lastSeq, s.lastTS = e.Seq, e.TimestampNS
	s.applied++
	return nil
}

// prefetch starts reading every mapped segment into the page cache.
func (m *mappings) prefetch() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, f := range m.files {
		if f != nil && m.regions[i] != nil {
			prefetchFile(f, int64(len(m.regions[i])))
		}
	}
}
