package index

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Location says where a blob is stored: which pack, where in it, and how it
// is stored there. It is what restore needs to read one blob with a single
// ranged read.
type Location struct {
	Pack      [32]byte // pack file ID
	Offset    uint32   // byte offset of the stored (encrypted) blob in the pack
	Length    uint32   // stored length in the pack
	RawLength uint32   // plaintext length after decryption and decompression
	Type      uint8    // blob type, defined by package repo (data, tree, ...)
	Flags     uint8    // per-blob flags, defined by package repo (e.g. compressed)
}

// LocationSize is the length of one encoded Location. The encoding is fixed
// (little-endian, fields in declaration order) and versioned with the whole
// file by FormatVersion.
const LocationSize = 32 + 4 + 4 + 4 + 1 + 1

// appendLocation appends the encoding of l to dst.
func appendLocation(dst []byte, l Location) []byte {
	dst = append(dst, l.Pack[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, l.Offset)
	dst = binary.LittleEndian.AppendUint32(dst, l.Length)
	dst = binary.LittleEndian.AppendUint32(dst, l.RawLength)
	return append(dst, l.Type, l.Flags)
}

func decodeLocation(b []byte) Location {
	var l Location
	copy(l.Pack[:], b[:32])
	l.Offset = binary.LittleEndian.Uint32(b[32:])
	l.Length = binary.LittleEndian.Uint32(b[36:])
	l.RawLength = binary.LittleEndian.Uint32(b[40:])
	l.Type = b[44]
	l.Flags = b[45]
	return l
}

// DecodeLocations parses the value stored for one blob: one or more
// Locations (a blob lands in several packs when two backups store it at
// once). The bytes come from a file on disk, so everything is checked.
func DecodeLocations(b []byte) ([]Location, error) {
	if err := checkLocations(b); err != nil {
		return nil, err
	}
	out := make([]Location, 0, len(b)/LocationSize)
	for i := 0; i < len(b); i += LocationSize {
		out = append(out, decodeLocation(b[i:]))
	}
	return out, nil
}

// firstLocation decodes only the first Location, the fast path of Lookup.
func firstLocation(b []byte) (Location, error) {
	if err := checkLocations(b); err != nil {
		return Location{}, err
	}
	return decodeLocation(b), nil
}

func checkLocations(b []byte) error {
	if len(b) == 0 || len(b)%LocationSize != 0 {
		return fmt.Errorf("location record of %d bytes, want a positive multiple of %d", len(b), LocationSize)
	}
	for i := 0; i < len(b); i += LocationSize {
		off := binary.LittleEndian.Uint32(b[i+32:])
		n := binary.LittleEndian.Uint32(b[i+36:])
		if uint64(off)+uint64(n) > math.MaxUint32 {
			return fmt.Errorf("location %d: offset %d + length %d overflows a pack", i/LocationSize, off, n)
		}
	}
	return nil
}
