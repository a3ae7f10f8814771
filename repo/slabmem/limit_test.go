package slabmem

import (
	"fmt"
	"runtime/debug"
	"testing"
)

// TestShiftLimitGivesBackExactly: what ShiftLimit raised, giving it back
// sets the limit where it was, whatever the Mems did in between, and a
// limit below minHeapLimit too (a process given GOMEMLIMIT=64MiB). The
// floor made a give-back lower the limit only as far as minHeapLimit: a
// pool's raise given back while a restore's slabs held the limit at the
// floor was never taken off (the restore's release then put its own back
// on top: session 27's review), and below the floor the limit ended at
// the floor.
func TestShiftLimitGivesBackExactly(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const raise = 48 << 20
	check := func(what string, want int64) {
		t.Helper()
		if got := debug.SetMemoryLimit(-1); got != want {
			t.Fatalf("%s: limit %d MiB, want %d MiB", what, got>>20, want>>20)
		}
	}

	// Below the floor, no Mem.
	debug.SetMemoryLimit(64 << 20)
	if got := ShiftLimit(raise); got != raise {
		t.Fatalf("raised by %d", got)
	}
	check("raised", 64<<20+raise)
	if got := ShiftLimit(-raise); got != -raise {
		t.Fatalf("gave back %d", got)
	}
	check("given back below the floor", 64<<20)

	// A Mem takes the limit to the floor while the raise is on; the
	// raise is given back before the Mem releases, or after.
	for _, memFirst := range []bool{false, true} {
		for _, base := range []int64{80 << 20, 200 << 20, 64 << 20} {
			debug.SetMemoryLimit(base)
			ShiftLimit(raise)
			m := &both{New(), New()} // a restore's and an L2's
			for range Cap / MaxBlock {
				if m[0].Get(MaxBlock) == nil || m[1].Get(MaxBlock) == nil {
					t.Skip("no anonymous mappings here")
				}
			}
			if base >= minHeapLimit {
				check("slabs mapped", minHeapLimit)
			}
			if memFirst {
				m.Release()
				ShiftLimit(-raise)
			} else {
				ShiftLimit(-raise)
				m.Release()
			}
			check(fmt.Sprintf("all given back (Mems first %v, from %d MiB)", memFirst, base>>20), base)
		}
	}
}

// both releases two Mems.
type both [2]*Mem

func (b *both) Release() { b[0].Release(); b[1].Release() }
