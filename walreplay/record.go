package walreplay

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxIDLen is the longest id in bytes; ids are 1..MaxIDLen bytes of UTF-8.
const MaxIDLen = 1024

// Record is a memory: the payload of EpisodeStore and MemoryUpdate entries.
type Record struct {
	ID         string
	Confidence float32
	Embedding  []float32
	Content    string
}

// errPayload is wrapped by every payload decoding error, so that fuzzing and
// callers can tell a malformed payload from other failures.
var errPayload = errors.New("malformed payload")

// AppendRecord appends the v1 encoding of r to dst:
// u16 id_len | id | f32 confidence | u16 dim | dim x f32 | u32 content_len | content.
// It does not validate r (an id over 1024 bytes or more than 65535 dimensions
// encodes to something DecodeRecord refuses); Writer.Append validates.
func AppendRecord(dst []byte, r *Record) []byte {
	n := 2 + len(r.ID) + 4 + 2 + 4*len(r.Embedding) + 4 + len(r.Content)
	if cap(dst)-len(dst) < n {
		nd := make([]byte, len(dst), len(dst)+n)
		copy(nd, dst)
		dst = nd
	}
	dst = le.AppendUint16(dst, uint16(len(r.ID)))
	dst = append(dst, r.ID...)
	dst = le.AppendUint32(dst, math.Float32bits(r.Confidence))
	dst = le.AppendUint16(dst, uint16(len(r.Embedding)))
	for _, f := range r.Embedding {
		dst = le.AppendUint32(dst, math.Float32bits(f))
	}
	dst = le.AppendUint32(dst, uint32(len(r.Content)))
	return append(dst, r.Content...)
}

// AppendDelete appends the MemoryDelete payload for id (u16 id_len | id).
func AppendDelete(dst []byte, id string) []byte {
	dst = le.AppendUint16(dst, uint16(len(id)))
	return append(dst, id...)
}

// DecodeRecord decodes and validates a type 1/2 payload. The result does not
// alias payload.
func DecodeRecord(payload []byte) (Record, error) {
	id, err := checkRecord(payload)
	if err != nil {
		return Record{}, err
	}
	p := payload[2+len(id):]
	r := Record{ID: string(id), Confidence: math.Float32frombits(le.Uint32(p))}
	dim := int(le.Uint16(p[4:]))
	p = p[6:]
	r.Embedding = make([]float32, dim)
	for i := range r.Embedding {
		r.Embedding[i] = math.Float32frombits(le.Uint32(p[4*i:]))
	}
	p = p[4*dim:]
	r.Content = string(p[4:])
	return r, nil
}

// DecodeDelete decodes and validates a type 3 payload and returns the id.
func DecodeDelete(payload []byte) (string, error) {
	id, err := checkDelete(payload)
	return string(id), err
}

// checkRecord validates the structure of a record payload without
// allocating and returns its id (aliasing payload). Replay calls it for every
// entry, so it must stay cheap: the only per-byte work is UTF-8 validation.
func checkRecord(p []byte) ([]byte, error) {
	id, rest, err := cutID(p)
	if err != nil {
		return nil, err
	}
	if len(rest) < 6 {
		return nil, fmt.Errorf("%w: record truncated after id", errPayload)
	}
	dim := int(le.Uint16(rest[4:]))
	rest = rest[6:]
	if len(rest) < 4*dim+4 {
		return nil, fmt.Errorf("%w: record truncated in embedding (dim %d)", errPayload, dim)
	}
	rest = rest[4*dim:]
	cl := uint64(le.Uint32(rest))
	rest = rest[4:]
	if uint64(len(rest)) != cl {
		return nil, fmt.Errorf("%w: content length %d but %d bytes remain", errPayload, cl, len(rest))
	}
	if !utf8.Valid(rest) {
		return nil, fmt.Errorf("%w: content is not valid UTF-8", errPayload)
	}
	return id, nil
}

// checkDelete validates a MemoryDelete payload and returns its id.
func checkDelete(p []byte) ([]byte, error) {
	id, rest, err := cutID(p)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after delete id", errPayload, len(rest))
	}
	return id, nil
}

// cutID splits a leading u16-length-prefixed id off p and validates it.
func cutID(p []byte) (id, rest []byte, err error) {
	if len(p) < 2 {
		return nil, nil, fmt.Errorf("%w: truncated id length", errPayload)
	}
	n := int(le.Uint16(p))
	switch {
	case n == 0:
		return nil, nil, fmt.Errorf("%w: empty id", errPayload)
	case n > MaxIDLen:
		return nil, nil, fmt.Errorf("%w: id length %d exceeds %d", errPayload, n, MaxIDLen)
	case len(p) < 2+n:
		return nil, nil, fmt.Errorf("%w: truncated id", errPayload)
	}
	id = p[2 : 2+n]
	if !utf8.Valid(id) {
		return nil, nil, fmt.Errorf("%w: id is not valid UTF-8", errPayload)
	}
	return id, p[2+n:], nil
}
