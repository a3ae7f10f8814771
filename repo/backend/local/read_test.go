package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

func TestRangedReads(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	data := randBytes(7, 10000)
	if err := b.Write(ctx, "data/aa/pack", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		off, length int64
		want        []byte
	}{
		{0, -1, data},
		{0, 10000, data},
		{0, 0, nil},
		{1, 1, data[1:2]},
		{4096, 4096, data[4096:8192]},
		{9999, 1, data[9999:]},
		{9999, -1, data[9999:]},
		{10000, -1, nil},
		{10000, 0, nil},
		{5000, -1, data[5000:]},
	}
	for _, c := range cases {
		got := readAll(t, b, "data/aa/pack", c.off, c.length)
		if !bytes.Equal(got, c.want) {
			t.Errorf("Open(off=%d, len=%d): got %d bytes, want %d (or different content)", c.off, c.length, len(got), len(c.want))
		}
	}
}

func TestRangedReadErrors(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	if err := b.Write(ctx, "data/aa/pack", bytes.NewReader(make([]byte, 100)), 100); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		off, length int64
		want        string
		eof         bool
	}{
		{0, 101, "local backend: open data/aa/pack: range 0+101 beyond end of 100-byte file: unexpected EOF", true},
		{99, 2, "local backend: open data/aa/pack: range 99+2 beyond end of 100-byte file: unexpected EOF", true},
		{101, 0, "local backend: open data/aa/pack: range 101+0 beyond end of 100-byte file: unexpected EOF", true},
		{101, -1, "local backend: open data/aa/pack: offset 101 beyond end of 100-byte file: unexpected EOF", true},
		{-1, 1, "local backend: open data/aa/pack: negative offset -1", false},
		{1, 1 << 62, "local backend: open data/aa/pack: range 1+4611686018427387904 beyond end of 100-byte file: unexpected EOF", true},
	}
	for _, c := range cases {
		rc, err := b.Open(ctx, "data/aa/pack", c.off, c.length)
		if err == nil {
			rc.Close()
			t.Errorf("Open(%d, %d): no error", c.off, c.length)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("Open(%d, %d):\n got %q\nwant %q", c.off, c.length, err, c.want)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) != c.eof {
			t.Errorf("Open(%d, %d): errors.Is(ErrUnexpectedEOF) = %v", c.off, c.length, !c.eof)
		}
	}
}

// The reader must not see bytes past its range even though the file has them.
func TestRangedReadIsBounded(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	if err := b.Write(ctx, "f", bytes.NewReader([]byte("0123456789")), 10); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Open(ctx, "f", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 10)
	n, _ := io.ReadFull(rc, buf)
	if string(buf[:n]) != "234" {
		t.Fatalf("read %q", buf[:n])
	}
}
