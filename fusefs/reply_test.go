package fusefs

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/chunk"
	"memento/repo/lru"
)

// pinnedChunks caches n chunks of size bytes each (filled with their
// index) in a cache whose release records what it was handed, claims them
// pinned as a read does, and returns the cache, the pins and the values.
func pinnedChunks(t *testing.T, n, size int) (*lru.Cache[chunk.ID, []byte], []*chunkEntry, [][]byte, *int) {
	t.Helper()
	c := lru.New[chunk.ID](1<<30, func(b []byte) int64 { return int64(len(b)) })
	released := 0
	c.Release = func([]byte) { released++ }
	ids := make([]chunk.ID, n)
	for k := range ids {
		ids[k][0], ids[k][1] = byte(k), byte(k>>8)
	}
	var pins []*chunkEntry
	var data [][]byte
	c.ClaimAll(ids, true, func(k int, e *chunkEntry, st lru.State) {
		if st != lru.Own {
			t.Fatalf("chunk %d: claim state %v, want lru.Own", k, st)
		}
		pins = append(pins, e)
	})
	for k, e := range pins {
		c.Fill(e, bytes.Repeat([]byte{byte(k)}, size), nil)
		data = append(data, e.Value())
	}
	return c, pins, data, &released
}

// The reply to a read is the chunks' own bytes, cut to the read's range,
// and keeps them pinned until go-fuse has written it (Done); a reply of
// more chunks than one writev takes is copied into the request's buffer
// and unpinned at once. Either way its bytes are those of the range.
func TestReadReply(t *testing.T) {
	for _, tt := range []struct {
		chunks, size, skip, want int
		vectored                 bool
	}{
		{1, 1 << 20, 0, 1 << 20, true},             // a WAL chunk, read whole
		{1, 4 << 20, 3<<20 + 17, 1<<20 - 17, true}, // the tail of a cold chunk
		{33, 32 << 10, 0, 1 << 20, true},           // a page file's chunks, the last one cut
		{2, 3 << 20, 3<<20 - 100, 1 << 20, true},
		{maxReplyVecs + 1, 2 << 10, 5, maxReplyVecs*(2<<10) - 5, false},
	} {
		t.Run(fmt.Sprintf("%dx%d+%d", tt.chunks, tt.size, tt.skip), func(t *testing.T) {
			c, pins, data, released := pinnedChunks(t, tt.chunks, tt.size)
			var all []byte
			for _, d := range data {
				all = append(all, d...)
			}
			want := all[tt.skip : tt.skip+tt.want]
			for _, e := range pins { // the cache drops them meanwhile: only the pins hold them
				c.Forget([]chunk.ID{e.Key()})
			}
			first := &data[0][tt.skip]
			dest := make([]byte, 1<<20)
			res := newReply(c, pins, data, tt.skip, tt.want, dest)
			if res.Size() != tt.want {
				t.Fatalf("Size() = %d, want %d", res.Size(), tt.want)
			}
			got, st := res.Bytes(make([]byte, 0, 1<<20))
			if !st.Ok() || !bytes.Equal(got, want) {
				t.Fatalf("Bytes: %d bytes (status %v), want the %d bytes of the range", len(got), st, len(want))
			}
			cr, ok := res.(*chunkReply)
			if ok != tt.vectored {
				t.Fatalf("vectored reply = %v, want %v", ok, tt.vectored)
			}
			if !ok {
				if *released != tt.chunks {
					t.Fatalf("copied reply: %d chunks released, want all %d", *released, tt.chunks)
				}
				return
			}
			vecs, st := cr.Slices()
			if !st.Ok() || !bytes.Equal(bytes.Join(vecs, nil), want) {
				t.Fatalf("Slices: not the range's bytes (status %v)", st)
			}
			if &vecs[0][0] != first {
				t.Fatal("Slices: a copy, not the chunk's own bytes")
			}
			if *released != 0 {
				t.Fatalf("%d chunks released before the reply was written", *released)
			}
			res.Done()
			res.Done() // go-fuse may call it on more than one path
			if *released != tt.chunks {
				t.Fatalf("after Done: %d chunks released, want %d", *released, tt.chunks)
			}
		})
	}
}

// go-fuse sends a reply with a Slices method by writev, without copying it
// into its own buffer first; this fails if that interface changes.
func TestChunkReplyIsVectored(t *testing.T) {
	var r fuse.ReadResult = &chunkReply{}
	if _, ok := r.(interface {
		Slices() ([][]byte, fuse.Status)
	}); !ok {
		t.Fatal("chunkReply has no Slices method")
	}
}
