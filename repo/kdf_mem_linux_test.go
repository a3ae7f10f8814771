package repo

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/argon2"

	"memento/repo/hugepage"
)

// TestKDFHugePagesKeepsTheKey: the key derived with the KDF's memory readied
// for huge pages (kdfHugePages) is argon2id's, byte for byte; the range
// readied is advised for huge pages until the key is derived and not
// after (kdfAdvise, kdfUnadvise); a KDF memory below one huge page, or a
// kernel whose transparent huge page mode is not "madvise", readies nothing.
func TestKDFHugePagesKeepsTheKey(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, 16)
	for _, p := range []KDFParams{MinKDF, {Time: 1, MemoryKiB: 3 << 10, Threads: 1}, {Time: 1, MemoryKiB: 64, Threads: 1}} {
		want := argon2.IDKey([]byte("pw"), salt, p.Time, p.MemoryKiB, p.Threads, 32)
		if got := deriveKEK("pw", salt, p); !bytes.Equal(got, want) {
			t.Fatalf("%+v: derived %x, argon2id gives %x", p, got, want)
		}
	}
	if beg, end := kdfAdvise(64 << 10); beg != end {
		t.Fatalf("64 KiB of KDF memory: advised %#x-%#x", beg, end)
	}
	requireTHP(t)
	beg, end := kdfAdvise(int(MinKDF.MemoryKiB) << 10)
	if mode := hugepage.Mode(); mode != "madvise" {
		if beg != end {
			t.Fatalf("transparent huge pages %q: advised %#x-%#x", mode, beg, end)
		}
		return
	}
	if beg >= end {
		t.Skip("the live heap is over kdfHeapMax: nothing advised")
	}
	if end-beg < uintptr(MinKDF.MemoryKiB)<<10 {
		t.Fatalf("advised %d bytes, less than the KDF's %d", end-beg, MinKDF.MemoryKiB<<10)
	}
	for _, q := range []uintptr{beg, end - 1} {
		if ok, err := hugepage.AdvisedAt(q); err != nil || !ok {
			t.Fatalf("%#x not advised for huge pages while the key is derived (err %v)", q, err)
		}
	}
	kdfUnadvise(beg, end)
	for _, q := range []uintptr{beg, end - 1} {
		if ok, err := hugepage.AdvisedAt(q); err != nil || ok {
			t.Fatalf("%#x still advised for huge pages after the key was derived (err %v)", q, err)
		}
	}
}
