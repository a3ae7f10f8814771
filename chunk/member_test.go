package chunk

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseMember: a member frame either parses, and is then exactly the
// frame AppendMember writes for what it parsed to (one encoding per
// member: a reader and prune see the same group, offset and length), or
// is refused with an error wrapping ErrCorrupt, as ParseDelta's are.
func FuzzParseMember(f *testing.F) {
	f.Add(AppendMember(nil, Member{Group: ID{1, 2, 3}, Offset: 0, Length: 100}))
	f.Add(AppendMember(nil, Member{Group: ID{9}, Offset: 1 << 20, Length: 256 << 10}))
	f.Add(AppendMember(nil, Member{Offset: 1<<32 - 2, Length: 1}))
	long := AppendMember(nil, Member{Offset: 5, Length: 7})
	f.Add(append(long[:33:33], 0x85, 0x00, 0x07)) // offset 5 in two bytes
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
			t.Fatalf("member at %d+%d past 4 GiB", m.Offset, m.Length)
		}
		if again := AppendMember(nil, m); !bytes.Equal(again, b) {
			t.Fatalf("frame %x parses to %+v, which is written %x", b, m, again)
		}
	})
}

// TestParseMemberRefuses: what ParseMember refuses, each with ErrCorrupt.
func TestParseMemberRefuses(t *testing.T) {
	good := AppendMember(nil, Member{Group: ID{7}, Offset: 5, Length: 7})
	if m, err := ParseMember(good); err != nil || m != (Member{Group: ID{7}, Offset: 5, Length: 7}) {
		t.Fatalf("ParseMember(AppendMember): %+v %v", m, err)
	}
	for name, b := range map[string][]byte{
		"short":             good[:20],
		"version 2":         append([]byte{2}, good[1:]...),
		"no length":         good[:34],
		"trailing byte":     append(bytes.Clone(good), 0),
		"offset in 2 bytes": append(bytes.Clone(good[:33]), 0x85, 0x00, 0x07),
		"length in 2 bytes": append(bytes.Clone(good[:34]), 0x87, 0x00),
		"past 4 GiB":        AppendMember(nil, Member{Offset: 1<<32 - 1, Length: 1}),
	} {
		if _, err := ParseMember(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want an error wrapping ErrCorrupt", name, err)
		}
	}
}
