package repo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"memento/chunk"
)

func TestZZTiming(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	p := filepath.Join(t.TempDir(), "huge")
	os.WriteFile(p, nil, 0o644)
	os.Truncate(p, 1<<30)
	f, _ := os.Open(p)
	t0 := time.Now()
	n, _ := io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
	t.Logf("read %d in %v", n, time.Since(t0))
	f.Seek(0, 0)
	t0 = time.Now()
	ch, _ := chunk.NewChunker(f, tr.pol, chunk.ParamsDefault)
	buf := make([]byte, 8<<20)
	k := 0
	for {
		_, err := ch.Next(buf[:0])
		if err != nil {
			break
		}
		k++
	}
	t.Logf("chunk %d in %v", k, time.Since(t0))
	f.Seek(0, 0)
	pipe := chunk.NewPipeline(0, chunk.DefaultLevel)
	t0 = time.Now()
	pipe.Split(context.Background(), f, tr.pol, chunk.ParamsDefault, tr.chunkKey(""), nil, func(c *chunk.Chunk) error { return nil })
	t.Logf("split in %v", time.Since(t0))
}
