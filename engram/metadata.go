package engram

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Metadata is DIR/metadata.json, the space registry. Besides the spaces it
// records the WAL segment size and embedding dimension the database was
// configured with.
type Metadata struct {
	Format         string      `json:"format"`
	Version        int         `json:"version"`
	WALSegmentSize int64       `json:"wal_segment_size"`
	PageSize       int         `json:"page_size"`
	Dim            int         `json:"dim"`
	Spaces         []SpaceMeta `json:"spaces"`
}

// SpaceMeta is one space of the registry.
type SpaceMeta struct {
	ID        string `json:"id"`
	CreatedNS int64  `json:"created_ns"`
	Created   string `json:"created"` // RFC 3339 with nanoseconds, for humans
}

// MetadataFormat is metadata.json's "format"; the only version is 1.
const MetadataFormat = "engram-data-dir"

// NewMetadata returns the registry of a new data dir with the spaces ids,
// all created at createdNS.
func NewMetadata(ids []string, createdNS int64, segSize int64, dim int) *Metadata {
	m := &Metadata{Format: MetadataFormat, Version: 1, WALSegmentSize: segSize, PageSize: PageSize, Dim: dim}
	for _, id := range ids {
		m.Spaces = append(m.Spaces, SpaceMeta{ID: id, CreatedNS: createdNS,
			Created: time.Unix(0, createdNS).UTC().Format(time.RFC3339Nano)})
	}
	return m
}

// IDs returns the space ids, in registry order.
func (m *Metadata) IDs() []string {
	ids := make([]string, len(m.Spaces))
	for i, s := range m.Spaces {
		ids[i] = s.ID
	}
	return ids
}

// ParseMetadata decodes and validates metadata.json: format and version,
// dim (0..65535), a non-negative segment size, page size 0 or PageSize, and
// valid, distinct space ids. The error does not name the file.
func ParseMetadata(b []byte) (*Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.Format != MetadataFormat || m.Version != 1 {
		return nil, fmt.Errorf("format %q version %d, want %q version 1", m.Format, m.Version, MetadataFormat)
	}
	if m.Dim < 0 || m.Dim > 65535 || m.WALSegmentSize < 0 || (m.PageSize != 0 && m.PageSize != PageSize) {
		return nil, fmt.Errorf("bad dim %d, wal_segment_size %d or page_size %d", m.Dim, m.WALSegmentSize, m.PageSize)
	}
	seen := map[string]bool{}
	for _, s := range m.Spaces {
		if !spaceIDRe.MatchString(s.ID) {
			return nil, fmt.Errorf("space id %q: must match %s", s.ID, SpaceIDPattern)
		}
		if seen[s.ID] {
			return nil, fmt.Errorf("space %q listed twice", s.ID)
		}
		seen[s.ID] = true
	}
	return &m, nil
}

// EncodeMetadata is the content of metadata.json for m: JSON indented by two
// spaces, ending in a newline.
func EncodeMetadata(m *Metadata) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadMetadata reads and validates DIR/metadata.json; errors name the file.
// A missing file is reported wrapping fs.ErrNotExist.
func ReadMetadata(dataDir string) (*Metadata, error) {
	p := MetadataPath(dataDir)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m, err := ParseMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}
