package walarchive

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzWALArchiveFile feeds arbitrary JSON to the wal/ file decoder, the
// record checks and the merge: whatever an authenticated but buggy (or
// future) writer produced must be rejected or merged, never panic.
func FuzzWALArchiveFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"space":"s","segments":[{"name":"wal-0000000000000001.log","first_seq":1,"last_seq":2,"entries":2,"size":10,"chunks":[{"id":"` +
		"0000000000000000000000000000000000000000000000000000000000000000" + `","size":10}]}]}`))
	f.Add([]byte(`{"version":1,"segments":[{"name":"../x","size":-1}]}`))
	f.Add([]byte(`{"version":2}`))
	if g, err := os.ReadFile("testdata/walfile-v1-pieces.json"); err == nil {
		f.Add(g) // records with pieces
	}
	f.Add([]byte(`{"version":1,"space":"s","segments":[{"name":"wal-0000000000000001.log","first_seq":1,"last_seq":1,"entries":1,"size":3,"pieces":9,"chunks":[{"id":"` +
		"0000000000000000000000000000000000000000000000000000000000000000" + `","size":3}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var file ArchiveFile
		if json.Unmarshal(b, &file) != nil {
			return
		}
		if checkWALRecords("wal/x/y", file.Segments) != nil {
			return
		}
		w := newWALArchive(Legacy("s"))
		w.merge(file.Segments)
		for _, r := range w.Runs() {
			if r.LastSeq < r.FirstSeq {
				t.Fatalf("inverted run %+v from valid records", r)
			}
		}
		w.End()
		for _, s := range w.Segments() {
			if i, off := s.TailStart(); i < 0 || i >= len(s.Chunks) || off < 0 || off > s.Size {
				t.Fatalf("tail of a valid record %+v starts at chunk %d offset %d", s, i, off)
			}
		}
	})
}
