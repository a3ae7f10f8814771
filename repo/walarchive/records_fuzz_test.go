package walarchive

import (
	"encoding/json"
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
		w.Segments()
	})
}
