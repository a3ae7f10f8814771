package repo

import "testing"

// TestConfigHuffPlanes: only repositories of format 3 and later get chunks
// in stored form 0x03; the binaries of formats 1 and 2 cannot decode it.
func TestConfigHuffPlanes(t *testing.T) {
	for v, want := range map[int]bool{1: false, 2: false, 3: true, 4: true} {
		if got := (Config{Version: v}).HuffPlanes(); got != want {
			t.Errorf("format %d: HuffPlanes %v, want %v", v, got, want)
		}
	}
}

// TestConfigWALRecords: only repositories of format 4 and later get WAL
// chunks in stored form 0x04; the binaries of formats 1 to 3 cannot decode it.
func TestConfigWALRecords(t *testing.T) {
	for v, want := range map[int]bool{1: false, 2: false, 3: false, 4: true} {
		if got := (Config{Version: v}).WALRecords(); got != want {
			t.Errorf("format %d: WALRecords %v, want %v", v, got, want)
		}
	}
}
