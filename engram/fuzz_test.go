package engram

import (
	"encoding/json"
	"testing"
)

// FuzzParseCheckpoint checks that the parser never panics, accepts exactly
// the JSON objects with a non-null unsigned "sequence" and signed
// "timestamp_ns", and that whatever it accepts encodes to bytes it parses
// back to the same value.
func FuzzParseCheckpoint(f *testing.F) {
	for _, s := range []string{`{"sequence":1,"timestamp_ns":2}`, `{}`, `{"sequence":null,"timestamp_ns":0}`,
		`{"sequence":18446744073709551615,"timestamp_ns":-9223372036854775808}`, `{"sequence":1e3,"timestamp_ns":0}`,
		`{"sequence":1,"timestamp_ns":2,"sequence":3}`, `[1,2]`, ``, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		var ref struct {
			Sequence    *uint64 `json:"sequence"`
			TimestampNS *int64  `json:"timestamp_ns"`
		}
		refErr := json.Unmarshal(b, &ref)
		refOK := refErr == nil && ref.Sequence != nil && ref.TimestampNS != nil
		if (err == nil) != refOK {
			t.Fatalf("ParseCheckpoint(%q) error %v, reference ok %v", b, err, refOK)
		}
		if err != nil {
			return
		}
		if c.Sequence != *ref.Sequence || c.TimestampNS != *ref.TimestampNS {
			t.Fatalf("ParseCheckpoint(%q) = %+v, reference %d %d", b, c, *ref.Sequence, *ref.TimestampNS)
		}
		back, err := ParseCheckpoint(EncodeCheckpoint(c))
		if err != nil || back != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, back, err)
		}
	})
}

// FuzzParseMetadata checks that the parser never panics and that whatever
// it accepts encodes to bytes it accepts again, with the same content.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"format":"engram-data-dir","version":1,"dim":4,"spaces":[{"id":"a","created_ns":5}]}`))
	f.Add([]byte(`{"format":"engram-data-dir","version":1,"spaces":[{"id":"a"},{"id":"a"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b)
		if err != nil {
			return
		}
		enc, err := EncodeMetadata(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseMetadata(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		enc2, _ := EncodeMetadata(back)
		if string(enc) != string(enc2) {
			t.Fatalf("not stable: %q then %q", enc, enc2)
		}
	})
}
