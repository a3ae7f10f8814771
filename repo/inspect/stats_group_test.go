package inspect_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/inspect"
	"memento/repo/repotest"
)

// TestStatsGroupedFiles: the stored size of a snapshot of grouped small
// files (format 6) is its members' frames plus their group's stored size,
// counted once: a member's own stored form is a frame of some 80 bytes.
func TestStatsGroupedFiles(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	c := repotest.NewCrafter(t, tr.Repository, "")
	var names []string
	var files [][]byte
	raw := 0
	for i := range 4 {
		names = append(names, fmt.Sprintf("f%d", i))
		files = append(files, []byte(strings.Repeat(fmt.Sprintf("line %d of a small file\n", i), 50)))
		raw += len(files[i])
	}
	nodes, gid := c.Group(names, files)
	sn := c.Snapshot(c.Tree(nodes...))
	ids := []chunk.ID{gid}
	for _, n := range nodes {
		ids = append(ids, n.Content[0])
	}
	locs, err := tr.Locate("", ids)
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(0)
	for _, id := range ids {
		want += uint64(locs[id].Length)
	}
	st, err := inspect.ComputeStats(ctx, tr.Repository, []*repo.Snapshot{sn}, inspect.StatsOptions{})
	if err != nil || st.DataBlobs != 4 || st.DataRawBytes != uint64(raw) || st.DataStoredBytes != want {
		t.Fatalf("stats: %+v %v, want 4 blobs, %d raw, %d stored (frames and group)", st, err, raw, want)
	}
}
