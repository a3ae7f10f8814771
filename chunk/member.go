package chunk

import (
	"encoding/binary"
	"fmt"
)

// A member is the stored form of a small file's chunk kept inside a group
// blob: the chunk's bytes are a slice of the group's plaintext, which
// holds several small files of one backup concatenated and is compressed
// as one (docs/repository-format.md, "Grouped small files"). Its ID is,
// as for any chunk, the keyed hash of its own bytes. The encoding,
// version 1:
//
//	u8 version (1) | [32] group ID | uvarint offset | uvarint length
//
// offset and length place the chunk in the group's plaintext, each in its
// shortest uvarint encoding; nothing follows them.

const memberVersion = 1

// MaxMemberFrame is the longest member frame AppendMember writes.
const MaxMemberFrame = 1 + 32 + 2*binary.MaxVarintLen32

// Member is a parsed member frame.
type Member struct {
	Group          ID
	Offset, Length uint32
}

// AppendMember appends the frame of m to dst.
func AppendMember(dst []byte, m Member) []byte {
	dst = append(dst, memberVersion)
	dst = append(dst, m.Group[:]...)
	dst = binary.AppendUvarint(dst, uint64(m.Offset))
	return binary.AppendUvarint(dst, uint64(m.Length))
}

// uvarintLen is the length of the shortest uvarint encoding of v, the one
// frames use: ParseMember refuses longer ones, so a member has one frame.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// ParseMember parses a member frame. Its errors (wrapping ErrCorrupt) name
// what is wrong; the caller names the blob.
func ParseMember(b []byte) (Member, error) {
	var m Member
	if len(b) < 1+32 {
		return m, fmt.Errorf("member frame of %d bytes, shorter than its header: %w", len(b), ErrCorrupt)
	}
	if b[0] != memberVersion {
		return m, fmt.Errorf("member frame version %d (this binary reads %d): %w", b[0], memberVersion, ErrCorrupt)
	}
	copy(m.Group[:], b[1:33])
	rest := b[33:]
	off, n := binary.Uvarint(rest)
	if n <= 0 || off > 1<<32-1 || n != uvarintLen(off) {
		return m, fmt.Errorf("member frame: bad offset: %w", ErrCorrupt)
	}
	rest = rest[n:]
	length, n := binary.Uvarint(rest)
	if n <= 0 || length > 1<<32-1 || n != uvarintLen(length) {
		return m, fmt.Errorf("member frame: bad length: %w", ErrCorrupt)
	}
	if len(rest) != n {
		return m, fmt.Errorf("member frame: %d bytes after its length: %w", len(rest)-n, ErrCorrupt)
	}
	if off+length > 1<<32-1 {
		return m, fmt.Errorf("member frame: offset %d + length %d past 4 GiB: %w", off, length, ErrCorrupt)
	}
	m.Offset, m.Length = uint32(off), uint32(length)
	return m, nil
}
