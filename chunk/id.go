package chunk

import (
	"encoding/hex"
	"fmt"
)

// IDSize is the length of an ID in bytes.
const IDSize = 32

// ID names a chunk: the keyed BLAKE3-256 of its plaintext (see [Key.Sum]).
// It is comparable and usable as a map key.
type ID [IDSize]byte

// String returns the ID as 64 lowercase hex digits, the form used in
// repository file names and JSON.
func (id ID) String() string {
	return hex.EncodeToString(id[:])
}

// Short returns the first 8 hex digits, for logs and messages meant for people.
func (id ID) Short() string {
	return hex.EncodeToString(id[:4])
}

// IsZero reports whether id is the zero ID, which no real chunk has in practice.
func (id ID) IsZero() bool {
	return id == ID{}
}

// ParseID parses 64 hex digits (either case) into an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("parse id %q: length %d, want %d: %w", s, len(s), 2*IDSize, ErrInvalidID)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("parse id %q: %w", s, ErrInvalidID)
	}
	return id, nil
}

// MarshalText encodes the ID as 64 lowercase hex digits, so IDs appear as
// strings in JSON and as map keys.
func (id ID) MarshalText() ([]byte, error) {
	out := make([]byte, 2*IDSize)
	hex.Encode(out, id[:])
	return out, nil
}

// UnmarshalText parses what MarshalText produced.
func (id *ID) UnmarshalText(text []byte) error {
	parsed, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}
