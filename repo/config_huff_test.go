package repo

import "testing"

// TestConfigHuffPlanes: only repositories of format 3 and later get chunks
// in stored form 0x03; the binaries of formats 1 and 2 cannot decode it.
func TestConfigHuffPlanes(t *testing.T) {
	for v, want := range map[int]bool{1: false, 2: false, 3: true} {
		if got := (Config{Version: v}).HuffPlanes(); got != want {
			t.Errorf("format %d: HuffPlanes %v, want %v", v, got, want)
		}
	}
}
