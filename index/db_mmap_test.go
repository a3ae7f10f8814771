package index

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestWriteOpenMapsAhead: a read-write transaction that grows a new cache
// file to megabytes (a first backup's blobs merged in one AddFile) is not
// remapped on the way, which copies every node it touched out of the old
// mapping each time; and the file grows about as written, not to the
// mapping nor 16 MiB past what it holds (growStep).
func TestWriteOpenMapsAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := openBolt(path, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("blobs"))
		if err != nil {
			return err
		}
		val := make([]byte, LocationSize)
		for i := range 40_000 {
			var key [32]byte
			binary.BigEndian.PutUint64(key[:], uint64(i)) // in order, as AddFiles puts a space's blobs
			binary.BigEndian.PutUint32(val, uint32(i))
			if err := b.Put(key[:], val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	if n := st.TxStats.GetNodeDeref(); n != 0 {
		t.Errorf("the transaction remapped the file: %d node dereferences, want 0", n)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 2<<20 || fi.Size() >= 12<<20 {
		t.Errorf("file of %d bytes after 40,000 puts, want 2 to 12 MiB (grown as written: not to a power of two, nor 16 MiB past it)", fi.Size())
	}
}
