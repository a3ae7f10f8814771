package walreplay

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/cpu"
)

// The state digest of kind "lthash16" (docs/engram-format.md, "State
// digest", version 2): a homomorphic multiset hash of the live records
// (LtHash, Bellare-Micciancio; the parameters of Facebook's LtHash16). Each
// live record's payload p maps to a vector of 1024 uint16 lanes; the state's
// accumulator is the lane-wise sum mod 2^16 of its records' vectors. Storing
// a record adds its vector, deleting subtracts it, and an update does both,
// so the accumulator is maintained in WAL order as the replay applies
// entries, with the bytes the walk already reads, and a resumed replay
// (Checkpoint) carries the 2 KiB accumulator instead of re-reading every
// live record in id order as the version-1 digest must.
//
// Element vector of payload p:
//
//	k = BLAKE3-256(p)
//	x = AES-256-CTR keystream of 2048 bytes under key k, initial counter
//	    block 16 zero bytes (the block is a big-endian 128-bit counter)
//	lane j (0..1023) = x[2j] | x[2j+1]<<8   (little-endian uint16)
//
// Digest = BLAKE3 derive_key(DigestKindLtHashContext, accumulator's 2048
// bytes, lanes little-endian in lane order), 32 bytes. The empty state is
// the all-zero accumulator. The context makes it a different function from
// the version-1 digest (BLAKE3 hash mode), so the two never agree.

// DigestKindLtHash names the version-2 state digest in snapshots
// (repo.EngramInfo.StateDigestKind). The version-1 digest has no name: an
// empty kind.
const DigestKindLtHash = "lthash16"

// DigestKindLtHashContext is the BLAKE3 derive_key context of the version-2
// digest's final hash.
const DigestKindLtHashContext = "memento 2026-12 engram state digest v2 lthash16"

// ltLanes and ltBytes: 1024 lanes of 16 bits, 2048 bytes.
const (
	ltLanes = 1024
	ltBytes = 2 * ltLanes
	ltWords = ltBytes / 8
)

// ltHash is an accumulator: the 1024 lanes packed four to a uint64 (lane
// 4w+k in bits 16k..16k+15 of word w), so that the byte image of the words
// in little-endian order is the lanes in little-endian order.
type ltHash [ltWords]uint64

// hi16 holds the top bit of each 16-bit lane.
const hi16 = 0x8000800080008000

// add adds v to h lane-wise mod 2^16 (SWAR: the low 15 bits of each lane
// are added with no carry across lanes, the top bits by xor).
func (h *ltHash) add(v *ltHash) {
	for i := range h {
		a, b := h[i], v[i]
		h[i] = ((a &^ hi16) + (b &^ hi16)) ^ ((a ^ b) & hi16)
	}
}

// sub subtracts v from h lane-wise mod 2^16 (SWAR: with each lane's top bit
// of a set and of b cleared, no lane borrows from its neighbour; the top
// bits are then fixed by xor).
func (h *ltHash) sub(v *ltHash) {
	for i := range h {
		a, b := h[i], v[i]
		h[i] = ((a | hi16) - (b &^ hi16)) ^ ((a ^ ^b) & hi16)
	}
}

// bytes returns h's byte image: lanes in order, each little-endian.
func (h *ltHash) bytes() []byte {
	b := make([]byte, 0, ltBytes)
	for _, w := range h {
		b = le.AppendUint64(b, w)
	}
	return b
}

// setBytes loads h from its byte image.
func (h *ltHash) setBytes(b []byte) {
	for i := range h {
		h[i] = le.Uint64(b[8*i:])
	}
}

// sum returns the digest of the accumulator.
func (h *ltHash) sum() [32]byte {
	var d [32]byte
	blake3.DeriveKey(DigestKindLtHashContext, h.bytes(), d[:])
	return d
}

// ltExpander computes element vectors, reusing its buffers.
type ltExpander struct {
	zero, x [ltBytes]byte
	v       ltHash
}

// add adds the element vector of payload p to h.
func (x *ltExpander) add(h *ltHash, p []byte) { x.accum(h, p, false) }

// sub subtracts the element vector of payload p from h.
func (x *ltExpander) sub(h *ltHash, p []byte) { x.accum(h, p, true) }

// accum adds (sub: subtracts) the element vector of p to h: with AES-NI
// straight into h's lanes (ltAccumAES: no allocation, no buffer), else
// through crypto/aes (expandKey).
func (x *ltExpander) accum(h *ltHash, p []byte, sub bool) {
	k := blake3.Sum256(p)
	x.accumKey(h, &k, sub)
}

// accumKey adds (sub: subtracts) the element vector of BLAKE3-256 digest k
// to h.
func (x *ltExpander) accumKey(h *ltHash, k *[32]byte, sub bool) {
	if haveLtAccumAES && cpu.X86.HasAES {
		ltAccumAES(h, k, sub)
		return
	}
	v := x.expandKey(k)
	if sub {
		h.sub(v)
	} else {
		h.add(v)
	}
}

// expandKey returns the element vector of BLAKE3-256 digest k (valid until
// the next call): the AES-256-CTR keystream under k, through crypto/aes.
func (x *ltExpander) expandKey(k *[32]byte) *ltHash {
	b, err := aes.NewCipher(k[:])
	if err != nil { // cannot happen: the key is 32 bytes
		panic("walreplay: " + err.Error())
	}
	var iv [aes.BlockSize]byte
	cipher.NewCTR(b, iv[:]).XORKeyStream(x.x[:], x.zero[:])
	x.v.setBytes(x.x[:])
	return &x.v
}

// ltState is a State's version-2 digest, maintained as entries are applied.
type ltState struct {
	acc ltHash
	x   ltExpander
	buf []byte // old payloads read back (ltFlush)
	err error  // the first old payload that was not its record's

	// pending are the old payloads ltRemove left for ltFlush to read
	// together, and pids their records' ids, one after the other.
	pending []ltPending
	pids    []byte
	pbytes  int // the pending payloads' bytes
}

// ltPending is an old payload to subtract: n bytes at off in mapped block
// blk (a segment file, which is only appended to: the bytes stay), of the
// record whose id is pids[id0:id1].
type ltPending struct {
	blk, off, n uint32
	id0, id1    uint32
}

// ltBatch and ltBatchBytes bound the old payloads ltRemove leaves pending
// before they are read (ltFlush), in number and in bytes (the buffer they
// are read into): a day of 1,000 entries in a space reads them at once.
const (
	ltBatch      = 4096
	ltBatchBytes = 8 << 20
)

// TrackLtHash makes s maintain the version-2 digest (DigestKindLtHash) as
// entries are applied, so that DigestOf(DigestKindLtHash) costs no pass over
// the state. It must be called on an empty State, before any Apply or
// Replay; a State resumed from a Checkpoint takes the checkpoint's
// accumulator (ReplayResume resumes only from a checkpoint that has one).
// When ReplayResume is given a checkpoint it cannot resume from, it replays
// from the start and stops tracking: DigestOf then computes the digest over
// the live records, and Checkpoint.AdoptLtHash gives it to the next
// checkpoint.
func (s *State) TrackLtHash() error {
	if s.Len() != 0 || s.applied != 0 {
		return errors.New("walreplay: TrackLtHash on a State that already holds entries")
	}
	if s.lt == nil {
		s.lt = &ltState{}
	}
	return nil
}

// ltAdd adds the record p to the tracked digest.
func (s *State) ltAdd(p []byte) { s.lt.x.add(&s.lt.acc, p) }

// ltRemove subtracts slot i's record, of id, from the tracked digest. Its
// payload is read again, with pread when its segment is mapped (the pages
// of a segment the walk is done with were dropped), and checked to be a
// record of id: in a State resumed from a Checkpoint the payload lies where
// the checkpoint said, which DigestOf then reports stale when it is not.
// The reads of mapped payloads are left pending and done together
// (ltFlush), before anything reads the accumulator and before their block
// is unmapped: the sum does not depend on the order.
func (s *State) ltRemove(i uint32, id []byte) {
	lt := s.lt
	sl := &s.slots[i]
	if b := &s.blocks[sl.block]; b.mapped != 0 && sl.n <= 1<<20 && s.maps.file(int(b.mapped-1)) != nil {
		id0 := uint32(len(lt.pids))
		lt.pids = append(lt.pids, id...)
		lt.pending = append(lt.pending, ltPending{blk: sl.block, off: sl.off, n: sl.n, id0: id0, id1: uint32(len(lt.pids))})
		if lt.pbytes += int(sl.n); len(lt.pending) >= ltBatch || lt.pbytes >= ltBatchBytes {
			s.ltFlush()
		}
		return
	}
	s.ltSub(s.payload(i), id)
}

// ltSub subtracts the old payload p of the record id from the tracked
// digest, or notes that p is not a record of id.
func (s *State) ltSub(p, id []byte) {
	lt := s.lt
	if !idMatches(p, string(id)) {
		if lt.err == nil {
			lt.err = ErrCheckpointStale
		}
		return
	}
	lt.x.sub(&lt.acc, p)
}

// ltFlush reads the old payloads ltRemove left pending, together (the
// State's BatchReader, or a pread each), in the order they lie in the segments, and subtracts them.
// A payload that cannot be read so is read through its block's map.
func (s *State) ltFlush() {
	lt := s.lt
	if lt == nil || len(lt.pending) == 0 {
		return
	}
	ps := lt.pending
	slices.SortFunc(ps, func(a, b ltPending) int {
		if a.blk != b.blk {
			return cmp.Compare(a.blk, b.blk)
		}
		return cmp.Compare(a.off, b.off)
	})
	total := 0
	for _, p := range ps {
		total += int(p.n)
	}
	if cap(lt.buf) < total {
		lt.buf = make([]byte, total)
	}
	buf := lt.buf[:total]
	rs := make([]ReadAt, len(ps))
	at := 0
	for k, p := range ps {
		rs[k] = ReadAt{File: s.maps.file(int(s.blocks[p.blk].mapped - 1)), Off: int64(p.off), Buf: buf[at : at+int(p.n) : at+int(p.n)]}
		at += int(p.n)
	}
	read := s.readBatch
	if read == nil {
		read = preadAll
	}
	if !read(rs) {
		lt.buf = nil // the kernel may still write into it: the reader keeps it
		for k := range rs {
			rs[k].OK = false
		}
	}
	for k, p := range ps {
		data := rs[k].Buf
		if !rs[k].OK {
			data = s.blocks[p.blk].b[p.off : p.off+p.n]
		}
		s.ltSub(data, lt.pids[p.id0:p.id1])
	}
	lt.pending, lt.pids, lt.pbytes = ps[:0], lt.pids[:0], 0
}

// ltScratch computes the version-2 accumulator of the live records with one
// pass over them in the order they lie in the arena and the segments (the
// sum does not depend on the order). Records in a mapped segment are read
// with pread, one read of up to ltSpan bytes for a run of neighbouring
// records (the dead bytes between them included): sequential reads, not one
// pread per record as the version-1 digest's id order needs, and no page of
// the map touched, so the pass adds nothing to the resident set. Each
// payload is checked to start with its record's id (ErrCheckpointStale
// otherwise), as DigestVerified does. Because the sum commutes, a large
// state is split in two halves summed on two cores (version 1's single hash
// stream could not be), which halves the pass's wall time at the end of a
// backup's replay.
func (s *State) ltScratch() (ltHash, error) {
	s.materialize()
	order := make([]ltRec, 0, len(s.ids))
	for id, i := range s.ids {
		sl := &s.slots[i]
		order = append(order, ltRec{id: id, at: uint64(sl.block)<<32 | uint64(sl.off), i: i})
	}
	slices.SortFunc(order, func(a, b ltRec) int { return cmp.Compare(a.at, b.at) })
	parts := 1
	if len(order) >= ltParallel && runtime.GOMAXPROCS(0) >= 2 {
		parts = 2
	}
	type result struct {
		acc  ltHash
		left []ltRec
		err  error
	}
	res := make([]result, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			r := &res[p]
			r.acc, r.left, r.err = s.ltRun(order[p*len(order)/parts : (p+1)*len(order)/parts])
		})
	}
	wg.Wait()
	var acc ltHash
	var x ltExpander
	for p := range res {
		if res[p].err != nil {
			return acc, res[p].err
		}
		acc.add(&res[p].acc)
		// What could not be read with pread, as it lies (through the map,
		// whose pages touch accounts for): one goroutine only.
		for _, r := range res[p].left {
			s.touch(r.i)
			pl := s.payload(r.i)
			if !idMatches(pl, r.id) {
				return acc, ErrCheckpointStale
			}
			x.add(&acc, pl)
		}
	}
	return acc, nil
}

// ltRec is a live record for ltScratch: its id, where it lies (its slot's
// block and offset, block first: the sort's key, kept beside the id so the
// sort compares integers instead of reading two slots of the whole slot
// array per comparison: 0.13 s of a first backup of 16 spaces of 700-byte
// records, docs/benchmarks.md, "Issue 18, session 24") and its slot.
type ltRec struct {
	id string
	at uint64
	i  uint32
}

// ltParallel is the number of live records from which ltScratch uses two
// goroutines.
const ltParallel = 4096

// ltRun sums the records of order (in storage order) that can be read with
// pread and returns the others (copied records, or in a segment whose
// descriptor is not kept) for the caller. It only reads s, so two run at
// once.
func (s *State) ltRun(order []ltRec) (acc ltHash, left []ltRec, err error) {
	var x ltExpander
	var buf []byte
	var pays [][]byte   // the payloads of a run, hashed together (b3Many)
	var keys [][32]byte // their BLAKE3-256
	for k := 0; k < len(order); {
		sl := &s.slots[order[k].i]
		var f *os.File
		if s.maps != nil && s.blocks[sl.block].mapped != 0 {
			f = s.maps.file(int(s.blocks[sl.block].mapped - 1))
		}
		// The run of records k..e-1 in the same block within ltSpan bytes.
		start, end, e := int64(sl.off), int64(sl.off)+int64(sl.n), k+1
		for f != nil && e < len(order) {
			nx := &s.slots[order[e].i]
			nend := int64(nx.off) + int64(nx.n)
			if nx.block != sl.block || nend-start > ltSpan {
				break
			}
			end, e = nend, e+1
		}
		if f == nil || end-start > ltSpan {
			left = append(left, order[k])
			k++
			continue
		}
		if buf == nil {
			buf = make([]byte, ltSpan)
		}
		if _, err := f.ReadAt(buf[:end-start], start); err != nil {
			left = append(left, order[k:e]...)
			k = e
			continue
		}
		pays = pays[:0]
		for _, r := range order[k:e] {
			q := &s.slots[r.i]
			p := buf[int64(q.off)-start : int64(q.off)-start+int64(q.n)]
			if !idMatches(p, r.id) {
				return acc, nil, ErrCheckpointStale
			}
			pays = append(pays, p)
		}
		if cap(keys) < len(pays) {
			keys = make([][32]byte, len(pays))
		}
		keys = keys[:len(pays)]
		b3Many(pays, keys)
		for i := range keys {
			x.accumKey(&acc, &keys[i], false)
		}
		k = e
	}
	return acc, left, nil
}

// ltSpan bounds one read of ltScratch.
const ltSpan = 1 << 20

// DigestOf returns the state digest of the given kind: "" is the version-1
// Digest (DigestVerified's checks included), DigestKindLtHash version 2.
// Version 2 of a State that tracks it (TrackLtHash) is the accumulator's
// hash and fails with ErrCheckpointStale when a record an update or delete
// removed was not where a checkpoint said; otherwise it is computed with one
// pass over the live records in storage order (ltScratch, which checks each
// payload's id like DigestVerified), after which the State tracks it.
// Another kind is an error.
func (s *State) DigestOf(kind string) ([32]byte, error) {
	switch kind {
	case "":
		return s.DigestVerified()
	case DigestKindLtHash:
		if s.lt != nil {
			s.ltFlush()
			if s.lt.err != nil {
				return [32]byte{}, s.lt.err
			}
			return s.lt.acc.sum(), nil
		}
		acc, err := s.ltScratch()
		if err != nil {
			return [32]byte{}, err
		}
		s.lt = &ltState{acc: acc}
		return s.lt.acc.sum(), nil
	}
	return [32]byte{}, fmt.Errorf("walreplay: unknown state digest kind %q", kind)
}

// KnownDigestKind reports whether kind names a state digest this package
// computes ("" is version 1).
func KnownDigestKind(kind string) bool { return kind == "" || kind == DigestKindLtHash }

// DigestKindName names a state digest kind in messages: "v1" for the
// version-1 digest (no kind), else the kind.
func DigestKindName(kind string) string {
	if kind == "" {
		return "v1"
	}
	return kind
}

// AdoptLtHash gives c, the checkpoint ReplayResume made of s, the version-2
// accumulator s computed after the replay (DigestOf from scratch), so that
// the next replay resumes with it. It does nothing when c already has one or
// s has none (or a stale one).
func (c *Checkpoint) AdoptLtHash(s *State) {
	if c == nil || c.lt != nil || s.lt == nil {
		return
	}
	if s.ltFlush(); s.lt.err != nil {
		return
	}
	acc := s.lt.acc
	c.lt = &acc
}
