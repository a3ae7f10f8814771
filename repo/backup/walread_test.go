package backup

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"memento/walreplay"
)

// readWALBatch fills every buffer with its file's bytes at its offset, in
// submissions of the ring's size and more (300 reads over two files), and
// reports a read past the end as not whole.
func TestReadWALBatch(t *testing.T) {
	dir := t.TempDir()
	var files []*os.File
	var data [][]byte
	for i := range 2 {
		b := make([]byte, 1<<20)
		rng := rand.New(rand.NewPCG(uint64(i), 9))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files, data = append(files, f), append(data, b)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rs := make([]walreplay.ReadAt, 300)
	for k := range rs {
		n := 1 + rng.IntN(5000)
		rs[k] = walreplay.ReadAt{File: files[k%2], Off: int64(rng.IntN(1<<20 - n)), Buf: make([]byte, n)}
	}
	rs[7].Off = 1<<20 - 10 // 10 bytes left, more asked
	if !readWALBatch(rs) {
		t.Fatal("readWALBatch: the ring failed")
	}
	for k, q := range rs {
		if k == 7 {
			if q.OK {
				t.Fatal("a read past the end of the file reported whole")
			}
			continue
		}
		if !q.OK || !bytes.Equal(q.Buf, data[k%2][q.Off:q.Off+int64(len(q.Buf))]) {
			t.Fatalf("read %d (%d bytes at %d): ok %v, bytes equal %v", k, len(q.Buf), q.Off, q.OK, bytes.Equal(q.Buf, data[k%2][q.Off:q.Off+int64(len(q.Buf))]))
		}
	}
}
