package chunk

import (
	"bytes"
	"errors"
	"testing"
)

// TestMemberFrame: a frame round-trips; a frame of another version, cut
// short, with bytes after it or a slice past 4 GiB is refused with an
// error wrapping ErrCorrupt that says what is wrong.
func TestMemberFrame(t *testing.T) {
	m := Member{Group: ID{1, 2, 3}, Offset: 300, Length: 1 << 20}
	b := AppendMember(nil, m)
	if len(b) > MaxMemberFrame || len(b) != 1+32+2+3 {
		t.Fatalf("frame of %d bytes", len(b))
	}
	if got, err := ParseMember(b); err != nil || got != m {
		t.Fatalf("ParseMember: %+v %v, want %+v", got, err, m)
	}
	v2 := bytes.Clone(b)
	v2[0] = 2
	past := AppendMember(nil, Member{Offset: 1<<32 - 10, Length: 100})
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{b[:20], "member frame of 20 bytes, shorter than its header: chunk: corrupt stored data"},
		{v2, "member frame version 2 (this binary reads 1): chunk: corrupt stored data"},
		{b[:33], "member frame: bad offset: chunk: corrupt stored data"},
		{b[:35], "member frame: bad length: chunk: corrupt stored data"},
		{append(bytes.Clone(b), 0), "member frame: 1 bytes after its length: chunk: corrupt stored data"},
		{past, "member frame: offset 4294967286 + length 100 past 4 GiB: chunk: corrupt stored data"},
		{append(bytes.Clone(b[:33]), 0x81, 0x00, 1), "member frame: bad offset: chunk: corrupt stored data"}, // 1 in two bytes
	} {
		_, err := ParseMember(c.b)
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseMember(%x): %v, want %q", c.b, err, c.want)
		}
	}
}

// FuzzParseMember: no frame makes ParseMember panic; an error wraps
// ErrCorrupt; what it accepts lies within 4 GiB and encodes back to the
// same bytes (one frame per member).
func FuzzParseMember(f *testing.F) {
	f.Add(AppendMember(nil, Member{Group: ID{1}, Offset: 7, Length: 4096}))
	f.Add(AppendMember(nil, Member{Offset: 1<<32 - 2, Length: 1}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMember(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		if uint64(m.Offset)+uint64(m.Length) > 1<<32-1 {
			t.Fatalf("accepted %d+%d past 4 GiB", m.Offset, m.Length)
		}
		if again := AppendMember(nil, m); !bytes.Equal(again, b) {
			t.Fatalf("frame %x parses to %+v, which encodes as %x", b, m, again)
		}
	})
}
