package backup

import (
	"errors"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// sparseReader reads a sparse file without reading its holes: it asks the
// file system where the data is (lseek SEEK_DATA and SEEK_HOLE) and gives
// the holes as zeros it writes itself. read(2) of a hole copies the kernel's
// zero page: a first backup of a 4 GiB image holding 290 MiB of data spent
// 2.2 of its 10 CPU seconds in read(2) (docs/benchmarks.md, "Issue 18,
// session 22"). What it returns is what read(2) would: the file system says
// where the holes are, and a file changed meanwhile is as torn as with
// read(2). A file system without SEEK_DATA is read with read(2).
type sparseReader struct {
	f        *os.File
	fd       int
	off      int64 // the next offset to give
	end      int64 // [off, end) is known: data (hole false) or a hole
	hole     bool
	fallback bool // SEEK_DATA refused: read(2) from off on
}

// sparseReaderMin is the least a regular file must lack in allocated bytes
// (a hole) to be read with sparseReader: below it the lseeks are not worth it.
const sparseReaderMin = 1 << 20

// sparseAware returns f, or f through sparseReader when its stat says it
// has holes (fewer bytes allocated than its size, by sparseReaderMin).
func sparseAware(f *os.File, size, blocks int64) io.Reader {
	if size-blocks*512 < sparseReaderMin {
		return f
	}
	return &sparseReader{f: f, fd: int(f.Fd())}
}

func (r *sparseReader) Read(p []byte) (int, error) {
	if r.fallback {
		return r.f.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.off >= r.end {
		if err := r.locate(); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if r.fallback {
				if _, serr := r.f.Seek(r.off, io.SeekStart); serr != nil {
					return 0, serr
				}
				return r.f.Read(p)
			}
			return 0, err
		}
	}
	n := int(min(int64(len(p)), r.end-r.off))
	if r.hole {
		clear(p[:n])
		r.off += int64(n)
		return n, nil
	}
	n, err := r.f.ReadAt(p[:n], r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) {
		// The file was cut short since the data was found: no more data
		// where there was; find out what is there now.
		r.end = r.off
		if n > 0 {
			err = nil
		} else {
			return r.Read(p)
		}
	}
	return n, err
}

// locate finds what is at r.off: data up to the next hole, or a hole up to
// the next data or the end of the file; io.EOF at the end.
func (r *sparseReader) locate() error {
	fd := r.fd
	data, err := unix.Seek(fd, r.off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		// No data from r.off on: a hole to the end, or the end. The size
		// is taken after, so the file may have grown meanwhile (an
		// append): only a second SEEK_DATA, after the size, that finds
		// no data either says [r.off, size) is a hole; else the appended
		// bytes would be given as zeros where read(2) gives them or the
		// end of the file.
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return &fs.PathError{Op: "fstat", Path: r.f.Name(), Err: err}
		}
		if r.off >= st.Size {
			return io.EOF
		}
		data, err = unix.Seek(fd, r.off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			r.end, r.hole = st.Size, true
			return nil
		}
	}
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP):
		r.fallback = true
		return err
	case err != nil:
		return &fs.PathError{Op: "seek", Path: r.f.Name(), Err: err}
	case data > r.off:
		r.end, r.hole = data, true
		return nil
	}
	h, err := unix.Seek(fd, r.off, unix.SEEK_HOLE)
	if err != nil {
		return &fs.PathError{Op: "seek", Path: r.f.Name(), Err: err}
	}
	r.end, r.hole = h, false
	if h <= r.off { // cannot be (the end of a file is a hole); read on with read(2)
		r.fallback = true
		return unix.EINVAL
	}
	return nil
}
