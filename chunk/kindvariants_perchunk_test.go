//go:build study

package chunk

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestWALPerChunk prints, for the first chunks of every WAL segment under
// $CHUNK_STUDY_DIR, zstd's ratio and the literals-only frame's (a study
// tool: set CHUNK_STUDY_PERCHUNK=1).
func TestWALPerChunk(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" || os.Getenv("CHUNK_STUDY_PERCHUNK") == "" {
		t.Skip()
	}
	buf := make([]byte, 16<<20)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if kindOf(filepath.ToSlash(rel)) != kindWAL {
			return nil
		}
		f, _ := os.Open(p)
		defer f.Close()
		c, _ := NewChunker(f, testPol, ParamsFor(rel))
		defer c.Release()
		for i := 0; ; i++ {
			raw, err := c.Next(buf)
			if err == io.EOF {
				return nil
			}
			z := encoder(LevelFastest).EncodeAll(raw, nil)
			h := appendLitFrame(nil, raw)
			if i < 6 {
				t.Logf("%s #%d %d zstd %.4f lit %.4f", rel, i, len(raw), float64(len(z))/float64(len(raw)), float64(len(h))/float64(len(raw)))
			}
		}
	})
}
