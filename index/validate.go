package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// flockRetry is how often checkFile retries a held lock; bbolt polls every
// 50 ms, and a transaction is short.
const flockRetry = 5 * time.Millisecond

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common, format
// version 2): a 16-byte page header, then magic, version, page size, flags,
// the root bucket (root page, sequence), the freelist page, the high-water
// page id, the txid and an FNV-64a checksum of the 56 bytes before it. The
// two meta pages are pages 0 and 1; bbolt uses the valid one with the higher
// txid. Fields are in the machine's byte order, as bbolt writes them.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaSum    = 56 // bytes of meta covered by the checksum
	boltMetaSize   = boltMetaSum + 8
	boltNoFreelist = ^uint64(0)
)

type boltMeta struct {
	pageSize        uint32
	root, free, hwm uint64
	txid            uint64
}

// parseBoltMeta decodes the meta page at the start of b, or says why it is
// not one.
func parseBoltMeta(b []byte) (boltMeta, error) {
	if len(b) < boltPageHeader+boltMetaSize {
		return boltMeta{}, errors.New("short page")
	}
	m := b[boltPageHeader : boltPageHeader+boltMetaSize]
	ne := binary.NativeEndian
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("no bbolt magic")
	}
	if v := ne.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaSum])
	if ne.Uint64(m[boltMetaSum:]) != h.Sum64() {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	return boltMeta{pageSize: ne.Uint32(m[8:]), root: ne.Uint64(m[16:]), free: ne.Uint64(m[32:]),
		hwm: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, nil
}

// checkFile validates a cache file before bbolt maps it: bbolt maps the
// whole high-water mark its meta page claims, and a page past the end of a
// truncated file is a SIGBUS, which no recover catches. An empty or missing
// file is fine (bbolt initialises it). Every other failure wraps ErrCorrupt
// and says what is wrong.
//
// It reads under a shared flock, as a read-only bbolt open does, so that no
// writer is creating or committing to the file meanwhile (a file being
// initialised is briefly shorter than its meta pages). When the lock cannot
// be had within timeout it returns nil: bbolt's own open then reports the
// busy file.
func checkFile(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("index %s: %w", path, err)
	}
	defer f.Close() // releases the lock
	for deadline := time.Now().Add(timeout); ; {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("index %s: lock: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(flockRetry)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("index %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("index %s: %w: %s (%s)", path, ErrCorrupt, fmt.Sprintf(format, args...), rebuildHint)
	}
	page := make([]byte, boltPageHeader+boltMetaSize)
	readMeta := func(off int64) (boltMeta, error) {
		if _, err := f.ReadAt(page, off); err != nil {
			if errors.Is(err, io.EOF) {
				return boltMeta{}, errors.New("cut off")
			}
			return boltMeta{}, err
		}
		return parseBoltMeta(page)
	}
	// The page size is in the first meta page; if that one is bad, look for
	// the second at every page size bbolt can use, as bbolt itself does.
	m0, err0 := readMeta(0)
	pageSize := int64(m0.pageSize)
	if err0 != nil {
		for ps := int64(1024); ps <= 16<<20 && ps+int64(len(page)) <= size; ps <<= 1 {
			if m, err := readMeta(ps); err == nil && int64(m.pageSize) == ps {
				pageSize = ps
				break
			}
		}
		if pageSize == 0 {
			return corrupt("file of %d bytes has no valid bbolt meta page (first: %v)", size, err0)
		}
	}
	if pageSize < 1024 || pageSize&(pageSize-1) != 0 {
		return corrupt("meta page gives page size %d", pageSize)
	}
	if size < 2*pageSize {
		return corrupt("file of %d bytes is shorter than its two %d-byte meta pages", size, pageSize)
	}
	m1, err1 := readMeta(pageSize)
	m, which := m0, 0
	switch {
	case err0 != nil && err1 != nil:
		return corrupt("both meta pages are invalid (%v; %v)", err0, err1)
	case err0 != nil || (err1 == nil && m1.txid > m0.txid):
		m, which = m1, 1
	}
	if int64(m.pageSize) != pageSize {
		return corrupt("meta page %d gives page size %d, not %d", which, m.pageSize, pageSize)
	}
	if m.hwm < 2 || m.root >= m.hwm || (m.free != boltNoFreelist && m.free >= m.hwm) {
		return corrupt("meta page %d (txid %d) is inconsistent: root page %d, freelist page %d, %d pages",
			which, m.txid, m.root, m.free, m.hwm)
	}
	if need := int64(m.hwm) * pageSize; size < need || m.hwm > uint64(size)/uint64(pageSize) {
		return corrupt("file of %d bytes is truncated: meta page %d (txid %d) claims %d pages of %d bytes (%d bytes)",
			size, which, m.txid, m.hwm, pageSize, need)
	}
	return nil
}
