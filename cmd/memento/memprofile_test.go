package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestMemProfileWritten checks MEMENTO_MEMPROFILE's writer: a run whose heap
// never grew still gets a profile at exit, a gzipped pprof file (magic 1f
// 8b), and no temporary file is left beside it.
func TestMemProfileWritten(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "heap.pprof")
	stop := startMemProfile(p)
	stop()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("no heap profile: %v", err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("heap profile starts with % x, want a gzip stream", b[:min(4, len(b))])
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the profile's directory, want only the profile", len(ents))
	}
}
