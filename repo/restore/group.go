package restore

import (
	"context"
	"fmt"
	"os"
	"runtime/trace"

	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// Grouped small files (repository format 6): a small file backed up into a
// group is one member chunk, a slice of its group's plaintext. Restored
// file by file, each member's group came through the Repository's shared
// cache of decoded groups: a worker waited while another decoded the group
// it needed, and the cache's 24 MiB sat beside the restore's own memory
// (gosrc 5-9 % slower than before grouping, peak RSS +50 MiB: docs/
// benchmarks.md, "Issue 18, session 21"). Instead, the walk reads the
// member frames of each batch of files (Repository.MemberFrames: a ranged
// read per run of a pack's frames) and plans the members of one group
// together (groupPlan): once the walk has seen every member of a group (the
// members' lengths add up to the group's) or has too many files waiting,
// the group goes to one worker as one job, which reads and decodes it once
// into a buffer of its own (StreamBlobs of the group alone), writes each of
// its files from its slice, verified by the file's BLAKE3, and gives the
// buffer back after the last one. No two workers decode one group, and the
// shared cache is not used. A member whose frame, slice or BLAKE3 does not
// check out, and every member of a group that cannot be read, is restored
// by restoreFile as any other file (its own errors, other copies, the slow
// path with chunk IDs checked, SkipDamaged).

// memberFile is a small file whose one chunk is the member id, at loc,
// with frame m.
type memberFile struct {
	job fileJob
	id  chunk.ID
	loc index.Location
	m   chunk.Member
}

// groupJob is the files of one group a worker restores together.
type groupJob struct {
	id    chunk.ID
	files []memberFile
	// size is the group's plaintext length (0: unknown), have the bytes
	// of its distinct members (by offset) the walk has seen.
	size, have uint64
	offs       map[uint32]bool
}

// groupPending bounds the files groupPlan holds back until their groups
// are complete: past it the oldest groups go to the workers as they are
// (a snapshot restored in part, or whose groups other snapshots' files
// share, has groups the walk never completes).
const groupPending = 2048

// groupPlan gathers the member files the walk meets into groups.
type groupPlan struct {
	rs      *restorer
	pending map[chunk.ID]*groupJob
	order   []chunk.ID // pending groups, oldest first
	files   int        // files pending
}

// memberCandidate reports whether the file of job j is restored with its
// group: a small file of one chunk, a member (locs: the batch's locations).
func memberCandidate(j fileJob, locs map[chunk.ID]index.Location) (index.Location, bool) {
	if j.n.Size >= directMinSize || len(j.n.Content) != 1 {
		return index.Location{}, false
	}
	loc, ok := locs[j.n.Content[0]]
	return loc, ok && loc.Flags&repo.FlagMember != 0 && loc.Type == uint8(repo.DataBlob)
}

// add plans the member files of a batch (their frames read together) and
// returns the jobs due: files whose frame could not be read (restored
// alone, which reports why) and the groups now complete, or the oldest
// ones past groupPending.
func (gp *groupPlan) add(ctx context.Context, files []memberFile) ([]job, error) {
	ids := make([]chunk.ID, len(files))
	locs := make([]index.Location, len(files))
	for i, f := range files {
		ids[i], locs[i] = f.id, f.loc
	}
	frames, errs := gp.rs.r.MemberFrames(ctx, gp.rs.sn.Space, ids, locs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var due []job
	var fresh []chunk.ID
	for i, f := range files {
		if errs[i] != nil {
			due = append(due, job{file: f.job})
			continue
		}
		f.m = frames[i]
		g := gp.pending[f.m.Group]
		if g == nil {
			g = &groupJob{id: f.m.Group, offs: map[uint32]bool{}}
			gp.pending[g.id] = g
			gp.order = append(gp.order, g.id)
			fresh = append(fresh, g.id)
		}
		g.files = append(g.files, f)
		gp.files++
		if !g.offs[f.m.Offset] {
			g.offs[f.m.Offset] = true
			g.have += uint64(f.m.Length)
		}
	}
	if len(fresh) > 0 {
		// The groups' sizes, to know when the walk has seen all of a
		// group's members; a group the index lacks is read by its files.
		glocs, _ := gp.rs.r.Locate(gp.rs.sn.Space, fresh)
		for _, id := range fresh {
			if l, ok := glocs[id]; ok {
				gp.pending[id].size = uint64(l.RawLength)
			}
		}
	}
	kept := gp.order[:0]
	for _, id := range gp.order {
		g := gp.pending[id]
		if g.size > 0 && g.have >= g.size {
			due = append(due, gp.take(id))
		} else {
			kept = append(kept, id)
		}
	}
	gp.order = kept
	for gp.files > groupPending && len(gp.order) > 0 {
		due = append(due, gp.take(gp.order[0]))
		gp.order = gp.order[1:]
	}
	return due, nil
}

// take removes pending group id and returns its job.
func (gp *groupPlan) take(id chunk.ID) job {
	g := gp.pending[id]
	delete(gp.pending, id)
	gp.files -= len(g.files)
	return job{group: g}
}

// rest returns the jobs of every group still pending, oldest first.
func (gp *groupPlan) rest() []job {
	var due []job
	for _, id := range gp.order {
		due = append(due, gp.take(id))
	}
	gp.order = nil
	return due
}

// restoreGroup restores the files of group job g: the group is read and
// decoded once, each file written from its slice.
func (rs *restorer) restoreGroup(ctx context.Context, g *groupJob) error {
	data, pooled := rs.readGroup(ctx, g.id)
	defer repo.PutPooled(nil, pooled)
	for _, f := range g.files {
		release, err := rs.opts.Files.acquire(ctx, f.job.n.Size)
		if err != nil {
			return err
		}
		done := false
		if data != nil {
			done, err = rs.writeMember(ctx, f, data)
		}
		if !done && err == nil {
			err = rs.restoreFile(ctx, f.job.n, f.job.path, f.job.rel)
		}
		release()
		if err != nil {
			return err
		}
	}
	return nil
}

// readGroup reads and decodes group id into a buffer of its own (nil when
// it cannot be read: its files are then restored one by one, which say
// why). Its chunk ID is not checked: each file's BLAKE3 is.
func (rs *restorer) readGroup(ctx context.Context, id chunk.ID) ([]byte, *[]byte) {
	var data []byte
	var pooled *[]byte
	opts := repo.StreamOptions{Buffer: repo.BufferPooled, Fallback: true, AroundCache: true, Who: "restore",
		EndToEnd: func(chunk.ID) bool { return true }}
	_ = rs.r.StreamBlobs(ctx, rs.sn.Space, repo.DataBlob, []chunk.ID{id}, opts, func(b repo.StreamBlob) error {
		if b.Err == nil {
			data, pooled = b.Data, b.Pooled
		}
		return nil
	})
	return data, pooled
}

// writeMember writes member file f from its group's plaintext group when
// its slice is there and matches the file's BLAKE3 (done); otherwise
// nothing is written and the caller restores the file alone. err is a
// failure to write the file.
func (rs *restorer) writeMember(ctx context.Context, f memberFile, group []byte) (done bool, err error) {
	n, m := f.job.n, f.m
	end := uint64(m.Offset) + uint64(m.Length)
	if end > uint64(len(group)) || uint64(m.Length) != n.Size || n.BLAKE3 == nil {
		return false, nil
	}
	data := group[m.Offset:end:end]
	if repo.Hash(chunk.Sum256(data)) != *n.BLAKE3 {
		return false, nil
	}
	region := trace.StartRegion(ctx, "restore file")
	defer region.End()
	if trace.IsEnabled() {
		trace.Logf(ctx, "restore file", "%s %s %d", rs.sn.Space, f.job.rel, n.Size)
	}
	rs.opts.Progress.Bytes.Add(int64(len(data)))
	var holes []bool
	if chunk.IsZero(data) {
		holes = holeBlocks([][2]int64{{0, int64(len(data))}}, int64(len(data)))
	}
	p := f.job.path
	fd, err := unix.Open(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return true, fmt.Errorf("restore %s: %w", p, &os.PathError{Op: "open", Path: p, Err: err})
	}
	err = rs.fillSmall(fd, n, p, f.job.rel, data, holes)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("restore %s: %w", p, &os.PathError{Op: "close", Path: p, Err: cerr})
	}
	return true, err
}
