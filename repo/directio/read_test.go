package directio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadFullAt reads unaligned ranges (start, middle, the file's unaligned
// end) through O_DIRECT where the file system takes it and checks every
// byte; on tmpfs OpenReader may refuse, which is the caller's cue to read
// through the page cache.
func TestReadFullAt(t *testing.T) {
	const size = 3*MinReadSize + 1234 // not a multiple of Align: a short last block
	data := pattern(size)
	cases := []struct {
		name    string
		off, n  int64
		wantErr error
	}{
		{"empty", 17, 0, nil},
		{"one byte", 5, 1, nil},
		{"aligned", Align, 2 * Align, nil},
		{"unaligned both ends", 4095, MinReadSize + 2, nil},
		{"whole file", 0, size, nil},
		{"to the unaligned end", size - MinReadSize - 7, MinReadSize + 7, nil},
		{"last byte", size - 1, 1, nil},
		{"past the end", size - 10, 11, io.ErrUnexpectedEOF},
		{"beyond the end", size + Align, 1, io.ErrUnexpectedEOF},
	}
	for fs, dir := range dirs(t) {
		p := filepath.Join(dir, "pack")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d, err := OpenReader(f)
		if err != nil {
			t.Logf("%s: %v (reads go through the page cache there)", fs, err)
			if fs != "tmpfs" {
				t.Errorf("%s refuses O_DIRECT reads: %v", fs, err)
			}
			continue
		}
		defer d.Close()
		for _, c := range cases {
			// An odd-sized, odd-offset buffer: ReadFullAt aligns within it.
			buf := make([]byte, c.n+ReadSlack+3)[3:]
			got, err := ReadFullAt(d, buf, c.off, c.n)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), p) {
					t.Errorf("%s %s: err = %v, want %v naming %s", fs, c.name, err, c.wantErr, p)
				}
				continue
			}
			if err != nil {
				if Refused(err) && fs == "tmpfs" {
					t.Logf("tmpfs refuses direct reads: %v", err)
					break
				}
				t.Fatalf("%s %s: %v", fs, c.name, err)
			}
			if !bytes.Equal(got, data[c.off:c.off+c.n]) {
				t.Errorf("%s %s: %d bytes differ from the file's", fs, c.name, len(got))
			}
		}
	}
}

func TestReadFullAtRejectsShortBuffer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, pattern(2*Align), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = ReadFullAt(f, make([]byte, Align+ReadSlack-1), 0, Align)
	if err == nil || !strings.Contains(err.Error(), "smaller than the range and ReadSlack") {
		t.Fatalf("err = %v, want the buffer size named", err)
	}
}

// TestOpenReaderFollowsTheOpenFile: the direct descriptor reads the file f
// has open even after its path names another file, so a pack replaced or
// deleted under a cached handle is never mixed with its successor.
func TestOpenReaderFollowsTheOpenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pack")
	old := pattern(MinReadSize)
	if err := os.WriteFile(p, old, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, MinReadSize), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := OpenReader(f)
	if err != nil {
		t.Skipf("no O_DIRECT here: %v", err)
	}
	defer d.Close()
	got, err := ReadFullAt(d, make([]byte, MinReadSize+ReadSlack), 100, 5000)
	if err != nil || !bytes.Equal(got, old[100:5100]) {
		t.Fatalf("read %v: got the replacement's bytes, or fewer", err)
	}
}
