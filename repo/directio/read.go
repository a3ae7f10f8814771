package directio

import (
	"fmt"
	"io"
	"os"
	"unsafe"
)

// Reading around the page cache: a restore or an L2 verify reads every pack
// once, in runs of hundreds of KiB to MiB, and never again soon. Through the
// page cache each byte is read into a kernel page that must be allocated,
// put on the LRU, copied to the caller and later reclaimed; on the benchmark
// machine that is about 0.35 s of system CPU per GiB, with O_DIRECT about
// 0.12 s. Small reads (a FUSE mount's 32 KiB chunks, read again and again)
// stay with the page cache: the caller decides by size.

// MinReadSize is the smallest read worth doing with O_DIRECT: below it the
// wait for the device (a cached page is returned at once) and the aligned
// superset (up to two extra blocks) outweigh the page cache's cost.
const MinReadSize = 256 << 10

// ReadSlack is how many bytes a buffer for ReadFullAt needs beyond the
// length read: the aligned superset of the range starts up to Align-1
// bytes before it and ends up to Align-1 bytes after it, and the buffer's
// own address is aligned by skipping up to Align-1 bytes.
const ReadSlack = 3 * Align

// OpenReader opens a second descriptor on f's file with O_DIRECT, for
// ReadFullAt. It reopens the very file f has open (through /proc/self/fd,
// so a file renamed, replaced or deleted since f was opened is still the one
// read) and fails where the system or the file system refuses O_DIRECT; the
// caller then reads f as usual. f keeps its own flags: turning O_DIRECT on
// f itself (or on a dup, which shares f's flags) would make every small
// read of it go to the device.
func OpenReader(f *os.File) (*os.File, error) {
	d, err := openDirect(f)
	if err != nil {
		return nil, fmt.Errorf("%s: open with O_DIRECT: %w", f.Name(), err)
	}
	a, errA := f.Stat()
	b, errB := d.Stat()
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		d.Close()
		return nil, fmt.Errorf("%s: open with O_DIRECT: not the same file", f.Name())
	}
	return d, nil
}

// ReadFullAt reads the n bytes at off of d (from OpenReader) into buf and
// returns them as a slice of buf, which must hold at least n+ReadSlack
// bytes. It reads the aligned superset of the range into the aligned part
// of buf, so the bytes arrive without a copy. A range past the end of the
// file is io.ErrUnexpectedEOF. A file system that takes O_DIRECT at open but
// refuses the reads fails with an error for which Refused is true: read the
// range through the page cache instead.
func ReadFullAt(d *os.File, buf []byte, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("%s: read %d+%d: negative range", d.Name(), off, n)
	}
	if int64(len(buf)) < n+ReadSlack {
		return nil, fmt.Errorf("%s: read %d+%d: buffer of %d bytes is smaller than the range and ReadSlack", d.Name(), off, n, len(buf))
	}
	if n == 0 {
		return buf[:0], nil
	}
	skew := 0
	if a := int(uintptr(unsafe.Pointer(&buf[0])) & (Align - 1)); a != 0 {
		skew = Align - a
	}
	lo := off &^ (Align - 1)
	hi := (off + n + Align - 1) &^ (Align - 1)
	b := buf[skew : skew+int(hi-lo)]
	got := 0
	want := int(off + n - lo) // the superset may end past EOF; the range must not
	for got < want {
		// got stays a multiple of Align: a direct read returns whole
		// blocks except at the end of the file.
		m, err := d.ReadAt(b[got:], lo+int64(got))
		got += m
		if got >= want {
			break
		}
		if err == io.EOF || (err == nil && m == 0) {
			return nil, fmt.Errorf("%s: read %d+%d: %w", d.Name(), off, n, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, err
		}
		if got&(Align-1) != 0 {
			return nil, fmt.Errorf("%s: read %d+%d: %w", d.Name(), off, n, io.ErrUnexpectedEOF)
		}
	}
	s := skew + int(off-lo)
	return buf[s : s+int(n) : s+int(n)], nil
}
