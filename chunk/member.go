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
// offset and length place the chunk in the group's plaintext; nothing
// follows them.

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

// ParseMember parses a member frame. Its errors name what is wrong; the
// caller names the blob.
func ParseMember(b []byte) (Member, error) {
	var m Member
	if len(b) < 1+32 {
		return m, fmt.Errorf("member frame of %d bytes, shorter than its header", len(b))
	}
	if b[0] != memberVersion {
		return m, fmt.Errorf("member frame version %d, this binary reads %d", b[0], memberVersion)
	}
	copy(m.Group[:], b[1:33])
	rest := b[33:]
	off, n := binary.Uvarint(rest)
	if n <= 0 || off > 1<<32-1 {
		return m, fmt.Errorf("member frame: bad offset")
	}
	rest = rest[n:]
	length, n := binary.Uvarint(rest)
	if n <= 0 || length > 1<<32-1 {
		return m, fmt.Errorf("member frame: bad length")
	}
	if len(rest) != n {
		return m, fmt.Errorf("member frame: %d bytes after its length", len(rest)-n)
	}
	if off+length > 1<<32-1 {
		return m, fmt.Errorf("member frame: offset %d + length %d past 4 GiB", off, length)
	}
	m.Offset, m.Length = uint32(off), uint32(length)
	return m, nil
}
