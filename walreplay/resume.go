package walreplay

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/zeebo/blake3"
)

// Resumable replay. A replay of a whole log reads and checksums every
// segment (a 1 GiB data dir's three spaces hold ~490 MB of WAL) although a
// day of activity only appends to it. A Checkpoint saves where a zero-copy
// replay ended and which record lives where (id, segment, offset, length),
// so that the next replay of the same log, grown by appends, loads that
// state and reads only what was appended. The payloads stay in the segment
// files: a pass over the state (Digest) still reads every live record; the
// version-2 digest (lthash.go) is carried in the checkpoint instead, so a
// resumed replay that tracks it reads only the records the appended entries
// update or delete.
//
// A checkpoint is only used when the log still starts with the segments it
// describes, which is checked, not assumed:
//
//   - every segment but the last it covers has the same name, size, inode,
//     mtime and ctime (the evidence backup change detection trusts for
//     "these bytes did not change", and what the backup's WAL fingerprint
//     is made of);
//   - the last one it covers (the newest when it was made, which Engram
//     appends to) has the same name and inode, is at least as long, and
//     the bytes it covered have the same CRC32C (read again: ~64 MiB at
//     most, where a replay from the start reads the whole WAL);
//   - the last entry the checkpoint applied is still where it was, with the
//     same 32-byte header, and its payload still matches the header's CRC;
//   - and the digest checks that the payloads it reads from where the
//     checkpoint said still start with their record's id: version 1
//     (DigestVerified) reads every live record, version 2 (lthash16) only
//     those the appended entries update or delete (ltRemove), so for it the
//     guards above are what stands between a WAL rewritten in place and a
//     wrong digest (a rewrite changes a sealed segment's ctime, or the newest
//     one's covered CRC); L4 and a point-in-time restore at a snapshot's
//     WAL end recompute it from the start and would report the difference.
//
// Anything else (a compacted or replaced segment, a restore, a checkpoint
// of another log) replays from the start. Checkpoints are local state: they
// name record ids, which is why callers keep them beside the data (in the
// private cache directory), never in a repository.

// checkpointMagic starts an encoded Checkpoint; its last byte is the
// encoding's version. Version 2 adds the version-2 digest's accumulator
// (a flag byte, then 2048 bytes when set) after the applied count; a
// checkpoint of version 1 is not read (the replay starts from the start).
var checkpointMagic = [8]byte{'M', 'W', 'A', 'L', 'C', 'K', 'P', 2}

// ckSeg identifies one segment a checkpoint covers.
type ckSeg struct {
	name         string
	firstSeq     uint64
	size         int64 // the last covered segment: just past its last entry
	ino          uint64
	mtime, ctime int64
}

// A checkpoint's live records are kept encoded, as the file holds them
// (ckRecFixed bytes after each id): one per live record, its payload in
// segment seg at offset off, n bytes long, last written by entry seq at
// ts, in strictly ascending bytewise order of id (since session 24 of issue
// 18; earlier checkpoints are in the id map's order, which ParseCheckpoint
// tells). A State resumed from sorted records keeps them encoded as its
// base and takes out only those the appended entries touch (ckBase);
// Log.checkpoint merges the rest, as they are, with the State's id map's,
// sorted (docs/benchmarks.md, issue 18, sessions 23 and 24).
//
//	u16 len(id), id, u32 seg, u32 off, u32 n, u64 seq, i64 ts
const ckRecFixed = 4 + 4 + 4 + 8 + 8

// ckRecSize is the encoded size of a record of id.
func ckRecSize(id string) int { return 2 + len(id) + ckRecFixed }

// ckRecAt decodes the record at the start of b (well-formed: checked by
// ParseCheckpoint or written by Log.checkpoint) and returns its id's bytes,
// its fields and the rest of b.
func ckRecAt(b []byte) (id []byte, seg, off, n uint32, seq uint64, ts int64, rest []byte) {
	l := int(le.Uint16(b))
	id, b = b[2:2+l], b[2+l:]
	return id, le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint64(b[12:]), int64(le.Uint64(b[20:])), b[ckRecFixed:]
}

// Checkpoint is a replay of a log prefix, as ReplayResume makes and
// resumes from. Encode it with MarshalBinary, decode with ParseCheckpoint.
type Checkpoint struct {
	segs    []ckSeg
	lastSeg int32 // segment of the last applied entry, -1 if none
	lastOff int64
	lastHdr [HeaderSize]byte
	// tailCRC is the CRC32C of the last covered segment's bytes up to its
	// size: the newest segment's mtime changes with every append, so its
	// covered bytes are checked whole (checkTail).
	tailCRC uint32

	// The validator's position (its segment is the last in segs).
	nInSeg            int64
	compacted, marked bool
	have              bool
	vSeq              uint64
	vTS               int64

	// The State's position.
	lastSeq uint64
	lastTS  int64
	applied int64
	// recs are the live records, nrecs of them, encoded (ckRecFixed). A
	// parsed Checkpoint's are a part of the bytes it was parsed from,
	// held until a State loads them.
	recs  []byte
	nrecs int
	// sorted: the records are in strictly ascending id order (every
	// checkpoint Log.checkpoint makes; ParseCheckpoint checks it, as older
	// binaries wrote them in the id map's order, which loads the slow way).
	sorted bool
	// enc, for a checkpoint Log.checkpoint made, is the buffer its records
	// were encoded into, with room for the header before them (and the
	// version-2 digest's accumulator, which AdoptLtHash may add) and for
	// the sum after them: MarshalBinary encodes in place.
	enc []byte
	// lt is the version-2 digest's accumulator (nil: the replay did not
	// track it, TrackLtHash).
	lt *ltHash

	consumed bool // resumed from: its records were given to a State
}

// Records returns how many live records the checkpoint holds.
func (c *Checkpoint) Records() int { return c.nrecs }

// Position returns the last entry the checkpoint's replay applied.
func (c *Checkpoint) Position() Position { return Position{Seq: c.lastSeq, TimestampNS: c.lastTS} }

// ReplayResume is Replay to the end of the log (Target{}) into s, an empty
// State from NewZeroCopyState, that continues from cp when cp is a replay of
// a prefix of this log (see the checks above) and else replays from the
// start; resumed reports which. next is the checkpoint of the replay's end
// for the next time, nil when the state cannot be checkpointed (a payload
// copied rather than mapped, or an error). A cp resumed from gives its
// records to s: it cannot be resumed from again.
func (l *Log) ReplayResume(ctx context.Context, cp *Checkpoint, s *State) (pos Position, next *Checkpoint, resumed bool, err error) {
	return l.ReplayResumeMarked(ctx, cp, s, nil)
}

// ReplayResumeMarked is ReplayResume that also finds the last entry before
// m, if not nil, as it goes (Mark.Last tells after it).
func (l *Log) ReplayResumeMarked(ctx context.Context, cp *Checkpoint, s *State, m *Mark) (pos Position, next *Checkpoint, resumed bool, err error) {
	v := &validator{}
	from, start := 0, int64(0)
	if cp != nil && !cp.consumed && s.zeroCopy && s.Len() == 0 && s.applied == 0 && cp.Fits(l) == nil && cp.checkTail(l) == nil {
		if err := s.load(l, cp, v); err != nil {
			s.Close()
			v = &validator{}
		} else {
			from, start, resumed = len(cp.segs)-1, cp.segs[len(cp.segs)-1].size, true
		}
	}
	if cp != nil && !resumed && s.lt != nil {
		// The checkpoint did not fit: a replay from the start, where the
		// version-2 digest costs less computed afterwards over the live
		// records (DigestOf) than maintained through every update of the
		// whole WAL (docs/benchmarks.md, session 13, digest2).
		s.lt = nil
	}
	lastSeg, lastOff := -1, int64(0)
	if resumed {
		lastSeg, lastOff = int(cp.lastSeg), cp.lastOff
		pos = cp.Position()
	}
	if m != nil {
		m.begin(l, from, start, pos)
	}
	_, err = l.walk(ctx, from, start, v, s, m, func(seg int, off int64, e *Entry, mblk int) error {
		if err := l.checkApply(v, s, seg, off, e, mblk); err != nil {
			return err
		}
		if m != nil {
			m.visit(seg, off, e)
		}
		pos = Position{Seq: e.Seq, TimestampNS: e.TimestampNS}
		lastSeg, lastOff = seg, off
		return nil
	})
	if m != nil {
		m.end(l, err)
	}
	if err != nil {
		return pos, nil, resumed, err
	}
	// A resume checked the CRC of the newest segment up to the old end: when
	// that segment is still the newest, the new CRC goes on from there.
	var known *ckSeg
	var knownCRC uint32
	if resumed && len(cp.segs) == len(l.segs) {
		known, knownCRC = &cp.segs[len(cp.segs)-1], cp.tailCRC
	}
	next, _ = l.checkpoint(s, v, lastSeg, lastOff, known, knownCRC)
	return pos, next, resumed, nil
}

// Fits reports why c is not a replay of a prefix of l (nil when it is).
func (c *Checkpoint) Fits(l *Log) error {
	k := len(c.segs) - 1
	if k < 0 || len(l.segs) <= k {
		return errors.New("the log has fewer segments than the checkpoint")
	}
	for j := 0; j <= k; j++ {
		cs, ls := &c.segs[j], l.segs[j]
		if cs.name != ls.Name || cs.firstSeq != ls.FirstSeq {
			return fmt.Errorf("segment %d is %s, was %s", j, ls.Name, cs.name)
		}
		ino, mtime, ctime, ok := fileIdentity(ls.Path)
		if !ok || ino != cs.ino {
			return fmt.Errorf("segment %s was replaced", ls.Name)
		}
		if j < k && (ls.Size != cs.size || mtime != cs.mtime || ctime != cs.ctime) {
			return fmt.Errorf("segment %s changed", ls.Name)
		}
		if j == k && ls.Size < cs.size {
			return fmt.Errorf("segment %s shrank", ls.Name)
		}
	}
	if c.lastSeg < 0 {
		return nil
	}
	if int(c.lastSeg) > k {
		return errors.New("checkpoint: last entry beyond its segments")
	}
	// The last entry applied is still there, whole and with its CRC.
	f, err := os.Open(l.segs[c.lastSeg].Path)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [HeaderSize]byte
	if _, err := f.ReadAt(hdr[:], c.lastOff); err != nil {
		return err
	}
	if hdr != c.lastHdr {
		return fmt.Errorf("segment %s offset %d: the last entry replayed changed", c.segs[c.lastSeg].name, c.lastOff)
	}
	h, reason := DecodeHeader(hdr[:])
	if reason != "" {
		return errors.New(reason)
	}
	p := make([]byte, h.PayloadLen)
	if _, err := f.ReadAt(p, c.lastOff+HeaderSize); err != nil {
		return err
	}
	if entryCRC(hdr[:], p) != h.CRC {
		return fmt.Errorf("segment %s offset %d: the last entry replayed fails its CRC", c.segs[c.lastSeg].name, c.lastOff)
	}
	return nil
}

// checkTail checks that the newest segment c covers still starts with the
// bytes c replayed (Engram only appends to it; anything else replays from
// the start).
func (c *Checkpoint) checkTail(l *Log) error {
	k := len(c.segs) - 1
	crc, err := prefixCRC(l.segs[k].Path, c.segs[k].size)
	if err != nil {
		return err
	}
	if crc != c.tailCRC {
		return fmt.Errorf("segment %s changed before offset %d", c.segs[k].name, c.segs[k].size)
	}
	return nil
}

// prefixCRC returns the CRC32C of the first n bytes of the file at path.
func prefixCRC(path string, n int64) (uint32, error) { return rangeCRC(path, 0, 0, n) }

// rangeCRC continues crc, the CRC32C of the file at path up to offset from,
// to offset to.
func rangeCRC(path string, crc uint32, from, to int64) (uint32, error) {
	if to <= from {
		return crc, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, min(1<<20, to-from))
	for off := from; off < to; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		crc = crc32.Update(crc, castagnoli, buf[:n])
		off += int64(n)
		if err != nil && off < to {
			return 0, err
		}
	}
	return crc, nil
}

// load fills the empty zero-copy State s with cp's records, mapping the
// segments they lie in, and positions v where cp's replay stopped. The last
// covered segment is mapped whole as it is now, for the walk to go on
// reading it.
//
// The records of a sorted checkpoint stay encoded, as the State's base
// (ckBase): the replay moves into the id map only those the day's entries
// update or delete, and Log.checkpoint merges the rest into the next
// checkpoint as they are. A space of 31,000 records (s16x) whose day
// touches ~1,000 used to insert all of them into the map (an id string
// each) and walk the map again for the next checkpoint (docs/benchmarks.md,
// issue 18, session 24). An unsorted checkpoint (written by an older
// binary) is loaded into the map whole.
func (s *State) load(l *Log, cp *Checkpoint, v *validator) error {
	if s.lt != nil && cp.lt == nil {
		return errors.New("checkpoint: no version-2 digest")
	}
	k := len(cp.segs) - 1
	blk := make([]int32, k+1)
	refs := make([]int32, k+1) // records in each segment
	var at []uint32
	if cp.sorted {
		at = make([]uint32, 0, cp.nrecs+1)
	}
	var live int64
	for i, b := 0, cp.recs; i < cp.nrecs; i++ {
		if at != nil {
			at = append(at, uint32(len(cp.recs)-len(b)))
		}
		var seg, off, n uint32
		_, seg, off, n, _, _, b = ckRecAt(b)
		if int(seg) > k || int64(off)+int64(n) > cp.segs[seg].size || n == 0 {
			return errors.New("checkpoint: record out of its segment")
		}
		refs[seg]++
		live += int64(n)
	}
	for j := 0; j <= k; j++ {
		blk[j] = -1
		if refs[j] == 0 && j != k {
			continue
		}
		size := cp.segs[j].size
		if j == k {
			size = l.segs[k].Size
		}
		if size == 0 {
			continue
		}
		f, err := os.Open(l.segs[j].Path)
		if err != nil {
			return err
		}
		b, _ := s.mapSegment(f, size, j)
		f.Close()
		if b < 0 {
			return errors.New("checkpoint: cannot map segment " + l.segs[j].Name)
		}
		if j < k {
			s.blocks[b].refs-- // mapSegment's reference is the walk's
		}
		blk[j] = int32(b)
	}
	if blk[k] >= 0 {
		s.resumeSeg, s.resumeBlk = k+1, int(blk[k])
	}
	if cp.sorted {
		for j, n := range refs {
			if n > 0 {
				if blk[j] < 0 {
					return errors.New("checkpoint: bad record")
				}
				s.blocks[blk[j]].refs += n
			}
		}
		s.base = &ckBase{recs: cp.recs, at: append(at, uint32(len(cp.recs))), blk: blk,
			gone: make([]uint64, (cp.nrecs+63)/64), n: cp.nrecs, bytes: len(cp.recs)}
		// Room for what a day's entries take out of the base and add.
		hint := cp.nrecs/16 + 64
		s.slots = make([]slot, 0, hint)
		s.ids = make(map[string]uint32, hint)
		s.live += live
	} else {
		// Sized once for the records and the day's new ones after them (it
		// was grown from empty: ~15 rehashes of every id).
		s.slots = make([]slot, 0, cp.nrecs+cp.nrecs/8)
		s.ids = make(map[string]uint32, cp.nrecs+cp.nrecs/8)
		for i, rb := 0, cp.recs; i < cp.nrecs; i++ {
			id, seg, off, n, seq, ts, rest := ckRecAt(rb)
			rb = rest
			b := blk[seg]
			// The id copied (rb is the checkpoint file's bytes); one lookup,
			// a duplicate seen by the map's size.
			if s.ids[string(id)] = uint32(len(s.slots)); len(s.ids) != len(s.slots)+1 || b < 0 {
				return errors.New("checkpoint: bad record")
			}
			s.slots = append(s.slots, slot{block: uint32(b), off: off, n: n, seq: seq, ts: ts})
			s.blocks[b].refs++
			s.live += int64(n)
		}
	}
	s.lastSeq, s.lastTS, s.applied, s.resumed = cp.lastSeq, cp.lastTS, cp.applied, true
	if s.lt != nil {
		s.lt.acc = *cp.lt
	}
	// The records now live in s (or are its base): a checkpoint is resumed
	// from once.
	cp.recs, cp.nrecs, cp.consumed = nil, 0, true
	last := cp.segs[k]
	v.startSegment(last.name, last.firstSeq)
	v.nInSeg, v.compacted, v.marked = cp.nInSeg, cp.compacted, cp.marked
	v.have, v.lastSeq, v.lastTS = cp.have, cp.vSeq, cp.vTS
	return nil
}

// ckBase is a resumed State's records that no entry has updated or
// deleted since the checkpoint, as the checkpoint encodes them, in strictly
// ascending id order (ParseCheckpoint checked it). A record leaves the base
// for the State's id map (promote) when an entry names it: the ids in the
// map and the records in the base are disjoint, and together the state.
type ckBase struct {
	recs  []byte   // the checkpoint's encoded records
	at    []uint32 // where record j starts in recs (one more: len(recs))
	blk   []int32  // the block each checkpoint segment is mapped as
	gone  []uint64 // a bit per record: promoted (or deleted since)
	n     int      // records still in the base
	bytes int      // their encoded size
}

// id returns record j's id.
func (b *ckBase) id(j int) []byte {
	r := b.recs[b.at[j]:]
	return r[2 : 2+int(le.Uint16(r))]
}

func (b *ckBase) has(j int) bool { return b.gone[j>>6]&(1<<(j&63)) == 0 }

// search returns the index of id's record, if the base has it (gone or
// not).
func (b *ckBase) search(id []byte) (int, bool) {
	lo, hi := 0, len(b.at)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(b.id(m), id); {
		case c == 0:
			return m, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return lo, false
}

// promote moves id's record from the base into the id map and returns its
// slot (false: the base does not hold it). The block's reference the base
// counted for it is the slot's now.
func (s *State) promote(id []byte) (uint32, bool) {
	b := s.base
	j, ok := b.search(id)
	if !ok || !b.has(j) {
		return 0, false
	}
	b.gone[j>>6] |= 1 << (j & 63)
	b.n--
	b.bytes -= int(b.at[j+1] - b.at[j])
	_, seg, off, n, seq, ts, _ := ckRecAt(b.recs[b.at[j]:])
	i := s.newSlot()
	s.slots[i] = slot{block: uint32(b.blk[seg]), off: off, n: n, seq: seq, ts: ts}
	s.ids[string(id)] = i
	return i, true
}

// materialize moves every record left in the base into the id map, for
// the methods that read the whole map (Each, Digest, Payload, ...).
func (s *State) materialize() {
	b := s.base
	if b == nil {
		return
	}
	s.base = nil
	ids := make(map[string]uint32, len(s.ids)+b.n+b.n/8)
	for id, i := range s.ids {
		ids[id] = i
	}
	s.ids = ids
	s.slots = slices.Grow(s.slots, b.n)
	for j := 0; j+1 < len(b.at); j++ {
		if !b.has(j) {
			continue
		}
		id, seg, off, n, seq, ts, _ := ckRecAt(b.recs[b.at[j]:])
		s.slots = append(s.slots, slot{block: uint32(b.blk[seg]), off: off, n: n, seq: seq, ts: ts})
		s.ids[string(id)] = uint32(len(s.slots) - 1)
	}
}

// checkpoint describes s, a zero-copy State that replayed all of l, for a
// later ReplayResume; lastSeg and lastOff locate the last entry applied.
//
// known, if not nil, is the same newest segment covered up to known.size
// with CRC32C knownCRC: only the bytes after it are read for the new CRC.
func (l *Log) checkpoint(s *State, v *validator, lastSeg int, lastOff int64, known *ckSeg, knownCRC uint32) (*Checkpoint, error) {
	if !s.zeroCopy || len(l.segs) == 0 {
		return nil, errors.New("not a zero-copy replay")
	}
	k := len(l.segs) - 1
	cp := &Checkpoint{lastSeg: int32(lastSeg), lastOff: lastOff,
		nInSeg: v.nInSeg, compacted: v.compacted, marked: v.marked, have: v.have, vSeq: v.lastSeq, vTS: v.lastTS,
		lastSeq: s.lastSeq, lastTS: s.lastTS, applied: s.applied}
	if s.lt != nil {
		if s.ltFlush(); s.lt.err != nil {
			return nil, s.lt.err
		}
		acc := s.lt.acc
		cp.lt = &acc
	}
	for _, seg := range l.segs {
		ino, mtime, ctime, ok := fileIdentity(seg.Path)
		if !ok {
			return nil, errors.New("no file identity")
		}
		cp.segs = append(cp.segs, ckSeg{name: seg.Name, firstSeq: seg.FirstSeq, size: seg.Size, ino: ino, mtime: mtime, ctime: ctime})
	}
	// The newest segment is covered up to just past its last entry (a torn
	// tail is read again next time).
	end := int64(0)
	if lastSeg >= 0 {
		f, err := os.Open(l.segs[lastSeg].Path)
		if err != nil {
			return nil, err
		}
		_, err = f.ReadAt(cp.lastHdr[:], lastOff)
		f.Close()
		if err != nil {
			return nil, err
		}
		if lastSeg == k {
			h, reason := DecodeHeader(cp.lastHdr[:])
			if reason != "" {
				return nil, errors.New(reason)
			}
			end = lastOff + HeaderSize + int64(h.PayloadLen)
		}
	}
	if v.nInSeg == 0 && end != 0 || v.nInSeg > 0 && lastSeg != k {
		return nil, errors.New("validator and last entry disagree")
	}
	cp.segs[k].size = end
	var crc uint32
	var err error
	if known != nil && known.name == l.segs[k].Name && known.size <= end {
		crc, err = rangeCRC(l.segs[k].Path, knownCRC, known.size, end)
	} else {
		crc, err = prefixCRC(l.segs[k].Path, end)
	}
	if err != nil {
		return nil, err
	}
	cp.tailCRC = crc
	// Encoded in ascending id order, into a buffer of the exact size: the
	// id map's records, sorted, merged with the base's (records no entry
	// touched since the last checkpoint), which are copied as they are
	// (their segments are the same: Fits checked).
	ids := make([]ckKey, 0, len(s.ids))
	size := 0
	for id, i := range s.ids {
		ids = append(ids, ckKey{idPrefix(id), id, i})
		size += ckRecSize(id)
	}
	ids = sortKeys(ids)
	base := s.base
	if base != nil {
		size += base.bytes
	}
	// Room before the records for the header, with the accumulator
	// AdoptLtHash may add, and for the sum after them (MarshalBinary).
	hdr := cp.headerSize()
	if cp.lt == nil {
		hdr += ltBytes
	}
	enc := make([]byte, hdr+size+32)
	recs := enc[hdr : hdr+size : hdr+size]
	at, j := 0, 0
	// copyBase copies the base's records before id (all of them: "") in
	// runs.
	copyBase := func(id string) {
		if base == nil {
			return
		}
		last := len(base.at) - 1
		for j < last && (id == "" || string(base.id(j)) < id) {
			from := j
			for j < last && base.has(j) && (id == "" || string(base.id(j)) < id) {
				j++
			}
			at += copy(recs[at:], base.recs[base.at[from]:base.at[j]])
			for j < last && !base.has(j) {
				j++
			}
		}
	}
	for _, k := range ids {
		id := k.id
		copyBase(id)
		sl := &s.slots[k.slot]
		b := &s.blocks[sl.block]
		if b.mapped == 0 || b.seg == 0 {
			return nil, errors.New("a record was copied, not mapped")
		}
		r := recs[at : at+ckRecSize(id)]
		le.PutUint16(r, uint16(len(id)))
		f := r[2+copy(r[2:], id):]
		le.PutUint32(f, uint32(b.seg-1))
		le.PutUint32(f[4:], sl.off)
		le.PutUint32(f[8:], sl.n)
		le.PutUint64(f[12:], sl.seq)
		le.PutUint64(f[20:], uint64(sl.ts))
		at += len(r)
	}
	copyBase("")
	if at != size {
		return nil, errors.New("checkpoint: records and base disagree")
	}
	cp.recs, cp.nrecs, cp.enc, cp.sorted = recs, s.Len(), enc, true
	return cp, nil
}

// ckKey is a State's id as Log.checkpoint sorts them: by their first 8
// bytes as a number (a radix sort), then ids of the same prefix by
// comparing them. A replay from the start sorts every id: 31,000 random
// ids took 9-18 ms with slices.Sort, ~4 ms so (docs/benchmarks.md, issue
// 18, session 24).
type ckKey struct {
	prefix uint64
	id     string
	slot   uint32
}

func (a ckKey) compare(b ckKey) int {
	if a.prefix != b.prefix {
		return cmp.Compare(a.prefix, b.prefix)
	}
	return strings.Compare(a.id, b.id)
}

// radixMax is the most keys sortKeys sorts by radix, whose second array of
// keys (32 bytes a key) would add ~13 MB to a replay from the start of a
// space of 400,000 records (wal-heavy at 10 GiB), where the peak RSS is
// bounded; more are sorted in place.
const radixMax = 1 << 16

// sortKeys sorts x in ascending id order and returns it (in x's memory or
// in a slice of its size).
func sortKeys(x []ckKey) []ckKey {
	if len(x) < 256 || len(x) > radixMax {
		slices.SortFunc(x, ckKey.compare)
		return x
	}
	// Least significant byte first, stable: a pass per byte of the prefix
	// that differs between the keys.
	tmp := make([]ckKey, len(x))
	for shift := uint(0); shift < 64; shift += 8 {
		var at [257]int
		for i := range x {
			at[int(byte(x[i].prefix>>shift))+1]++
		}
		if at[int(byte(x[0].prefix>>shift))+1] == len(x) {
			continue
		}
		for d := 1; d < len(at); d++ {
			at[d] += at[d-1]
		}
		for i := range x {
			d := byte(x[i].prefix >> shift)
			tmp[at[d]] = x[i]
			at[d]++
		}
		x, tmp = tmp, x
	}
	// Runs of one prefix, by the whole id.
	for i := 0; i < len(x); {
		j := i + 1
		for j < len(x) && x[j].prefix == x[i].prefix {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(x[i:j], ckKey.compare)
		}
		i = j
	}
	return x
}

// idPrefix is the first 8 bytes of id (zeros after a shorter one), big
// endian: the order of prefixes is the ids' bytewise order, or equal.
func idPrefix(id string) uint64 {
	var b [8]byte
	copy(b[:], id)
	return binary.BigEndian.Uint64(b[:])
}

// DigestVerified is Digest for a State that may have been resumed from a
// Checkpoint: it also checks that every payload it hashes starts with its
// record's id, and fails (ErrCheckpointStale) when one does not, i.e. when a
// segment changed under the checkpoint in a way its checks did not see. The
// segments of a resumed state are read ahead first: its records were not
// read by this replay, so their pages are likely not in the page cache.
func (s *State) DigestVerified() ([32]byte, error) {
	if s.resumed && s.maps != nil {
		s.maps.prefetch()
	}
	return s.digest(true)
}

// ErrCheckpointStale is returned by DigestVerified when a payload is not
// the record the checkpoint says lies there.
var ErrCheckpointStale = errors.New("walreplay: a segment changed under the replay checkpoint")

// idMatches reports whether payload p is a record of id.
func idMatches(p []byte, id string) bool {
	return len(p) >= 2+len(id) && int(le.Uint16(p)) == len(id) && string(p[2:2+len(id)]) == id
}

// MarshalBinary encodes c; the encoding ends with its BLAKE3-256, which
// ParseCheckpoint checks.
//
// The encoding of a checkpoint Log.checkpoint made is written in place
// around its records, in the buffer they were encoded into (room for the
// header was kept before them and for the sum after them): it shares
// memory with c, and is not copied.
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	if h, e := c.headerSize(), len(c.enc)-32-len(c.recs); c.enc != nil && h <= e && &c.enc[e] == unsafe.SliceData(c.recs) {
		b := c.appendHeader(c.enc[e-h : e-h : len(c.enc)])[:h+len(c.recs)]
		sum := blake3.Sum256(b)
		return append(b, sum[:]...), nil
	}
	b := c.appendHeader(make([]byte, 0, c.size()))
	b = append(b, c.recs...)
	sum := blake3.Sum256(b)
	return append(b, sum[:]...), nil
}

// appendHeader appends c's encoding up to its records (their count
// included), headerSize bytes.
func (c *Checkpoint) appendHeader(b []byte) []byte {
	b = append(b, checkpointMagic[:]...)
	b = le.AppendUint32(b, uint32(len(c.segs)))
	for _, s := range c.segs {
		b = appendString(b, s.name)
		b = le.AppendUint64(b, s.firstSeq)
		b = le.AppendUint64(b, uint64(s.size))
		b = le.AppendUint64(b, s.ino)
		b = le.AppendUint64(b, uint64(s.mtime))
		b = le.AppendUint64(b, uint64(s.ctime))
	}
	b = le.AppendUint32(b, uint32(c.lastSeg))
	b = le.AppendUint64(b, uint64(c.lastOff))
	b = append(b, c.lastHdr[:]...)
	b = le.AppendUint32(b, c.tailCRC)
	b = le.AppendUint64(b, uint64(c.nInSeg))
	b = append(b, boolByte(c.compacted), boolByte(c.marked), boolByte(c.have))
	b = le.AppendUint64(b, c.vSeq)
	b = le.AppendUint64(b, uint64(c.vTS))
	b = le.AppendUint64(b, c.lastSeq)
	b = le.AppendUint64(b, uint64(c.lastTS))
	b = le.AppendUint64(b, uint64(c.applied))
	b = append(b, boolByte(c.lt != nil))
	if c.lt != nil {
		b = append(b, c.lt.bytes()...)
	}
	return le.AppendUint32(b, uint32(c.nrecs))
}

// size is the length of c's encoding (MarshalBinary).
func (c *Checkpoint) size() int { return c.headerSize() + len(c.recs) + 32 }

// headerSize is the length of c's encoding before its records
// (appendHeader).
func (c *Checkpoint) headerSize() int {
	n := len(checkpointMagic) + 4
	for _, s := range c.segs {
		n += 2 + len(s.name) + 5*8
	}
	n += 4 + 8 + HeaderSize + 4 + 8 + 3 + 2*8 + 3*8 + 1
	if c.lt != nil {
		n += ltBytes
	}
	return n + 4
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendString(b []byte, s string) []byte {
	b = le.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// errCheckpointFormat is what ParseCheckpoint returns for bytes that are not
// a checkpoint it can read.
var errCheckpointFormat = errors.New("walreplay: not a replay checkpoint (or a damaged one)")

// ParseCheckpoint decodes what MarshalBinary made. Anything else, damaged
// or of another version, is an error: the caller replays from the start.
// The Checkpoint keeps its records as a part of b (checked, not decoded)
// until a State loads them: b must not change meanwhile.
func ParseCheckpoint(b []byte) (*Checkpoint, error) {
	if len(b) < len(checkpointMagic)+32 || !bytes.Equal(b[:len(checkpointMagic)], checkpointMagic[:]) {
		return nil, errCheckpointFormat
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if s := blake3.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, errCheckpointFormat
	}
	d := &ckDecoder{b: body[len(checkpointMagic):]}
	c := &Checkpoint{}
	ns := d.u32()
	if ns > 1<<20 {
		return nil, errCheckpointFormat
	}
	c.segs = make([]ckSeg, 0, min(ns, uint32(len(d.b)/42)))
	for i := uint32(0); i < ns && d.err == nil; i++ {
		c.segs = append(c.segs, ckSeg{name: d.str(), firstSeq: d.u64(), size: int64(d.u64()), ino: d.u64(), mtime: int64(d.u64()), ctime: int64(d.u64())})
	}
	c.lastSeg = int32(d.u32())
	c.lastOff = int64(d.u64())
	copy(c.lastHdr[:], d.bytes(HeaderSize))
	c.tailCRC = d.u32()
	c.nInSeg = int64(d.u64())
	c.compacted, c.marked, c.have = d.byte() == 1, d.byte() == 1, d.byte() == 1
	c.vSeq, c.vTS = d.u64(), int64(d.u64())
	c.lastSeq, c.lastTS, c.applied = d.u64(), int64(d.u64()), int64(d.u64())
	switch d.byte() {
	case 0:
	case 1:
		c.lt = new(ltHash)
		c.lt.setBytes(d.bytes(ltBytes))
	default:
		return nil, errCheckpointFormat
	}
	nr := d.u32()
	if int64(nr) > int64(len(d.b))/22 {
		return nil, errCheckpointFormat
	}
	recs := d.b
	var prev []byte
	sorted := true
	for i := uint32(0); i < nr && d.err == nil; i++ {
		r := d.bytes(int(le.Uint16(d.bytes(2))) + ckRecFixed)
		id := r[:len(r)-ckRecFixed]
		if sorted && i > 0 && string(prev) >= string(id) {
			sorted = false
		}
		prev = id
	}
	c.recs, c.nrecs, c.sorted = recs[:len(recs)-len(d.b)], int(nr), sorted
	if d.err != nil || len(d.b) != 0 || len(c.segs) == 0 || c.lastSeg >= int32(len(c.segs)) || c.lastSeg < -1 || c.lastOff < 0 {
		return nil, errCheckpointFormat
	}
	for _, s := range c.segs {
		if s.size < 0 {
			return nil, errCheckpointFormat
		}
	}
	return c, nil
}

type ckDecoder struct {
	b   []byte
	err error
}

func (d *ckDecoder) bytes(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = io.ErrUnexpectedEOF
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *ckDecoder) byte() byte  { return d.bytes(1)[0] }
func (d *ckDecoder) u32() uint32 { return le.Uint32(d.bytes(4)) }
func (d *ckDecoder) u64() uint64 { return le.Uint64(d.bytes(8)) }
func (d *ckDecoder) str() string { return string(d.bytes(int(le.Uint16(d.bytes(2))))) }
