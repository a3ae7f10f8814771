package backup

import (
	"runtime"
	"sync"

	"memento/chunk"
	"memento/repo"
)

// Grouped small files (repository format 6, docs/repository-format.md
// "Grouped small files"). In a path backup of a repository that has them
// (repo.Config.GroupedFiles), the small files the backup adds and claims
// (Packer.Claim, as storeChunk does) are appended to one of a few open
// groups (openGroups of them, taken in turn by the small-file workers
// through a channel) instead of being compressed one by one. A group that
// reaches its size (repo.GroupSize) or groupMaxMembers files is compressed as
// one (Pipeline.CompressGroup), hashed with the space's chunk key (its ID,
// as any blob's) and handed to the packer with a member blob per file
// (Packer.AddGroup): group and members in one pack. The files' chunk IDs
// are the ones a file stored alone gets, so trees, dedup and restore see
// no difference.
//
// Once the walk has succeeded the open groups are stored, before the
// packer's Flush (Backup). After a failure or a cancel they are dropped:
// their members were claimed, never added to the packer, so no pack and no
// index lists them, and the next backup stores them again.
//
// A group per worker (32 of them) held up to 70 MiB of buffers under the
// 200 MiB heap limit of the memento command: the collector then ran all the
// time, and the first backup of /usr/lib cost 40 % more CPU; openGroups
// groups cost a few MiB.

// groupTarget is the plaintext size at which a worker's group is stored
// (repo.GroupTarget).
const groupTarget = repo.GroupTarget

// groupMaxMembers bounds the files of a group (repo.GroupMaxMembers).
const groupMaxMembers = repo.GroupMaxMembers

// groupFileMin and groupFileMax bound the files that are grouped. Shorter
// ones are stored raw anyway (chunk's minCompressSize) and their member
// frame would outweigh them. groupFileMax, measured against 64 and 128 KiB
// and every small file (512 KiB): 256 KiB stores Python's lib in the
// fewest bytes but for 512 KiB's 1 MB less, and keeps the files whose
// restore decodes their whole group small.
const (
	groupFileMin = 64
	groupFileMax = 256 << 10
)

// groupable reports whether a small file of size bytes is grouped.
func groupable(size int) bool { return size >= groupFileMin && size <= groupFileMax }

// openGroups is how many groups are open at once: two per core, at most 8.
func openGroups() int { return min(max(2*runtime.GOMAXPROCS(0), 2), 8) }

// fileGroup is an open group: the plaintext (its files concatenated) and a
// member entry per file; stored is the buffer its compressed form is
// written to, kept from group to group.
type fileGroup struct {
	buf     []byte
	members []repo.GroupMember
	stored  []byte
}

// startGroups sets the archiver up to group small files in n open groups
// of size bytes.
func (a *archiver) startGroups(size, n int) {
	a.groupSize = size
	a.groups = make(chan *fileGroup, n)
	for range n {
		a.groups <- &fileGroup{}
	}
	a.addGroup = a.addToGroup
}

// addToGroup is SplitSmallGrouped's group hook: it claims chunk id of a
// small file and appends the file's bytes to an open group, storing the
// group when it is full. A chunk another worker claimed is that worker's to
// store: it reports true for every chunk.
func (a *archiver) addToGroup(id chunk.ID, data []byte) (bool, error) {
	if !a.claim(id) {
		return true, nil
	}
	a.newChunks.Add(1)
	a.newBytes.Add(uint64(len(data)))
	a.prog.NewBytes.Add(int64(len(data)))
	if a.dryRun {
		return true, nil
	}
	if err := a.packer.Err(); err != nil {
		return true, err // a pack write failed: stop now, as addChunk does
	}
	g := <-a.groups
	defer func() { a.groups <- g }()
	if g.buf == nil {
		g.buf = make([]byte, 0, a.groupSize+groupFileMax)
	}
	g.members = append(g.members, repo.GroupMember{ID: id, Offset: uint32(len(g.buf)), Length: uint32(len(data))})
	g.buf = append(g.buf, data...)
	if len(g.buf) >= a.groupSize || len(g.members) >= groupMaxMembers {
		return true, a.storeGroup(g)
	}
	return true, nil
}

// storeOpenGroups stores the open groups once the walk is over.
func (a *archiver) storeOpenGroups() error {
	if a.groups == nil {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, cap(a.groups))
	for i := range errs {
		g := <-a.groups
		wg.Go(func() { errs[i] = a.storeGroup(g) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// storeGroup hands g's files to the packer and empties g: as a group blob
// and its members, or, for a group of one file, as that file's chunk alone
// (a group of one would be a blob with the file's own ID, and a frame for
// nothing), or, when this backup stored a blob of the group's ID already,
// as its files' chunks alone.
func (a *archiver) storeGroup(g *fileGroup) error {
	defer func() {
		g.buf, g.members = g.buf[:0], g.members[:0]
	}()
	switch len(g.members) {
	case 0:
		return nil
	case 1:
		stored, compressed := a.pipe.CompressGroup(g.stored, g.buf)
		if compressed {
			g.stored = stored[:0]
		}
		return a.packer.Add(repo.DataBlob, g.members[0].ID, blobFlags(compressed), len(g.buf), stored)
	}
	id := a.key.Sum(g.buf)
	if !a.packer.Claim(id) {
		// This backup stored a blob of the group's ID already (a file
		// whose bytes are these files together): a second copy in one
		// pack would make its header and index disagree, and that copy
		// may be a member, which no member may name. The files go whole.
		for _, m := range g.members {
			data := g.buf[m.Offset : m.Offset+m.Length]
			stored, compressed := a.pipe.CompressGroup(g.stored, data)
			if compressed {
				g.stored = stored[:0]
			}
			if err := a.packer.Add(repo.DataBlob, m.ID, blobFlags(compressed), len(data), stored); err != nil {
				return err
			}
		}
		return nil
	}
	stored, compressed := a.pipe.CompressGroup(g.stored, g.buf)
	if compressed {
		g.stored = stored[:0]
	}
	return a.packer.AddGroup(id, blobFlags(compressed), len(g.buf), stored, g.members)
}

// blobFlags are the index flags of a data blob stored compressed or not.
func blobFlags(compressed bool) uint8 {
	if compressed {
		return repo.FlagCompressed
	}
	return 0
}
