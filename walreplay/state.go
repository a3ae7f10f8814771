package walreplay

import (
	"fmt"
	"math"
	"slices"

	"github.com/zeebo/blake3"
)

// arenaBlock is the size of the blocks that hold record payloads. Payloads
// are packed into big pointer-free blocks instead of one allocation each: a
// million 3 KiB records are then ~800 blocks the GC never scans, not a
// million objects, and a replay does ~1 allocation per 1,300 entries.
const arenaBlock = 4 << 20

// bigPayload payloads get a block of their own, so a 64 MiB record neither
// wastes the tail of a shared block nor lingers after it is deleted.
const bigPayload = arenaBlock / 4

// block is one region payloads live in: an arena allocation shared by many
// small payloads, one dedicated to a big payload, or (zero-copy replay) a
// read-only memory map of a segment file. A block whose last live payload
// dies is released at once unless it is the shared block being filled.
type block struct {
	b         []byte
	dedicated bool  // holds one big payload
	mapped    int32 // index+1 into maps when the block is a memory map
	seg       int32 // index+1 of the log segment a memory map is of (Checkpoint)
	refs      int32 // live slots pointing into the block
}

// slot locates one live record's payload in the arena and remembers the entry
// that last wrote it (compaction keeps that entry's sequence and timestamp).
type slot struct {
	block uint32
	off   uint32
	n     uint32 // payload length; 0 marks a free slot
	ts    int64
	seq   uint64
}

// State is the replayed content of one space: id -> memory record.
//
// Records are stored as their encoded payloads (the exact bytes the digest
// hashes), packed in an arena; Get decodes on demand. Overwritten and deleted
// payloads become garbage that is reclaimed by rewriting the arena once the
// garbage outweighs the live bytes, so memory stays within ~2x the live data.
// A State is not safe for concurrent use.
type State struct {
	ids     map[string]uint32 // id -> index into slots
	slots   []slot
	free    []uint32 // indices of free slots
	blocks  []block  // arena
	cur     int      // index of the shared block being filled, -1 if none
	live    int64    // bytes of live payloads
	garbage int64    // bytes of dead payloads still in shared blocks

	lastSeq uint64
	lastTS  int64
	applied int64

	zeroCopy bool      // Log.Replay may reference mapped segments
	maps     *mappings // the memory maps, shared with the GC cleanup
	touched  int64     // mapped bytes touched since pages were last dropped (touch)

	// resumeSeg and resumeBlk: a resumed State (resume.go) has already
	// mapped segment resumeSeg-1 as block resumeBlk for the walk to go on
	// reading it; resumed marks a State loaded from a Checkpoint.
	resumeSeg int
	resumeBlk int
	resumed   bool

	lt *ltState // the version-2 digest, when tracked (TrackLtHash)
	// readBatch reads the old payloads ltFlush subtracts (SetBatchReader);
	// nil: one pread each.
	readBatch BatchReader

	// base, in a State resumed from a sorted Checkpoint, holds the
	// checkpoint's records the replay has not touched (resume.go): a record
	// moves into ids and slots when an entry updates or deletes it
	// (lookup), or all of them at once when a method needs the whole map
	// (materialize).
	base *ckBase

	slotGrowths int // times slots was grown by append (tests: reserve)
}

// NewState returns an empty state.
func NewState() *State { return &State{ids: make(map[string]uint32), cur: -1} }

// reserve makes room for about n records more than s holds now (its slots,
// and its id map, rebuilt with that hint), so that a replay that knows how
// much WAL is left does not grow them by doubling: each growth of the slots
// copied them into fresh memory (page faults) and each of the map rehashed
// every id; a first backup of 16 spaces of small records (700 B) spent
// 0.3 s of CPU in the slots' growth alone (docs/benchmarks.md, "Issue 18,
// session 22").
func (s *State) reserve(n int) {
	if n <= 0 {
		return
	}
	s.materialize()
	s.slots = slices.Grow(s.slots, n)
	ids := make(map[string]uint32, len(s.ids)+n)
	for id, i := range s.ids {
		ids[id] = i
	}
	s.ids = ids
}

// Len returns the number of live records.
func (s *State) Len() int {
	if s.base != nil {
		return len(s.ids) + s.base.n
	}
	return len(s.ids)
}

// Bytes returns the total size of the live records' payloads.
func (s *State) Bytes() int64 { return s.live }

// Applied returns how many entries Apply has accepted.
func (s *State) Applied() int64 { return s.applied }

// LastSeq and LastTimestamp describe the last entry applied (0 if none).
func (s *State) LastSeq() uint64      { return s.lastSeq }
func (s *State) LastTimestamp() int64 { return s.lastTS }

// Apply applies one entry: types 1 and 2 set state[id], type 3 deletes id
// (no-op when absent), type 4 does nothing. It validates the payload and
// returns an error wrapping ErrCorrupt when it is malformed, leaving the
// state unchanged. It does not check sequence order; Log does. Apply copies
// what it keeps, so e.Payload may be reused afterwards.
func (s *State) Apply(e *Entry) error {
	if err := s.apply(e); err != nil {
		return fmt.Errorf("seq %d: %w: %w", e.Seq, ErrCorrupt, err)
	}
	return nil
}

// apply is Apply with the payload error returned bare, for callers that
// wrap it in a CorruptError.
func (s *State) apply(e *Entry) error {
	id, err := checkPayload(e.Type, e.Payload)
	if err != nil {
		return err
	}
	switch e.Type {
	case EpisodeStore, MemoryUpdate:
		s.set(id, e, -1, 0)
	case MemoryDelete:
		s.del(id)
	}
	s.lastSeq, s.lastTS = e.Seq, e.TimestampNS
	s.applied++
	return nil
}

// set stores e's record under id. With mblk >= 0 the payload is referenced
// where it lies, in mapped block mblk at offset moff, instead of copied.
func (s *State) set(id []byte, e *Entry, mblk int, moff uint32) {
	p := e.Payload
	i, ok := s.lookup(id)
	if s.lt != nil {
		if ok {
			s.ltRemove(i, id)
		}
		s.ltAdd(p)
	}
	if ok {
		sl := &s.slots[i]
		blk := &s.blocks[sl.block]
		if mblk < 0 && len(p) <= int(sl.n) && blk.mapped == 0 {
			// Overwrite in place: updates usually keep their size.
			copy(blk.b[sl.off:], p)
			if !blk.dedicated {
				s.garbage += int64(sl.n) - int64(len(p))
			}
			s.live += int64(len(p)) - int64(sl.n)
			sl.n, sl.seq, sl.ts = uint32(len(p)), e.Seq, e.TimestampNS
			return
		}
		s.release(sl)
	} else {
		i = s.newSlot()
		s.ids[string(id)] = i
	}
	var blk, off uint32
	if mblk >= 0 {
		blk, off = uint32(mblk), moff
		s.blocks[mblk].refs++
	} else {
		blk, off = s.store(p)
	}
	s.slots[i] = slot{block: blk, off: off, n: uint32(len(p)), seq: e.Seq, ts: e.TimestampNS}
	s.live += int64(len(p))
	s.maybeRepack()
}

// newSlot returns the index of a free slot.
func (s *State) newSlot() uint32 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i
	}
	if len(s.slots) == cap(s.slots) {
		s.slotGrowths++
	}
	s.slots = append(s.slots, slot{})
	return uint32(len(s.slots) - 1)
}

// lookup returns the slot of id, moving its record out of the base first
// when it is there (no allocation for a lookup in the map).
func (s *State) lookup(id []byte) (uint32, bool) {
	if i, ok := s.ids[string(id)]; ok || s.base == nil {
		return i, ok
	}
	return s.promote(id)
}

func (s *State) del(id []byte) {
	i, ok := s.lookup(id)
	if !ok {
		return
	}
	if s.lt != nil {
		s.ltRemove(i, id)
	}
	delete(s.ids, string(id))
	s.release(&s.slots[i])
	s.slots[i] = slot{}
	s.free = append(s.free, i)
	s.maybeRepack()
}

// release accounts a slot's payload as dead.
func (s *State) release(sl *slot) {
	s.live -= int64(sl.n)
	blk := &s.blocks[sl.block]
	blk.refs--
	switch {
	case blk.mapped != 0:
		if blk.refs == 0 {
			s.ltFlush() // pending old payloads may lie in it
			s.maps.unmap(int(blk.mapped - 1))
			blk.b, blk.mapped = nil, 0
		}
	case blk.dedicated:
		if blk.refs == 0 {
			blk.b = nil // a block of its own: free it now
		}
	default:
		s.garbage += int64(sl.n)
	}
}

// store copies p into the arena and returns where it went.
func (s *State) store(p []byte) (blk, off uint32) {
	if len(p) >= bigPayload {
		s.blocks = append(s.blocks, block{b: append(make([]byte, 0, len(p)), p...), dedicated: true, refs: 1})
		return uint32(len(s.blocks) - 1), 0
	}
	if s.cur < 0 || arenaBlock-len(s.blocks[s.cur].b) < len(p) {
		s.blocks = append(s.blocks, block{b: make([]byte, 0, arenaBlock)})
		s.cur = len(s.blocks) - 1
	}
	b := &s.blocks[s.cur]
	off = uint32(len(b.b))
	b.b = append(b.b, p...)
	b.refs++
	return uint32(s.cur), off
}

// maybeRepack rewrites the arena once dead bytes outweigh live ones (and are
// worth at least a few blocks), bounding memory to about twice the live
// data. Mapped blocks are kept as they are (their pages belong to the page
// cache, and they are unmapped when their last record dies).
func (s *State) maybeRepack() {
	if s.garbage < 8*arenaBlock || s.garbage < s.live {
		return
	}
	// Mapped blocks keep their index (replay holds it while reading a
	// segment); arena blocks are dropped and live payloads re-stored in new
	// blocks appended after them.
	old := make([]block, len(s.blocks))
	copy(old, s.blocks)
	for i := range s.blocks {
		if s.blocks[i].mapped == 0 {
			s.blocks[i] = block{}
		}
	}
	s.cur = -1
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.n == 0 || old[sl.block].mapped != 0 {
			continue
		}
		p := old[sl.block].b[sl.off : sl.off+sl.n]
		sl.block, sl.off = s.store(p)
	}
	s.garbage = 0
}

// payload returns the stored payload of slot i (aliasing the arena).
func (s *State) payload(i uint32) []byte {
	sl := &s.slots[i]
	return s.blocks[sl.block].b[sl.off : sl.off+sl.n : sl.off+sl.n]
}

// Payload returns the encoded record of id (the type-1 payload bytes). The
// slice aliases the state and is valid until the next Apply.
func (s *State) Payload(id string) ([]byte, bool) {
	s.materialize()
	i, ok := s.ids[id]
	if !ok {
		return nil, false
	}
	return s.payload(i), true
}

// Get returns the decoded record of id.
func (s *State) Get(id string) (Record, bool) {
	p, ok := s.Payload(id)
	if !ok {
		return Record{}, false
	}
	r, err := DecodeRecord(p)
	if err != nil { // cannot happen: Apply validated it
		panic("walreplay: stored record does not decode: " + err.Error())
	}
	return r, true
}

// Written returns the sequence and timestamp of the entry that last wrote id.
func (s *State) Written(id string) (seq uint64, ts int64, ok bool) {
	s.materialize()
	i, ok := s.ids[id]
	if !ok {
		return 0, 0, false
	}
	return s.slots[i].seq, s.slots[i].ts, true
}

// sortedIDs returns the live ids in ascending bytewise order (Go compares
// strings bytewise, which is the order the digest is defined in).
func (s *State) sortedIDs() []string {
	s.materialize()
	ids := make([]string, 0, len(s.ids))
	for id := range s.ids {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Each calls fn for every live record in ascending id order, with its
// payload (aliasing the state), stopping at the first error.
func (s *State) Each(fn func(id string, payload []byte) error) error {
	for _, id := range s.sortedIDs() {
		i := s.ids[id]
		s.touch(i)
		if err := fn(id, s.payload(i)); err != nil {
			return err
		}
	}
	return nil
}

// Digest is BLAKE3-256 over the concatenation of every live record's payload
// in ascending bytewise order of id; the empty state hashes nothing. Because
// a payload starts with its length-prefixed id, the concatenation is
// unambiguous.
func (s *State) Digest() [32]byte {
	d, _ := s.digest(false)
	return d
}

// digest is Digest; with check it also verifies that each payload starts
// with its id (DigestVerified).
func (s *State) digest(check bool) ([32]byte, error) {
	s.materialize()
	// Records are a few KiB; BLAKE3 hashes 16 KiB and more in parallel SIMD
	// lanes, so gather them into large blocks instead of feeding each alone.
	h := blake3.New()
	buf := make([]byte, 0, 256<<10)
	var d [32]byte
	for _, id := range s.sortedIDs() {
		i := s.ids[id]
		n := int(s.slots[i].n)
		if len(buf)+n > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		if n <= cap(buf) && s.readPayload(i, buf[len(buf):len(buf)+n]) {
			if check && !idMatches(buf[len(buf):len(buf)+n], id) {
				return d, ErrCheckpointStale
			}
			buf = buf[:len(buf)+n]
			continue
		}
		s.touch(i)
		p := s.payload(i)
		if check && !idMatches(p, id) {
			return d, ErrCheckpointStale
		}
		if len(p) > cap(buf) {
			h.Write(p)
			continue
		}
		buf = append(buf, p...)
	}
	h.Write(buf)
	h.Sum(d[:0])
	return d, nil
}

// ConfidenceHistogram counts live records by confidence in buckets equal
// slices of [0, 1]: bucket i holds [i/buckets, (i+1)/buckets), the last one
// also 1. Values below 0 (and NaN) count in the first bucket, above 1 in the
// last, so the counts always sum to Len.
func (s *State) ConfidenceHistogram(buckets int) []int {
	if buckets <= 0 {
		return nil
	}
	s.materialize()
	h := make([]int, buckets)
	for _, i := range s.ids {
		s.touch(i)
		p := s.payload(i)
		c := math.Float32frombits(le.Uint32(p[2+int(le.Uint16(p)):]))
		b := 0
		if c >= 1 {
			b = buckets - 1
		} else if c > 0 {
			b = min(int(float64(c)*float64(buckets)), buckets-1)
		}
		h[b]++
	}
	return h
}
