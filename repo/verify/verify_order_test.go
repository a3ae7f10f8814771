package verify

import (
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// orderLayout is three files of four 1 MiB chunks written by a backup
// that read them at once: pack k holds chunk k of every file, but in a
// rotated order, so that taking the files one after another would need
// every pack for the first file before the second file's first chunk.
func orderLayout() ([]WalkFile, map[chunk.ID]index.Location, map[[32]byte]*packJob, []*packJob) {
	var files []WalkFile
	locs := map[chunk.ID]index.Location{}
	byPack := map[[32]byte]*packJob{}
	var jobs []*packJob
	for f := range 3 {
		files = append(files, WalkFile{Rel: "f" + string(rune('a'+f)), Node: &repo.Node{Type: repo.NodeFile}})
	}
	for k := range 4 {
		var p [32]byte
		p[0] = byte(k + 1)
		j := &packJob{pack: p}
		byPack[p] = j
		for f := range 3 {
			var id chunk.ID
			id[0], id[1] = byte(f+1), byte(k+1)
			// File f's chunk k lies in pack (k+f)%4: file a's chunks in
			// packs 1,2,3,4, file b's in 2,3,4,1, file c's in 3,4,1,2.
			var q [32]byte
			q[0] = byte((k+f)%4 + 1)
			l := index.Location{Pack: q, Offset: uint32(f), RawLength: 1 << 20}
			locs[id] = l
			files[f].Node.Content = append(files[f].Node.Content, id)
			files[f].Node.Size += 1 << 20
			_ = j
		}
	}
	for f := range files {
		for _, id := range files[f].Node.Content {
			l := locs[id]
			j := byPack[l.Pack]
			if len(jobs) < 4 && !containsJob(jobs, j) {
				jobs = append(jobs, j)
			}
			j.blobs = append(j.blobs, packBlob{id, l})
		}
	}
	return files, locs, byPack, jobs
}

func containsJob(jobs []*packJob, j *packJob) bool {
	for _, x := range jobs {
		if x == j {
			return true
		}
	}
	return false
}

// TestOrderJobsAdvancesFilesTogether: the files advance together (the
// file furthest behind picks the next pack), and every pack is read once.
func TestOrderJobsAdvancesFilesTogether(t *testing.T) {
	files, locs, byPack, jobs := orderLayout()
	got := orderJobs(files, locs, byPack, jobs)
	var packs []byte
	for _, j := range got {
		packs = append(packs, j.pack[0])
	}
	// a needs 1; b (nothing yet) needs 2; c needs 3; then a (1 MiB) needs
	// 2, which is read: a, b and c each have two chunks, a needs 3 (read),
	// ... the fourth pack comes last.
	if want := []byte{1, 2, 3, 4}; string(packs) != string(want) {
		t.Fatalf("pack order %v, want %v", packs, want)
	}
	// A file whose chunks are all unreadable (not in byPack) and an empty
	// file are skipped; a job no file reaches is kept at the end.
	var lone [32]byte
	lone[0] = 9
	extra := &packJob{pack: lone}
	var missing chunk.ID
	missing[0] = 0xee
	files = append(files, WalkFile{Rel: "gone", Node: &repo.Node{Type: repo.NodeFile, Content: []chunk.ID{missing}}}, WalkFile{Rel: "empty", Node: &repo.Node{Type: repo.NodeFile}})
	got = orderJobs(files, locs, byPack, append(jobs, extra))
	if len(got) != 5 || got[4] != extra {
		t.Fatalf("got %d jobs, last %x; want 5 ending with the unreached one", len(got), got[len(got)-1].pack[:1])
	}
}

// TestEvictDropsChunksNeededLast: over the budget, the chunks whose next
// use is farthest are dropped first, down to seven eighths of it.
func TestEvictDropsChunksNeededLast(t *testing.T) {
	c := &dataCheck{v: &Verifier{opts: VerifyOptions{BufferBytes: 8 << 10}}, buf: map[chunk.ID]*[]byte{}, evicted: map[chunk.ID]bool{}}
	var ids []chunk.ID
	c.next = map[chunk.ID][]int{}
	for i := range 4 {
		var id chunk.ID
		id[0] = byte(i + 1)
		ids = append(ids, id)
		b := chunk.Buffer(3 << 10)
		*b = (*b)[:3<<10]
		c.buf[id] = b
		c.bufBytes += 3 << 10
		c.next[id] = []int{[]int{40, 10, 30, 20}[i]}
	}
	c.evict() // 12 KiB held, at most 7 KiB may stay: two chunks go
	if !c.evicted[ids[0]] || !c.evicted[ids[2]] || c.evicted[ids[1]] || c.evicted[ids[3]] {
		t.Fatalf("evicted %v, want the chunks next used at 40 and 30", c.evicted)
	}
	if c.bufBytes != 6<<10 || len(c.buf) != 2 {
		t.Fatalf("held %d bytes in %d chunks", c.bufBytes, len(c.buf))
	}
}

// TestPlanUses: a use can be consumed once every earlier chunk of its file
// has arrived.
func TestPlanUses(t *testing.T) {
	id := func(b byte) chunk.ID { var x chunk.ID; x[0] = b; return x }
	files := []WalkFile{
		{Rel: "a", Node: &repo.Node{Content: []chunk.ID{id(3), id(1), id(2)}}},
		{Rel: "b", Node: &repo.Node{Content: []chunk.ID{id(1), id(4)}}},
	}
	c := &dataCheck{}
	c.planUses([]chunk.ID{id(1), id(2), id(3), id(4)}, files)
	want := map[byte][]int{1: {0, 2}, 2: {2}, 3: {2}, 4: {3}}
	for b, ts := range want {
		if got := c.next[id(b)]; len(got) != len(ts) || (len(ts) > 1 && got[1] != ts[1]) || got[0] != ts[0] {
			t.Errorf("chunk %d: uses at %v, want %v", b, got, ts)
		}
	}
}

// TestOrderJobsStartsFilesAsPacksReachThem: files a and b were backed up
// together into packs 1 and 2, then c and d into packs 3 and 4. c is not
// started (pack 3 read) before a and b are complete, so that the files in
// progress stay as few as the backup's.
func TestOrderJobsStartsFilesAsPacksReachThem(t *testing.T) {
	locs := map[chunk.ID]index.Location{}
	byPack := map[[32]byte]*packJob{}
	var jobs []*packJob
	var files []WalkFile
	for f := range 4 {
		files = append(files, WalkFile{Rel: string(rune('a' + f)), Node: &repo.Node{Type: repo.NodeFile}})
		for k := range 2 {
			var id chunk.ID
			id[0], id[1] = byte(f+1), byte(k+1)
			var p [32]byte
			p[0] = byte(f/2*2 + k + 1)
			l := index.Location{Pack: p, Offset: uint32(f), RawLength: 1 << 20}
			locs[id] = l
			files[f].Node.Content = append(files[f].Node.Content, id)
			j := byPack[p]
			if j == nil {
				j = &packJob{pack: p}
				byPack[p] = j
				jobs = append(jobs, j)
			}
			j.blobs = append(j.blobs, packBlob{id, l})
		}
	}
	var packs []byte
	for _, j := range orderJobs(files, locs, byPack, jobs) {
		packs = append(packs, j.pack[0])
	}
	if want := []byte{1, 2, 3, 4}; string(packs) != string(want) {
		t.Fatalf("pack order %v, want %v", packs, want)
	}
}
