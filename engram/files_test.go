package engram

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGolden pins the bytes of checkpoint.json and metadata.json: the
// encoders produce the golden files exactly, and the parsers read them back.
func TestGolden(t *testing.T) {
	cpGolden, err := os.ReadFile("testdata/golden/checkpoint.json")
	if err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{Sequence: 1234567, TimestampNS: 1793491200123456789}
	if got := EncodeCheckpoint(cp); !bytes.Equal(got, cpGolden) {
		t.Errorf("EncodeCheckpoint = %q, want %q", got, cpGolden)
	}
	if got, err := ParseCheckpoint(cpGolden); err != nil || got != cp {
		t.Errorf("ParseCheckpoint(golden) = %+v, %v", got, err)
	}

	mdGolden, err := os.ReadFile("testdata/golden/metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	md := NewMetadata([]string{"space-a", "space-b"}, created, 1<<20, 768)
	got, err := EncodeMetadata(md)
	if err != nil || !bytes.Equal(got, mdGolden) {
		t.Errorf("EncodeMetadata = %q, %v, want %q", got, err, mdGolden)
	}
	back, err := ParseMetadata(mdGolden)
	if err != nil {
		t.Fatal(err)
	}
	if ids := back.IDs(); len(ids) != 2 || ids[0] != "space-a" || ids[1] != "space-b" || back.Dim != 768 ||
		back.WALSegmentSize != 1<<20 || back.PageSize != PageSize || back.Spaces[1].CreatedNS != created {
		t.Errorf("ParseMetadata(golden) = %+v", back)
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"sequence":1}`, `{"timestamp_ns":1}`, `{"sequence":null,"timestamp_ns":1}`,
		`{"sequence":-1,"timestamp_ns":1}`, `{"sequence":1,"timestamp_ns":1} x`, `[]`, `{"sequence":"1","timestamp_ns":1}`} {
		if c, err := ParseCheckpoint([]byte(in)); err == nil {
			t.Errorf("ParseCheckpoint(%q) = %+v, want an error", in, c)
		}
	}
	if c, err := ParseCheckpoint([]byte(`{"timestamp_ns": -5, "sequence": 0, "extra": true}`)); err != nil || c != (Checkpoint{0, -5}) {
		t.Errorf("ParseCheckpoint with an extra field = %+v, %v", c, err)
	}
}

func TestReadCheckpoint(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadCheckpoint(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v, want fs.ErrNotExist", err)
	}
	os.WriteFile(filepath.Join(dir, CheckpointName), []byte(`{"sequence": 3}`), 0o644)
	if _, err := ReadCheckpoint(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CheckpointName)) {
		t.Fatalf("malformed: %v, want an error naming the file", err)
	}
	os.WriteFile(filepath.Join(dir, CheckpointName), EncodeCheckpoint(Checkpoint{7, 8}), 0o644)
	if c, err := ReadCheckpoint(dir); err != nil || c != (Checkpoint{7, 8}) {
		t.Fatalf("ReadCheckpoint = %+v, %v", c, err)
	}
}

func TestParseMetadataRejects(t *testing.T) {
	ok := `{"format":"engram-data-dir","version":1,"dim":4,"spaces":[{"id":"a"}]}`
	if _, err := ParseMetadata([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		`{`:                          "unexpected end",
		`{"format":"x","version":1}`: `format "x" version 1`,
		`{"format":"engram-data-dir","version":2}`:                                  "version 2",
		`{"format":"engram-data-dir","version":1,"dim":70000}`:                      "bad dim 70000",
		`{"format":"engram-data-dir","version":1,"page_size":512}`:                  "page_size 512",
		`{"format":"engram-data-dir","version":1,"wal_segment_size":-1}`:            "wal_segment_size -1",
		`{"format":"engram-data-dir","version":1,"spaces":[{"id":"A"}]}`:            `space id "A": must match [a-z0-9_-]{1,64}`,
		`{"format":"engram-data-dir","version":1,"spaces":[{"id":"a"},{"id":"a"}]}`: `space "a" listed twice`,
	} {
		if _, err := ParseMetadata([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMetadata(%s) = %v, want %q", in, err, want)
		}
	}
	dir := t.TempDir()
	if _, err := ReadMetadata(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadMetadata of an empty dir: %v", err)
	}
	os.WriteFile(MetadataPath(dir), []byte(`{"format":"x"}`), 0o644)
	if _, err := ReadMetadata(dir); err == nil || !strings.HasPrefix(err.Error(), MetadataPath(dir)+": ") {
		t.Errorf("ReadMetadata error %v does not name the file", err)
	}
}

func TestLayout(t *testing.T) {
	for got, want := range map[string]string{
		MetadataPath("/d"):        "/d/metadata.json",
		SpacesDir("/d"):           "/d/spaces",
		SpaceDir("/d", "s"):       "/d/spaces/s",
		WALDir("/d", "s"):         "/d/spaces/s/wal",
		HotDir("/d", "s"):         "/d/spaces/s/hot",
		WarmDir("/d", "s"):        "/d/spaces/s/warm",
		WarmPath("/d", "s"):       "/d/spaces/s/warm/warm_tier.dat",
		ColdDir("/d", "s"):        "/d/spaces/s/cold",
		CheckpointPath("/d", "s"): "/d/spaces/s/checkpoint.json",
		SpaceRel("s"):             "spaces/s",
		ColdSegmentName(12):       "seg-000012.col",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if n, ok := ParseColdSegmentName("seg-1234567.col"); !ok || n != 1234567 {
		t.Errorf("ParseColdSegmentName = %d, %v", n, ok)
	}
	for _, bad := range []string{"seg-.col", "seg-1.col.tmp", "xseg-1.col", "seg-a.col"} {
		if _, ok := ParseColdSegmentName(bad); ok {
			t.Errorf("ParseColdSegmentName(%q) accepted", bad)
		}
	}
}
