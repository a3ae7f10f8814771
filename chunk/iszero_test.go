package chunk

import "testing"

// TestIsZero: every length around the 64 KiB step, with one non-zero byte
// at the first, a middle and the last position, and none.
func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 64<<10 - 1, 64 << 10, 64<<10 + 1, 200 << 10} {
		b := make([]byte, n)
		if !IsZero(b) {
			t.Fatalf("IsZero(%d zeros) = false", n)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			if n == 0 {
				break
			}
			b[at] = 0x80
			if IsZero(b) {
				t.Fatalf("IsZero(%d bytes, byte %d set) = true", n, at)
			}
			b[at] = 0
		}
	}
}
