package walarchive

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
)

// goldenPiecesFile is the content of testdata/walfile-v1-pieces.json: a run
// file whose open segment's tail is two pieces and a last chunk after one
// final 1 MiB chunk, and a sealed segment without pieces (the field absent,
// as in every record before pieces existed).
func goldenPiecesFile() ArchiveFile {
	id := func(b byte) chunk.ID {
		var c chunk.ID
		for i := range c {
			c[i] = b
		}
		return c
	}
	var sum repo.Hash
	sum[0] = 0xab
	return ArchiveFile{Version: 1, Space: "tenant_01", Host: "db-1", Time: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC), Seq: 7,
		Segments: []WALSegmentRecord{
			{Name: "wal-0000000000000001.log", FirstSeq: 1, LastSeq: 100, FirstTS: 10, LastTS: 1000, Entries: 100, Size: 1500,
				Chunks: []WALChunk{{ID: id(1), Size: 1000}, {ID: id(2), Size: 500}}, BLAKE3: sum, Sealed: true},
			{Name: "wal-0000000000000065.log", FirstSeq: 101, LastSeq: 130, FirstTS: 1010, LastTS: 1300, Entries: 30, Size: 1048576 + 700,
				Chunks: []WALChunk{{ID: id(3), Size: 1048576}, {ID: id(4), Size: 400}, {ID: id(5), Size: 200}, {ID: id(6), Size: 100}},
				BLAKE3: sum, Pieces: 2},
		}}
}

// TestWALArchiveFileGolden pins the JSON of a wal/ file with pieces: the
// field is written only when a record has pieces (records without stay
// byte-identical to those of older binaries), it reads back, and the tail
// starts after the last final chunk.
func TestWALArchiveFileGolden(t *testing.T) {
	g, err := os.ReadFile("testdata/walfile-v1-pieces.json")
	if err != nil {
		t.Fatal(err)
	}
	f := goldenPiecesFile()
	got, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), g) {
		t.Errorf("encoded:\n%s\nwant:\n%s", got, g)
	}
	if strings.Count(string(g), `"pieces"`) != 1 {
		t.Errorf("golden file: want one pieces field (the sealed record has none)")
	}
	var back ArchiveFile
	if err := json.Unmarshal(g, &back); err != nil {
		t.Fatal(err)
	}
	if err := checkWALRecords("wal/x/y", back.Segments); err != nil {
		t.Fatal(err)
	}
	if i, off := back.Segments[1].TailStart(); i != 1 || off != 1048576 || back.Segments[1].Pieces != 2 {
		t.Errorf("tail of the open record starts at chunk %d offset %d (pieces %d), want 1 and 1048576", i, off, back.Segments[1].Pieces)
	}
	if i, off := back.Segments[0].TailStart(); i != 1 || off != 1000 {
		t.Errorf("tail of the sealed record starts at chunk %d offset %d, want 1 and 1000", i, off)
	}
	// A reader that predates pieces (the record without the field) sees
	// the same chunks in the same order: it restores the same bytes.
	type oldChunk struct {
		ID   chunk.ID `json:"id"`
		Size uint32   `json:"size"`
	}
	var old struct {
		Version  int `json:"version"`
		Segments []struct {
			Size   int64      `json:"size"`
			Chunks []oldChunk `json:"chunks"`
		} `json:"segments"`
	}
	if err := json.Unmarshal(g, &old); err != nil || old.Version != 1 {
		t.Fatalf("old reader: version %d, %v", old.Version, err)
	}
	for i, s := range old.Segments {
		var total int64
		for k, c := range s.Chunks {
			total += int64(c.Size)
			if c.ID != back.Segments[i].Chunks[k].ID {
				t.Fatalf("old reader: segment %d chunk %d differs", i, k)
			}
		}
		if total != s.Size {
			t.Fatalf("old reader: segment %d chunks hold %d bytes, record %d", i, total, s.Size)
		}
	}
}

// Records whose pieces are not followed by a last chunk, or negative, are
// corrupt.
func TestWALRecordPiecesRejected(t *testing.T) {
	f := goldenPiecesFile()
	for _, n := range []int{-1, 4, 5} {
		r := f.Segments[1]
		r.Pieces = n
		err := checkWALRecords("wal/x/y", []WALSegmentRecord{r})
		if err == nil || !strings.Contains(err.Error(), "pieces before the last of its 4 chunks") {
			t.Errorf("pieces %d: %v", n, err)
		}
	}
}
