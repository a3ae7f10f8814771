package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dustin/go-humanize/english"

	"memento/chunk"
	"memento/index"
)

// BlobType tells data chunks from tree blobs inside a pack.
type BlobType uint8

const (
	DataBlob BlobType = 1
	TreeBlob BlobType = 2
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// Blob flags, stored per blob in the pack header and the index.
const (
	FlagCompressed uint8 = 1 << 0 // stored bytes are zstd (chunk.Decompress)
	// FlagDelta: the stored bytes are a delta frame (chunk.ParseDelta): a
	// base chunk's ID and the 4 KiB pages that differ from it. Format 4
	// (Config.DeltaBlobs); never together with FlagCompressed.
	FlagDelta uint8 = 1 << 1
	// FlagMember: the stored bytes are a member frame (chunk.ParseMember):
	// a small file's chunk stored as a slice of a group blob's plaintext
	// (an ordinary data blob holding several small files). Format 6
	// (Config.GroupedFiles); never together with FlagCompressed or
	// FlagDelta. A group is never itself a member or a delta (depth 1).
	FlagMember uint8 = 1 << 2
)

// Pack layout, version 1 (docs/repository-format.md):
//
//	blob 0 | blob 1 | ... | sealed header | trailer
//
// trailer (12 bytes): u32 sealed header length | u16 version | u16 reserved | "MPAK"
// header (before sealing): u8 version | u8 space length | space | u32 count |
// count x { u8 type | u8 flags | [32] id | u32 stored length | u32 raw length }
//
// Blob offsets are implicit (cumulative), so the header cannot describe
// overlapping blobs. The header is sealed like any blob, which keeps blob IDs
// and sizes secret and lets the index be rebuilt from packs alone.
const (
	packMagic       = "MPAK"
	packVersion     = 1
	packTrailerSize = 12
	packEntrySize   = 1 + 1 + 32 + 4 + 4
	packHeaderAD    = "memento pack header v1"
	maxPackBlobs    = 1 << 20
	// MaxBlobSize bounds what a pack header may claim, so a hostile header cannot
	// make a reader allocate gigabytes. Data chunks are at most 8 MiB; tree
	// blobs may be larger (about 70 bytes per chunk of the files they list).
	MaxBlobSize = 256 << 20
)

var errPackFormat = errors.New("malformed pack")

func encodePackHeader(space string, blobs []index.BlobInfo) []byte {
	b := make([]byte, 0, 2+len(space)+4+len(blobs)*packEntrySize)
	b = append(b, packVersion, byte(len(space)))
	b = append(b, space...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(blobs)))
	for _, bl := range blobs {
		b = append(b, bl.Type, bl.Flags)
		b = append(b, bl.ID[:]...)
		b = binary.LittleEndian.AppendUint32(b, bl.Length)
		b = binary.LittleEndian.AppendUint32(b, bl.RawLength)
	}
	return b
}

// decodePackHeader parses an opened header. dataLen is the number of bytes
// before the sealed header; the blobs must fill exactly that.
func decodePackHeader(b []byte, dataLen int64) (space string, blobs []index.BlobInfo, err error) {
	if len(b) < 2 {
		return "", nil, fmt.Errorf("%w: header of %d bytes", errPackFormat, len(b))
	}
	if b[0] != packVersion {
		return "", nil, fmt.Errorf("%w: pack header version %d", ErrFormat, b[0])
	}
	sl := int(b[1])
	b = b[2:]
	if len(b) < sl+4 {
		return "", nil, fmt.Errorf("%w: header truncated in space name", errPackFormat)
	}
	space = string(b[:sl])
	n := binary.LittleEndian.Uint32(b[sl:])
	b = b[sl+4:]
	if n > maxPackBlobs || int(n)*packEntrySize != len(b) {
		return "", nil, fmt.Errorf("%w: header claims %s in %d bytes", errPackFormat, english.Plural(int(n), "blob", ""), len(b))
	}
	blobs = make([]index.BlobInfo, n)
	var off int64
	for i := range blobs {
		e := b[i*packEntrySize:]
		bl := index.BlobInfo{Type: e[0], Flags: e[1], ID: chunk.ID(e[2:34]),
			Length: binary.LittleEndian.Uint32(e[34:]), RawLength: binary.LittleEndian.Uint32(e[38:])}
		if bl.Type != uint8(DataBlob) && bl.Type != uint8(TreeBlob) {
			return "", nil, fmt.Errorf("%w: blob %d has type %d", errPackFormat, i, bl.Type)
		}
		if bl.Length == 0 || bl.Length > MaxBlobSize || bl.RawLength > MaxBlobSize {
			return "", nil, fmt.Errorf("%w: blob %d has length %d (raw %d)", errPackFormat, i, bl.Length, bl.RawLength)
		}
		bl.Offset = uint32(off)
		off += int64(bl.Length)
		if off > math.MaxUint32 { // offsets are 32-bit: such a pack cannot be addressed
			return "", nil, fmt.Errorf("%w: blob %d ends at %d, past the 4 GiB a pack may hold", errPackFormat, i, off)
		}
		if off > dataLen {
			return "", nil, fmt.Errorf("%w: blob %d ends at %d, past the data (%d bytes)", errPackFormat, i, off, dataLen)
		}
		blobs[i] = bl
	}
	if off != dataLen {
		return "", nil, fmt.Errorf("%w: blobs cover %d of %d data bytes", errPackFormat, off, dataLen)
	}
	return space, blobs, nil
}

func encodePackTrailer(sealedHeaderLen int) []byte {
	t := binary.LittleEndian.AppendUint32(nil, uint32(sealedHeaderLen))
	t = binary.LittleEndian.AppendUint16(t, packVersion)
	t = binary.LittleEndian.AppendUint16(t, 0)
	return append(t, packMagic...)
}

// decodePackTrailer returns the sealed header's length.
func decodePackTrailer(t []byte, packSize int64) (int64, error) {
	if len(t) != packTrailerSize || string(t[8:]) != packMagic {
		return 0, fmt.Errorf("%w: no MPAK trailer", errPackFormat)
	}
	if v := binary.LittleEndian.Uint16(t[4:]); v != packVersion {
		return 0, fmt.Errorf("%w: pack version %d", ErrFormat, v)
	}
	if r := binary.LittleEndian.Uint16(t[6:]); r != 0 {
		// Written as zero by every version: anything else is damage.
		return 0, fmt.Errorf("%w: reserved trailer bytes are %#04x, not zero", errPackFormat, r)
	}
	hl := int64(binary.LittleEndian.Uint32(t))
	if hl == 0 || hl > packSize-packTrailerSize {
		return 0, fmt.Errorf("%w: header length %d in a pack of %d bytes", errPackFormat, hl, packSize)
	}
	return hl, nil
}
