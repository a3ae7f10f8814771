package repo

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/argon2"

	"memento/repo/hugepage"
)

// TestKDFHugePagesKeepsTheKey: the key derived with the KDF's memory readied
// for huge pages (kdfHugePages) is argon2id's, byte for byte, and once the
// key is derived no heap range keeps the advice: the KDF's freed memory
// (which the next allocation of its size takes) is not advised.
func TestKDFHugePagesKeepsTheKey(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, 16)
	for _, p := range []KDFParams{MinKDF, {Time: 1, MemoryKiB: 3 << 10, Threads: 1}, {Time: 1, MemoryKiB: 64, Threads: 1}} {
		want := argon2.IDKey([]byte("pw"), salt, p.Time, p.MemoryKiB, p.Threads, 32)
		if got := deriveKEK("pw", salt, p); !bytes.Equal(got, want) {
			t.Fatalf("%+v: derived %x, argon2id gives %x", p, got, want)
		}
		b := make([]byte, int(p.MemoryKiB)<<10)
		if advised, _, err := hugepage.Advised(b); err != nil || advised {
			t.Fatalf("%+v: memory of the KDF's size still advised for huge pages after the key was derived (err %v)", p, err)
		}
	}
}
