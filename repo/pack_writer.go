package repo

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize/english"

	"memento/chunk"
	"memento/index"
)

// Packer gathers the blobs of one space into packs of about the target size
// and hands finished packs to the repository's uploaders (packPool). Callers
// (the pipeline's workers, in parallel) hand it stored blobs; it reserves
// each one's place in the open pack under its lock and seals it straight
// into that place outside the lock, so encryption runs on every core and no
// blob is copied after sealing. Packs never mix spaces: reading space A
// never touches space B's packs.
type Packer struct {
	r      *Repository
	ctx    context.Context // the uploads'
	space  string
	target int
	urgent bool // set by Urgent before the first Add

	mu   sync.Mutex
	cur  *openPack
	seen map[chunk.ID]bool // blobs added by this packer, to drop duplicates
	// grewFull: a pack of this packer grew to the full size (grow), so its
	// next packs take a full buffer at once (firstBuf).
	grewFull bool

	pending sync.WaitGroup // packs handed to the uploaders and not yet done
	ended   bool           // Flush or Abort ran (guarded by mu)
	upMu    sync.Mutex     // guards err, packs, stored
	err     error          // first upload error
	failed  atomic.Bool    // err is set (Err)
	packs   []index.PackInfo
	stored  int64
}

// openPack is a pack being filled. buf grows with the pack (Packer.grow),
// only while no reserved range is being sealed into, so reserved ranges
// never move under a sealer; sealing tells the uploader (and grow) when
// every reserved range is written.
type openPack struct {
	p       *Packer
	seal    sealer // the repository's batch sealer for this pack's blobs and header
	buf     []byte
	blobs   []index.BlobInfo
	sealing sync.WaitGroup
}

// packHeaderReserve is room kept after the blobs for the sealed header and
// trailer, about 50 bytes per blob: enough for a pack of 16 KiB chunks (the
// warm page file's were that size in parameter sets 1 and 2).
// A header that does not fit only costs a reallocation.
func packHeaderReserve(target int) int { return 64<<10 + target/256 }

// NewPacker starts a packer. It must end with Flush or Abort, which give
// its share of the repository's pack buffers back.
func (r *Repository) NewPacker(ctx context.Context, space string) *Packer {
	r.packs.startPacker()
	return &Packer{r: r, ctx: ctx, space: StorageSpace(space), target: int(r.cfg.PackSize), seen: map[chunk.ID]bool{}}
}

// Urgent makes the packer's packs go to the backend before the packs other
// packers queued earlier: the WAL archiver's, whose wait is the recovery
// point's lag, while a backup of a whole data dir shares the repository's
// uploaders (a run's last pack otherwise waited behind every pack queued
// before it). It must be called before the first Add.
func (p *Packer) Urgent() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urgent = true
}

// Claim reports whether the caller should store blob id: it is false when the
// packer already has it, so concurrent workers never store a chunk twice.
func (p *Packer) Claim(id chunk.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[id] {
		return false
	}
	p.seen[id] = true
	return true
}

// Add seals stored (a blob's stored form, rawLen bytes of plaintext) into the
// open pack. A pack is closed before a blob that would take it past the
// target, so packs stay within their buffer; the closed pack goes to the
// repository's uploaders, and the next one takes a buffer from the
// repository's pack buffers (packPool.get), waiting while all of them are
// filling or being written: that bounds the memory of every space's packs
// together. An upload error is Flush's to return, as is the first one of
// a pack handed over here.
func (p *Packer) Add(t BlobType, id chunk.ID, flags uint8, rawLen int, stored []byte) error {
	n := len(stored) + p.r.seal.overhead()
	p.mu.Lock()
	if p.ended {
		// The pool's count of buffers out and of packers would drift for
		// the rest of the Repository's life (the agent's, for days): the
		// buffer taken here would never go back, nor its pack be written.
		p.mu.Unlock()
		panic("memento: Packer.Add after Flush or Abort")
	}
	if p.cur != nil && len(p.cur.blobs) > 0 && len(p.cur.buf)+n <= p.target && len(p.cur.blobs) < maxPackBlobs {
		p.grow(n + max(p.tailSize(len(p.cur.blobs)+1), packHeaderReserve(p.target)))
	}
	if p.cur != nil && len(p.cur.blobs) > 0 && (len(p.cur.buf)+n > p.target || len(p.cur.blobs) >= maxPackBlobs ||
		len(p.cur.buf)+n+p.tailSize(len(p.cur.blobs)+1) > cap(p.cur.buf) ||
		cap(p.cur.buf)-len(p.cur.buf) < n+packHeaderReserve(p.target)) {
		// The last case is a blob larger than the target after small ones;
		// maxPackBlobs is what a reader accepts (a pack_size of 1 GiB holds
		// more of the smallest blobs), and bounds the messages sealed under
		// one nonce prefix (batch).
		p.r.packs.upload(p.cur)
		p.cur = nil
	}
	if p.cur == nil {
		// This packer holds no buffer while it waits (its full pack went
		// to the uploaders above), so the wait ends when an upload does,
		// whatever the other packers' workers do: see packPool.
		p.cur = &openPack{p: p, seal: p.r.seal.batch(), buf: p.r.packs.get(p.firstBuf(n, n+packHeaderReserve(p.target)), p.urgent)}
	}
	cur := p.cur
	off := len(cur.buf)
	cur.buf = cur.buf[:off+n]
	// dst is taken under the lock: cur.buf's header changes with every add,
	// the array under it only when grow moves it, under this lock and once
	// every range reserved in it is sealed.
	dst := cur.buf[off : off : off+n]
	cur.blobs = append(cur.blobs, index.BlobInfo{ID: id, Type: uint8(t), Flags: flags,
		Offset: uint32(off), Length: uint32(n), RawLength: uint32(rawLen)})
	cur.sealing.Add(1)
	p.mu.Unlock()

	sealed := cur.seal.seal(dst, stored, blobAD(t, id))
	cur.sealing.Done()
	if len(sealed) != n {
		// Cannot happen: overhead is exact. Caught here, not by a reader.
		panic(fmt.Sprintf("memento: sealed blob is %d bytes, reserved %d", len(sealed), n))
	}
	return nil
}

// GroupMember is one small file's chunk inside a group blob (AddGroup):
// its ID (the keyed hash of its bytes) and where its bytes lie in the
// group's plaintext.
type GroupMember struct {
	ID             chunk.ID
	Offset, Length uint32
}

// GroupTarget is the plaintext size at which a group of small files is
// stored (a backup's, repo/backup/group.go; a prune's regrouping,
// repo/maintenance/prune_regroup.go). Measured on Python's lib, Go's src/
// and /usr/lib (docs/benchmarks.md, "Issue 18, session 20: grouped small
// files, the backup side"). A repository of small packs gets groups of a
// quarter of its pack size at most (GroupSize), so that a group and its
// members do not make a pack larger than the others.
const GroupTarget = 1 << 20

// GroupSize is the group target of a repository of packs of packSize bytes.
func GroupSize(packSize int64) int { return int(min(GroupTarget, max(packSize/4, 4<<10))) }

// GroupMaxMembers bounds the files of a group: a restore of one of them
// decodes the whole group.
const GroupMaxMembers = 4096

// AddGroup seals a group blob (stored, its stored form of rawLen bytes of
// plaintext, flags as for Add: 0 or FlagCompressed) and a member blob
// (FlagMember, chunk.AppendMember) for each of members into one pack, the
// group first and the members right after it: a pack that lists a member
// always holds its group, so no index, however a backup ends, names a
// member whose group is not durable. The group is written even if the
// packer or the repository has it (a second copy of a rare blob), so that
// rule holds without looking. The members must be claimed by the caller
// (Claim) and lie within the group; a member whose ID is the group's (a
// group of one file) is not written, the group blob being that chunk
// stored whole. It closes the open pack first when
// they do not all fit in it, as Add does for one blob.
func (p *Packer) AddGroup(group chunk.ID, flags uint8, rawLen int, stored []byte, members []GroupMember) error {
	if flags&^FlagCompressed != 0 {
		panic(fmt.Sprintf("memento: group blob with flags %#02x", flags))
	}
	if slices.ContainsFunc(members, func(m GroupMember) bool { return m.ID == group }) {
		// A member that is the whole group (a group of one file) is the
		// group blob itself: a member frame for it would name itself.
		members = slices.DeleteFunc(slices.Clone(members), func(m GroupMember) bool { return m.ID == group })
	}
	if 1+len(members) > maxPackBlobs {
		panic(fmt.Sprintf("memento: group %s of %d members, more than a pack holds", group.Short(), len(members)))
	}
	over := p.r.seal.overhead()
	frames := make([]byte, 0, len(members)*chunk.MaxMemberFrame)
	ends := make([]int, len(members))
	for i, m := range members {
		if uint64(m.Offset)+uint64(m.Length) > uint64(rawLen) {
			panic(fmt.Sprintf("memento: member %s at %d+%d of a group of %d bytes", m.ID.Short(), m.Offset, m.Length, rawLen))
		}
		frames = chunk.AppendMember(frames, chunk.Member{Group: group, Offset: m.Offset, Length: m.Length})
		ends[i] = len(frames)
	}
	n := len(stored) + over + len(frames) + len(members)*over // every sealed byte of the group and its members
	count := 1 + len(members)
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		panic("memento: Packer.AddGroup after Flush or Abort")
	}
	if p.cur != nil && len(p.cur.blobs) > 0 && len(p.cur.buf)+n <= p.target && len(p.cur.blobs)+count <= maxPackBlobs {
		p.grow(n + max(p.tailSize(len(p.cur.blobs)+count), packHeaderReserve(p.target)))
	}
	if p.cur != nil && len(p.cur.blobs) > 0 && (len(p.cur.buf)+n > p.target || len(p.cur.blobs)+count > maxPackBlobs ||
		len(p.cur.buf)+n+p.tailSize(len(p.cur.blobs)+count) > cap(p.cur.buf) ||
		cap(p.cur.buf)-len(p.cur.buf) < n+packHeaderReserve(p.target)) {
		p.r.packs.upload(p.cur)
		p.cur = nil
	}
	if p.cur == nil {
		p.cur = &openPack{p: p, seal: p.r.seal.batch(), buf: p.r.packs.get(p.firstBuf(n+p.tailSize(count), n+max(p.tailSize(count), packHeaderReserve(p.target))), p.urgent)}
	}
	cur := p.cur
	off := len(cur.buf)
	cur.buf = cur.buf[:off+n]
	dst := cur.buf[off : off+n : off+n]
	cur.blobs = append(cur.blobs, index.BlobInfo{ID: group, Type: uint8(DataBlob), Flags: flags,
		Offset: uint32(off), Length: uint32(len(stored) + over), RawLength: uint32(rawLen)})
	at := off + len(stored) + over
	start := 0
	for i, m := range members {
		l := ends[i] - start + over
		cur.blobs = append(cur.blobs, index.BlobInfo{ID: m.ID, Type: uint8(DataBlob), Flags: FlagMember,
			Offset: uint32(at), Length: uint32(l), RawLength: m.Length})
		at += l
		start = ends[i]
	}
	cur.sealing.Add(1)
	p.mu.Unlock()

	defer cur.sealing.Done()
	sealed := cur.seal.seal(dst[:0:len(stored)+over], stored, blobAD(DataBlob, group))
	if len(sealed) != len(stored)+over {
		panic(fmt.Sprintf("memento: sealed group is %d bytes, reserved %d", len(sealed), len(stored)+over))
	}
	at = len(stored) + over
	start = 0
	for i, m := range members {
		l := ends[i] - start + over
		s := cur.seal.seal(dst[at:at:at+l], frames[start:ends[i]], blobAD(DataBlob, m.ID))
		if len(s) != l {
			panic(fmt.Sprintf("memento: sealed member is %d bytes, reserved %d", len(s), l))
		}
		at += l
		start = ends[i]
	}
	return nil
}

// packBufStart is the capacity a new pack buffer starts with (for a first
// blob that fits), grown as its pack fills (Packer.grow, packBufGrowth). A
// space's backup after a day stores ~1.6 MiB (s16x, docs/benchmarks.md,
// session 23): a buffer of the full target (16 MiB and the header's
// reserve) was zeroed and faulted in whole for it, with every space
// backed up at once holding one and the uploads more: ~110 MiB of first
// touches for a few MiB of packs. A buffer given back keeps its grown
// capacity, so a first backup grows only its first few.
const packBufStart = 1 << 20

// full is the capacity of a pack buffer that holds a whole pack of the
// target size whose blobs are at most maxBlob bytes (with its header).
func (p *Packer) full(maxBlob int) int { return max(p.target, maxBlob) + packHeaderReserve(p.target) }

// firstBuf is the capacity of a new pack's buffer for a first blob (or
// group) of n bytes that needs room bytes with the header after it: the
// full size for a blob as large as the target, else at least packBufStart.
//
// Once a pack of the packer has grown to the full size, its next packs
// start there: a packer that filled one pack likely fills the next, and
// growing each of them through 1 and 4 MiB allocated, zeroed and faulted
// in those sizes again and left them as garbage (a first backup of def:
// 18 buffers, 178 MB allocated for a peak of 5 held; docs/benchmarks.md,
// "Issue 18, session 24").
func (p *Packer) firstBuf(n, room int) int {
	if p.grewFull {
		return p.full(n)
	}
	return min(p.full(n), max(packBufStart, room))
}

// packBufGrowth is the factor a pack buffer grows by: 1, 4, then the full
// size (16 MiB and the header's reserve, in one step: grow) for a full
// pack, whose buffers left behind (5 MiB) are garbage until the next
// collection. Doubling left 15 MiB a buffer, and
// the day's backup of def (3 spaces, full packs) peaked 10 MiB higher.
const packBufGrowth = 4

// grow makes the open pack's buffer hold room more bytes, when it does
// not and its full size would: its capacity grows packBufGrowth times, up to the
// full size (the pack closes when even that does not hold them). The
// reserved ranges may still be sealed into, so it waits for them first,
// then moves the pack to the new buffer; the old one goes to the garbage
// collector (nobody else holds it: the pack is not queued yet). Called
// with mu held, which stops new reservations while it waits (sealing
// takes no lock).
func (p *Packer) grow(room int) {
	cur := p.cur
	if cap(cur.buf)-len(cur.buf) >= room {
		return
	}
	c := max(packBufGrowth*cap(cur.buf), len(cur.buf)+room)
	if c >= p.target {
		// The full size with the header's reserve at once: a growth to the
		// target alone (16 MiB from 4) was followed by one more to the
		// full size, a 16 MiB copy and 16 MiB of garbage per buffer.
		c = p.full(0)
	}
	if c = min(c, p.full(0)); c < len(cur.buf)+room {
		return // a full pack: the caller closes it
	}
	p.grewFull = p.grewFull || c == p.full(0)
	cur.sealing.Wait()
	b := p.r.packs.alloc(c)[:len(cur.buf)]
	copy(b, cur.buf)
	p.r.packs.lose(cur.buf)
	cur.buf = b
}

// tailSize is what the sealed header and the trailer of a pack of blobs
// blobs take after them. Add closes a pack before its tail would outgrow the
// buffer's reserve (packHeaderReserve): a pack of thousands of small blobs
// (a source tree's files) otherwise had its whole 16 MiB buffer reallocated
// and copied to append the header.
func (p *Packer) tailSize(blobs int) int {
	return 2 + len(p.space) + 4 + blobs*packEntrySize + p.r.seal.overhead() + packTrailerSize
}

// Err returns the first pack write's error, once one failed, else nil: a
// caller that reads and compresses for its blobs stops there rather than
// at Flush, which returns the same error. It costs one atomic load.
func (p *Packer) Err() error {
	if !p.failed.Load() {
		return nil
	}
	return p.firstErr()
}

func (p *Packer) firstErr() error {
	p.upMu.Lock()
	defer p.upMu.Unlock()
	return p.err
}

// write writes a closed pack, on one of the repository's uploaders, once
// every blob reserved in it is sealed, and records it; after an earlier
// upload error of the packer it writes nothing (the backup fails at Flush
// anyway). It returns the buffer to reuse, or nil when the backend may
// still read the one it was given: a failed request's body can be read by
// an HTTP transport after Write returned. The uploader gives the buffer
// back before it tells the packer the pack is done (pending), so that when
// Flush or Abort returns none of the packer's buffers is still out.
func (p *Packer) write(pp *openPack) []byte {
	pp.sealing.Wait()
	if p.firstErr() != nil {
		return pp.buf
	}
	hdr := pp.seal.seal(nil, encodePackHeader(p.space, pp.blobs), []byte(packHeaderAD))
	b := append(pp.buf, hdr...)
	b = append(b, encodePackTrailer(len(hdr))...)
	id := chunk.Sum256(b)     // blake3.Sum256, with AVX-512 sixteen chunks at a time
	p.r.locking.waitReserve() // the full disk's reserve first, as before the lock returned
	start := time.Now()
	if err := p.r.be.Write(p.ctx, PackName(id), bytes.NewReader(b), int64(len(b))); err != nil {
		p.upMu.Lock()
		if p.err == nil {
			p.err = fmt.Errorf("write pack %s (%s, %d bytes): %w", ShortHex(id), english.Plural(len(pp.blobs), "blob", ""), len(b), err)
			p.failed.Store(true)
		}
		p.upMu.Unlock()
		// The buffer goes to the garbage collector, not back to the pool
		// (packPool.lose): the backend may still read it.
		p.r.packs.lose(pp.buf)
		return nil
	}
	if cap(b) != cap(pp.buf) {
		// The header outgrew the buffer's reserve: append copied the pack.
		p.r.packs.lose(pp.buf)
		p.r.packs.adopt(b)
	}
	p.r.notePackRetained(id, start)
	p.upMu.Lock()
	p.packs = append(p.packs, index.PackInfo{ID: id, Size: int64(len(b)), Space: p.space, Blobs: pp.blobs})
	p.stored += int64(len(b))
	p.upMu.Unlock()
	return b
}

// end detaches the open pack, once: the packer cannot be used afterwards.
func (p *Packer) end() *openPack {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		panic("memento: Packer used after Flush or Abort")
	}
	p.ended = true
	last := p.cur
	p.cur = nil
	return last
}

// Flush uploads the last partial pack, waits for all uploads and returns every
// pack written. The packer cannot be used afterwards.
func (p *Packer) Flush() ([]index.PackInfo, int64, error) {
	if last := p.end(); last != nil {
		p.r.packs.upload(last) // never empty: a pack is opened for a blob
	}
	p.pending.Wait()
	p.r.packs.endPacker()
	return p.packs, p.stored, p.err
}

// Abort waits for the packs already handed to the uploaders without writing
// the partial pack and returns the packs that were written completely.
func (p *Packer) Abort() []index.PackInfo {
	if last := p.end(); last != nil {
		last.sealing.Wait() // a worker may still seal into it
		p.r.packs.put(last.buf)
	}
	p.pending.Wait()
	p.r.packs.endPacker()
	return p.packs
}
