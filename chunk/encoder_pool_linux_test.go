package chunk

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"testing"
)

// TestPooledEncoderPanicFreesSlot: a call that panics inside the
// compression (here a fault on its input, a file mapping cut short, which
// SetPanicOnFault turns into a panic its caller recovers from, as index
// does around bbolt's mapped file) gives its slot and its token back, as
// zstd.Encoder.EncodeAll gives its block encoder back; else the pool
// loses a slot for good and a pool of one slot blocks every later call.
// The encoder it panicked in is not reused: the next call's frame is a
// fresh encoder's.
func TestPooledEncoderPanicFreesSlot(t *testing.T) {
	k := encKey{l: LevelBalanced}
	p := &pooledEncoder{k: k, sem: make(chan struct{}, 1), slots: make([]encoderSlot, 1)}
	in := genText(40<<10, 6)
	want := newEncoder(k).EncodeAll(in, nil)
	if got := p.EncodeAll(in, nil); !bytes.Equal(got, want) {
		t.Fatal("frame differs before the panic")
	}
	before := p.slots[0].e

	name := filepath.Join(t.TempDir(), "cut")
	if err := os.WriteFile(name, in, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, len(in), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Munmap(m) }()
	if err := os.Truncate(name, 0); err != nil {
		t.Fatal(err)
	}
	var r any
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { r = recover() }()
		p.EncodeAll(m, nil)
	}()
	if r == nil {
		t.Fatal("no panic compressing a mapping cut short")
	}
	if len(p.sem) != 0 {
		t.Fatalf("after a panic: %d tokens still taken", len(p.sem))
	}
	if !p.slots[0].mu.TryLock() {
		t.Fatal("after a panic: the slot is still locked")
	}
	p.slots[0].mu.Unlock()
	if p.slots[0].e == before {
		t.Fatal("after a panic: the encoder it panicked in is kept")
	}
	if got := p.EncodeAll(in, nil); !bytes.Equal(got, want) {
		t.Fatal("frame differs after the panic")
	}
}
