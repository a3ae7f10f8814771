// The tests of package verify are an external test package (verify_test):
// the chaos test checks with maintenance.Check, and maintenance imports
// verify. Only verify_fuzz_test.go, which reaches the unexported L3 checks,
// stays in package verify.
package verify_test

import (
	"encoding/json"
	"os"
	"testing"

	"memento/repo"
	"memento/walreplay"
)

// Values of the core's private format constants the fixtures need, copied
// because the core does not export them (repo/snapshot.go kindSnapshot,
// signatureDomain and (*Manifest).signedBytes; repo/pack.go
// packTrailerSize): the tests forge manifests (saved with the original
// signature or signed with a key that is not the repository's, which
// repo.(*Repository).SaveSnapshot cannot do) and find a pack's header.
const (
	kindSnapshot    = "snapshot"
	signatureDomain = "memento manifest v1\x00"
	packTrailerSize = 12
)

// signedBytes is what a manifest's signature covers (snapshot.go's
// Manifest.signedBytes), for tests that re-sign a manifest with another key.
func signedBytes(m *repo.Manifest) ([]byte, error) {
	c := *m
	c.Signature = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte(signatureDomain), b...), nil
}

// alterEntry changes one byte of the payload of the entry with sequence
// seq in a WAL directory and fixes its CRC32C, so the WAL still verifies
// entry by entry: only replaying it to the recorded digest can tell.
func alterEntry(t testing.TB, walDir string, seq uint64) {
	t.Helper()
	segs, err := walreplay.ListSegments(walDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+walreplay.HeaderSize <= len(b); {
			h, reason := walreplay.DecodeHeader(b[off : off+walreplay.HeaderSize])
			if reason != "" {
				t.Fatalf("%s offset %d: %s", s.Name, off, reason)
			}
			end := off + walreplay.HeaderSize + int(h.PayloadLen)
			if h.Seq == seq {
				p := b[off+walreplay.HeaderSize : end]
				p[len(p)-1] ^= 0x01 // last byte of the content text
				fixCRC(t, b[off:end])
				if err := os.WriteFile(s.Path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			off = end
		}
	}
	t.Fatalf("no entry with seq %d in %s", seq, walDir)
}

// fixCRC recomputes the CRC of one encoded entry by re-encoding it.
func fixCRC(t testing.TB, entry []byte) {
	t.Helper()
	h, _ := walreplay.DecodeHeader(entry[:walreplay.HeaderSize])
	e := &walreplay.Entry{Seq: h.Seq, TimestampNS: h.TimestampNS, Type: h.Type, Flags: h.Flags, Payload: entry[walreplay.HeaderSize:]}
	enc := walreplay.AppendEntry(nil, e)
	if len(enc) != len(entry) {
		t.Fatalf("re-encoded entry is %d bytes, was %d", len(enc), len(entry))
	}
	copy(entry, enc)
}
