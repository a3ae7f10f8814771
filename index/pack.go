package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"memento/chunk"
)

// BlobInfo is one blob as a repository index file lists it.
type BlobInfo struct {
	ID        chunk.ID
	Type      uint8
	Flags     uint8
	Offset    uint32
	Length    uint32
	RawLength uint32
}

// PackInfo is one pack as a repository index file lists it: its blobs all
// belong to one space.
type PackInfo struct {
	ID    [32]byte
	Size  int64
	Space string
	Blobs []BlobInfo
}

// PackSummary is what the cache keeps about a pack itself (its blobs are in
// the space's bucket).
type PackSummary struct {
	ID    [32]byte
	Size  int64
	Space string
	Blobs int      // number of blobs the pack holds
	Files []string // repository index files that list the pack
}

// maxSpaceLen bounds a space name so it fits the one-byte length prefix of a
// pack record; real space ids are at most 64 bytes.
const maxSpaceLen = math.MaxUint8

// validate checks a pack from a repository index file before it is merged,
// so a damaged index file cannot plant locations pointing outside a pack.
func (p *PackInfo) validate() error {
	switch {
	case p.Space == "":
		return errors.New("empty space")
	case len(p.Space) > maxSpaceLen:
		return fmt.Errorf("space name of %d bytes, at most %d", len(p.Space), maxSpaceLen)
	case p.Size < 0:
		return fmt.Errorf("negative size %d", p.Size)
	case len(p.Blobs) > math.MaxUint32:
		return fmt.Errorf("%d blobs", len(p.Blobs))
	}
	for _, b := range p.Blobs {
		if end := int64(b.Offset) + int64(b.Length); end > p.Size {
			return fmt.Errorf("blob %s at %d+%d ends beyond the %d-byte pack", b.ID, b.Offset, b.Length, p.Size)
		}
	}
	return nil
}

// Pack record: size int64 | blob count uint32 | space length uint8 | space |
// then for every index file listing the pack: name length uint16 | name.
func encodePack(s PackSummary) []byte {
	out := make([]byte, 0, 13+len(s.Space)+len(s.Files)*72)
	out = binary.LittleEndian.AppendUint64(out, uint64(s.Size))
	out = binary.LittleEndian.AppendUint32(out, uint32(s.Blobs))
	out = append(out, byte(len(s.Space)))
	out = append(out, s.Space...)
	for _, f := range s.Files {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out
}

// decodePack parses a pack record read from disk; id is the record's key.
func decodePack(id, b []byte) (PackSummary, error) {
	var s PackSummary
	if len(id) != len(s.ID) {
		return s, fmt.Errorf("pack key of %d bytes, want %d", len(id), len(s.ID))
	}
	copy(s.ID[:], id)
	if len(b) < 13 {
		return s, fmt.Errorf("pack %x: record of %d bytes is too short", id, len(b))
	}
	size := binary.LittleEndian.Uint64(b)
	if size > math.MaxInt64 {
		return s, fmt.Errorf("pack %x: size %d out of range", id, size)
	}
	s.Size = int64(size)
	s.Blobs = int(binary.LittleEndian.Uint32(b[8:]))
	n := int(b[12])
	b = b[13:]
	if len(b) < n {
		return s, fmt.Errorf("pack %x: space name truncated", id)
	}
	s.Space, b = string(b[:n]), b[n:]
	for len(b) > 0 {
		if len(b) < 2 {
			return s, fmt.Errorf("pack %x: file name length truncated", id)
		}
		n := int(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if len(b) < n {
			return s, fmt.Errorf("pack %x: file name truncated", id)
		}
		s.Files, b = append(s.Files, string(b[:n])), b[n:]
	}
	return s, nil
}

// addFile records that file lists the pack; it reports whether it changed.
func (s *PackSummary) addFile(file string) bool {
	if slices.Contains(s.Files, file) {
		return false
	}
	s.Files = append(s.Files, file)
	return true
}
