package walreplay

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Magic starts every entry. It also identifies the format version: a WAL v2
// would use a different magic, so a v1 reader refuses it as a bad magic
// instead of misreading it.
const Magic uint32 = 0xDEADBEEF

// HeaderSize is the size in bytes of an entry header.
const HeaderSize = 32

// MaxPayload is the largest payload an entry may carry. Readers rely on it to
// bound their memory: a header claiming more is corruption, never an allocation.
const MaxPayload = 64 << 20

// EntryType says what an entry does to the state.
type EntryType uint16

// Entry types of WAL v1.
const (
	EpisodeStore EntryType = 1 // payload is a memory record; sets state[id]
	MemoryUpdate EntryType = 2 // payload is a memory record; sets state[id]
	MemoryDelete EntryType = 3 // payload is an id; deletes state[id]
	Marker       EntryType = 4 // empty payload; changes no state
)

// String returns the type's name as in the spec.
func (t EntryType) String() string {
	switch t {
	case EpisodeStore:
		return "EpisodeStore"
	case MemoryUpdate:
		return "MemoryUpdate"
	case MemoryDelete:
		return "MemoryDelete"
	case Marker:
		return "Marker"
	}
	return fmt.Sprintf("EntryType(%d)", uint16(t))
}

// Valid reports whether t is one of the four v1 types.
func (t EntryType) Valid() bool { return t >= EpisodeStore && t <= Marker }

// FlagCompacted marks the entries of a compacted segment (see compact.go).
// It is the only defined flag; other bits must be zero.
const FlagCompacted uint16 = 1

// Entry is one decoded WAL entry. Entries returned by a SegmentReader alias
// the reader's buffer: Payload is valid only until the next call to Next.
type Entry struct {
	Seq         uint64
	TimestampNS int64
	Type        EntryType
	Flags       uint16
	Payload     []byte
}

// Compacted reports whether the entry belongs to a compacted run.
func (e *Entry) Compacted() bool { return e.Flags&FlagCompacted != 0 }

// Size is the number of bytes the entry occupies in a segment.
func (e *Entry) Size() int64 { return HeaderSize + int64(len(e.Payload)) }

// castagnoli is the CRC32C table; hash/crc32 uses the SSE4.2/ARMv8 CRC
// instructions for it, which is what makes checksumming ~GB/s.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var le = binary.LittleEndian

// AppendEntry appends the encoding of e (header, CRC32C, payload) to dst.
// It does not validate e; Writer.Append does. The caller must keep the
// payload at most MaxPayload bytes for the result to be readable.
func AppendEntry(dst []byte, e *Entry) []byte {
	var h [HeaderSize]byte
	putHeader(h[:], e)
	dst = append(dst, h[:]...)
	return append(dst, e.Payload...)
}

// putHeader writes e's 32-byte header, CRC included, into h.
func putHeader(h []byte, e *Entry) {
	le.PutUint32(h[0:], Magic)
	le.PutUint32(h[4:], uint32(len(e.Payload)))
	le.PutUint64(h[8:], e.Seq)
	le.PutUint64(h[16:], uint64(e.TimestampNS))
	le.PutUint16(h[24:], uint16(e.Type))
	le.PutUint16(h[26:], e.Flags)
	le.PutUint32(h[28:], entryCRC(h, e.Payload))
}

// entryCRC is the CRC32C of header bytes 4..28 followed by the payload.
func entryCRC(h []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[4:28])
	return crc32.Update(c, castagnoli, payload)
}

// Header is a decoded entry header.
type Header struct {
	PayloadLen  uint32
	Seq         uint64
	TimestampNS int64
	Type        EntryType
	Flags       uint16
	CRC         uint32
}

// DecodeHeader decodes a 32-byte header and checks what can be checked
// without the payload: magic, payload length, type and flags. The returned
// reason is empty when the header is well formed.
func DecodeHeader(b []byte) (h Header, reason string) {
	if len(b) < HeaderSize {
		return h, "short header"
	}
	if m := le.Uint32(b[0:]); m != Magic {
		return h, fmt.Sprintf("bad magic 0x%08x", m)
	}
	h = Header{
		PayloadLen:  le.Uint32(b[4:]),
		Seq:         le.Uint64(b[8:]),
		TimestampNS: int64(le.Uint64(b[16:])),
		Type:        EntryType(le.Uint16(b[24:])),
		Flags:       le.Uint16(b[26:]),
		CRC:         le.Uint32(b[28:]),
	}
	switch {
	case h.PayloadLen > MaxPayload:
		return h, fmt.Sprintf("payload length %d exceeds %d", h.PayloadLen, MaxPayload)
	case !h.Type.Valid():
		return h, fmt.Sprintf("unknown entry type %d", uint16(h.Type))
	case h.Flags&^FlagCompacted != 0:
		return h, fmt.Sprintf("reserved flag bits set (0x%04x)", h.Flags)
	}
	return h, ""
}

// checkPayload validates an entry's payload against its type: a full memory
// record for types 1 and 2, an id for type 3, nothing for type 4. It returns
// the record's id bytes (aliasing payload) for types 1-3.
func checkPayload(t EntryType, p []byte) ([]byte, error) {
	switch t {
	case EpisodeStore, MemoryUpdate:
		return checkRecord(p)
	case MemoryDelete:
		return checkDelete(p)
	case Marker:
		if len(p) != 0 {
			return nil, fmt.Errorf("marker with %d-byte payload", len(p))
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown entry type %d", uint16(t))
}
