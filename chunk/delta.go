package chunk

import (
	"encoding/binary"
	"fmt"
)

// A delta is the stored form of a chunk that differs from another chunk of
// the same length, its base, in a few 4 KiB pages: the base's ID, which
// pages changed and their new bytes (docs/repository-format.md, "Delta
// blobs"). The chunk's plaintext is the base's with those pages replaced;
// its ID is, as for any chunk, the keyed hash of that plaintext. The
// encoding, version 1 (little-endian):
//
//	u8 version (1) | u8 flags | [32] base ID | u32 raw length | u16 count |
//	count x u16 page index (strictly increasing) | payload
//
// flags bit 0: the payload is a compressed stored form (Decompress); else
// the pages themselves. Other bits are zero. The payload decodes to the
// changed pages concatenated in index order: DeltaPageSize bytes each,
// except the chunk's last page, which is what is left of the raw length.

// DeltaPageSize is the granularity of a delta: Engram's warm page file is
// rewritten in 4 KiB pages.
const DeltaPageSize = 4096

const (
	deltaVersion        = 1
	deltaFlagCompressed = 1 << 0
	deltaHeaderSize     = 1 + 1 + 32 + 4 + 2
)

// Delta is a parsed delta frame. Payload aliases the frame.
type Delta struct {
	Base       ID
	RawLength  int
	Pages      []uint16
	Compressed bool
	Payload    []byte
}

// deltaPages is how many pages a plaintext of n bytes has.
func deltaPages(n int) int { return (n + DeltaPageSize - 1) / DeltaPageSize }

// pageLen is the length of page p of a plaintext of n bytes.
func pageLen(p, n int) int { return min(DeltaPageSize, n-p*DeltaPageSize) }

// DiffPages lists the pages in which a and b (of equal length) differ.
func DiffPages(a, b []byte) []uint16 {
	var out []uint16
	for p := range deltaPages(len(a)) {
		lo := p * DeltaPageSize
		hi := lo + pageLen(p, len(a))
		if string(a[lo:hi]) != string(b[lo:hi]) {
			out = append(out, uint16(p))
		}
	}
	return out
}

// AppendDelta appends the delta frame of raw against base (same length),
// for the pages listed (DiffPages), to dst. compress stores the changed
// pages concatenated (as the file's kind compresses a chunk: CompressFile);
// it gets the pages and returns their stored form and whether it is
// compressed.
func AppendDelta(dst []byte, base ID, raw []byte, pages []uint16, compress func(pages []byte) ([]byte, bool)) []byte {
	dst = append(dst, deltaVersion, 0)
	flagAt := len(dst) - 1
	dst = append(dst, base[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(raw)))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(pages)))
	buf := Buffer(len(pages) * DeltaPageSize)
	defer PutBuffer(buf)
	cat := (*buf)[:0]
	for _, p := range pages {
		dst = binary.LittleEndian.AppendUint16(dst, p)
		lo := int(p) * DeltaPageSize
		cat = append(cat, raw[lo:lo+pageLen(int(p), len(raw))]...)
	}
	*buf = cat
	stored, compressed := compress(cat)
	if compressed {
		dst[flagAt] |= deltaFlagCompressed
	}
	return append(dst, stored...)
}

// ParseDelta parses a delta frame (untrusted bytes: anything malformed is
// an error wrapping ErrCorrupt). It checks the frame's own consistency, not
// the payload, which ApplyDelta decodes.
func ParseDelta(b []byte) (Delta, error) {
	var d Delta
	if len(b) < deltaHeaderSize {
		return d, fmt.Errorf("delta frame of %d bytes, shorter than its %d-byte header: %w", len(b), deltaHeaderSize, ErrCorrupt)
	}
	if b[0] != deltaVersion {
		return d, fmt.Errorf("delta frame version %d (this binary reads %d): %w", b[0], deltaVersion, ErrCorrupt)
	}
	if b[1]&^deltaFlagCompressed != 0 {
		return d, fmt.Errorf("delta frame flags %#02x: unknown bits: %w", b[1], ErrCorrupt)
	}
	d.Compressed = b[1]&deltaFlagCompressed != 0
	d.Base = ID(b[2:34])
	raw := binary.LittleEndian.Uint32(b[34:])
	if raw == 0 || raw > MaxChunkSize {
		return d, fmt.Errorf("delta frame raw length %d outside 1..%d: %w", raw, MaxChunkSize, ErrCorrupt)
	}
	d.RawLength = int(raw)
	n := int(binary.LittleEndian.Uint16(b[38:]))
	if n == 0 {
		return d, fmt.Errorf("delta frame of no page: %w", ErrCorrupt)
	}
	b = b[deltaHeaderSize:]
	if len(b) < 2*n {
		return d, fmt.Errorf("delta frame lists %d pages in %d bytes: %w", n, len(b), ErrCorrupt)
	}
	total := deltaPages(d.RawLength)
	d.Pages = make([]uint16, n)
	for i := range d.Pages {
		p := binary.LittleEndian.Uint16(b[2*i:])
		if int(p) >= total {
			return d, fmt.Errorf("delta frame page %d out of range (the chunk has %d pages): %w", p, total, ErrCorrupt)
		}
		if i > 0 && p <= d.Pages[i-1] {
			return d, fmt.Errorf("delta frame pages not increasing (%d after %d): %w", p, d.Pages[i-1], ErrCorrupt)
		}
		d.Pages[i] = p
	}
	d.Payload = b[2*n:]
	return d, nil
}

// PagesLength is the length of the payload's plaintext: the changed pages.
func (d Delta) PagesLength() int {
	n := 0
	for _, p := range d.Pages {
		n += pageLen(int(p), d.RawLength)
	}
	return n
}

// ApplyDelta appends to dst[:0] the plaintext d stands for: base (d's base
// chunk's plaintext) with d's pages replaced. Malformed payloads and a
// base of the wrong length are errors wrapping ErrCorrupt.
func ApplyDelta(dst []byte, d Delta, base []byte) ([]byte, error) {
	if len(base) != d.RawLength {
		return dst[:0], fmt.Errorf("delta of %d bytes on a base of %d: %w", d.RawLength, len(base), ErrCorrupt)
	}
	want := d.PagesLength()
	pages := d.Payload
	if d.Compressed {
		buf := Buffer(want)
		defer PutBuffer(buf)
		var err error
		if pages, err = DecompressMax(*buf, d.Payload, want); err != nil {
			return dst[:0], fmt.Errorf("delta pages: %w", err)
		}
		*buf = pages
	}
	if len(pages) != want {
		return dst[:0], fmt.Errorf("delta pages are %d bytes, its %d pages need %d: %w", len(pages), len(d.Pages), want, ErrCorrupt)
	}
	out := append(dst[:0], base...)
	for _, p := range d.Pages {
		lo := int(p) * DeltaPageSize
		n := pageLen(int(p), d.RawLength)
		copy(out[lo:lo+n], pages[:n])
		pages = pages[n:]
	}
	return out, nil
}
