package chunk

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
)

// TestPooledEncoderSameFrames: frames from the pool, from many goroutines
// at once, are byte for byte those of one zstd encoder of the same options
// (what the stored-form goldens rely on), and the pool never makes more
// encoders than GOMAXPROCS (one per slot).
func TestPooledEncoderSameFrames(t *testing.T) {
	k := encKey{l: LevelBalanced}
	n := runtime.GOMAXPROCS(0)
	p := &pooledEncoder{k: k, sem: make(chan struct{}, n), slots: make([]encoderSlot, n)}
	ref := newEncoder(k)
	inputs := [][]byte{
		bytes.Repeat([]byte("package chunk // text that repeats\n"), 300),
		genText(40<<10, 1),
		genText(300<<10, 2), // more than one 128 KiB block
		genFloats(64<<10, 3),
	}
	want := make([][]byte, len(inputs))
	for i, in := range inputs {
		want[i] = ref.EncodeAll(in, []byte{formatZstd})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 20 {
				i := (g + r) % len(inputs)
				if got := p.EncodeAll(inputs[i], []byte{formatZstd}); !bytes.Equal(got, want[i]) {
					errs <- "frame differs"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	made := 0
	for i := range p.slots {
		if p.slots[i].e != nil {
			made++
		}
	}
	if made < 1 || made > n {
		t.Fatalf("%d encoders made, want 1 to GOMAXPROCS %d", made, n)
	}
}

// TestPooledEncoderBusySlot: a call whose CPU's slot is busy compresses
// on the next free slot, with that slot's encoder, and leaves the busy one
// alone.
func TestPooledEncoderBusySlot(t *testing.T) {
	k := encKey{l: LevelFastest}
	p := &pooledEncoder{k: k, sem: make(chan struct{}, 2), slots: make([]encoderSlot, 2)}
	in := genText(4<<10, 4)
	want := newEncoder(k).EncodeAll(in, nil)
	for busy := range 2 {
		p.slots[busy].mu.Lock()
		for range 3 {
			if got := p.EncodeAll(in, nil); !bytes.Equal(got, want) {
				t.Fatalf("slot %d busy: frame differs", busy)
			}
		}
		if p.slots[busy].e != nil && busy == 0 || p.slots[1-busy].e == nil {
			t.Fatalf("slot %d busy: encoders made %v %v, want only the other slot's", busy, p.slots[0].e != nil, p.slots[1].e != nil)
		}
		p.slots[busy].mu.Unlock()
	}
}
